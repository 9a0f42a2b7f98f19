"""`brandpy run`: one container in the foreground, stdio passed through
(never a terminal: terminal.py), signals forwarded, the entrypoint's exit
status returned."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from brandpy import scratch
from brandpy.runtime import landlock
from brandpy.runtime.run_setup import ContainerError
from brandpy.runtime.sandbox import SandboxConfig
from brandpy.runtime.stats import as_dict

from .container import Container, Research
from .native_engine import block_sigchld
from .terminal import Streams

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)

SHM = "/dev/shm"

__all__ = ["ContainerError", "run"]


@contextmanager
def state_dir() -> Iterator[str]:
    """The run's private /dev, /etc/hosts... and the container's /dev/shm:
    on a memory file system where there is one (the user's runtime
    directory, else /dev/shm), as each run makes and removes them."""
    base = os.environ.get("XDG_RUNTIME_DIR") if os.geteuid() else None
    if not (base and os.path.isdir(base)):
        base = SHM if os.path.isdir(SHM) else None
    path = scratch.mkdtemp("brandpy-", base)
    os.chmod(path, 0o755)   # a container user other than the owner reads /dev and /proc views
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(config: SandboxConfig, debug: bool = False, stats: bool = False,
        report: bool = False, engine: str = "native", research: Research | None = None,
        record: str | None = None, stats_json: str | None = None,
        stdio: tuple[int, int, int] = (0, 1, 2),
        on_start: Callable[[Container], None] | None = None, interactive: bool = False,
        tty: bool = False) -> int:
    """Run the container in the foreground; returns its exit status.
    on_start gets the container once its entrypoint exists (the zygote's
    worker kills it when its launcher goes away). interactive and tty are
    docker run's -i and -t (terminal.py)."""
    # The only thread: the native loop's signalfd then sees every SIGCHLD (the
    # container's processes start with an empty signal mask).
    block_sigchld()
    with state_dir() as state:
        if not config.state_dir:
            config.state_dir = state
        container = Container(config, debug=debug, engine=engine, research=research)
        if debug:
            print(f"brandpy: walls: {landlock.status()}", file=sys.stderr)
        # never a terminal of ours: pipes, or a pty of its own (terminal.py)
        streams = Streams(stdio, interactive, tty)
        try:
            container.start(stdio=streams.stdio, tty=tty)
            streams.start()

            def forward(sig: int, _frame: object) -> None:
                if sig == signal.SIGWINCH and tty:
                    streams.resize()      # the kernel tells the container's foreground
                else:
                    container.signal(sig)

            previous = {s: signal.signal(s, forward) for s in FORWARDED}
            if on_start is not None:
                on_start(container)
            try:
                status = container.run()
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
        finally:
            streams.finish()
        names = container.effective.names
        if stats:
            print(container.sb.stats.report(names), file=sys.stderr)
        if report:
            print(container.sb.ledger.report(), file=sys.stderr)
        if stats_json:
            with open(stats_json, "w") as f:
                json.dump(as_dict(container.sb.stats, container.sb.ledger, names), f, indent=1)
        if record and research and research.replay:
            research.replay.rec.save(record)
        return status
