"""Run one container: build its Sandbox, find the entrypoint inside the
rootfs, spawn it under the filter and supervise it to the end."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

from .mounts import split
from .process import Errno, Process
from .sandbox import Sandbox, SandboxConfig
from .spawn import spawn
from .supervisor import Supervisor

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)

# exit statuses as docker uses them
EXIT_RUNTIME, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND = 125, 126, 127


class ContainerError(Exception):
    """Setting up the container failed before the entrypoint ran."""

    def __init__(self, message: str, status: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.status = status


def default_env(env: list[str]) -> list[str]:
    names = {e.split("=", 1)[0] for e in env}
    extra = []
    if "PATH" not in names:
        extra.append("PATH=" + DEFAULT_PATH)
    if "HOME" not in names:
        extra.append("HOME=/root")
    return extra + env


def find_command(sb: Sandbox, argv0: str, env: list[str], workdir: str) -> str:
    """The guest path of the entrypoint, looked up in the container's PATH
    as runc does; raises ContainerError with docker's status codes."""
    if not argv0:
        raise ContainerError("no command specified", EXIT_RUNTIME)
    root = Process(tgid=0)
    if "/" in argv0:
        candidates = [argv0 if argv0.startswith("/") else os.path.join(workdir, argv0)]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [os.path.join(d or ".", argv0) for d in path.split(":")]
        candidates = [c if c.startswith("/") else os.path.join(workdir, c) for c in candidates]
    denied = None
    for guest in candidates:
        try:
            r = sb.resolver.resolve(root, 0, os.fsencode(guest))
        except Errno:
            continue
        if os.path.isfile(r.host):
            if os.access(r.host, os.X_OK):
                return guest
            denied = guest
        elif "/" in argv0 and os.path.isdir(r.host):
            raise ContainerError(f'exec: "{argv0}": is a directory', EXIT_CANNOT_EXEC)
    if denied:
        raise ContainerError(f'exec: "{argv0}": permission denied', EXIT_CANNOT_EXEC)
    where = "no such file or directory" if "/" in argv0 else "executable file not found in $PATH"
    raise ContainerError(f'exec: "{argv0}": {where}', EXIT_NOT_FOUND)


def prepare_workdir(sb: Sandbox, workdir: str) -> bytes:
    """The host path of the working directory, created if missing as docker
    does: one guest component at a time, each resolved inside the rootfs."""
    if not workdir.startswith("/"):
        raise ContainerError(f"the working directory {workdir!r} is invalid, it needs to be "
                             "an absolute path")
    root = Process(tgid=0)
    guest = b"/"
    host = sb.resolver.resolve(root, 0, guest).host
    for comp in split(os.fsencode(workdir)):
        try:
            r = sb.resolver.resolve(root, 0, guest.rstrip(b"/") + b"/" + comp)
            if not os.path.lexists(r.host):
                os.mkdir(r.host, 0o755)
        except Errno as exc:
            raise ContainerError(f"working directory {workdir}: "
                                 f"{os.strerror(exc.errno)}") from None
        except OSError as exc:
            raise ContainerError(f"cannot create working directory {workdir}: "
                                 f"{exc.strerror}") from None
        guest, host = r.guest, r.host
    if not os.path.isdir(host):
        raise ContainerError(f"working directory {workdir}: not a directory")
    return host


@contextmanager
def foreground(pgid: int | None) -> Iterator[None]:
    """Give the terminal to the container's process group while it runs
    (as a shell does for a foreground job), and take it back after."""
    if pgid is None:
        yield
        return
    ours = os.getpgrp()
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        try:
            os.setpgid(pgid, pgid)
        except OSError:
            pass   # the child did it first
        os.tcsetpgrp(0, pgid)
        yield
    finally:
        try:
            os.tcsetpgrp(0, ours)
        except OSError:
            pass
        signal.signal(signal.SIGTTOU, old)


@contextmanager
def state_dir() -> Iterator[str]:
    base = os.environ.get("XDG_RUNTIME_DIR") if os.geteuid() else None
    path = tempfile.mkdtemp(prefix="brandpy-", dir=base if base and os.path.isdir(base) else None)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(config: SandboxConfig, debug: bool = False, stats: bool = False) -> int:
    """Run the container in the foreground; returns its exit status."""
    from syscalls.table import table

    if not os.path.isdir(config.rootfs):
        raise ContainerError(f"rootfs {config.rootfs}: no such directory")
    tbl = table()
    with state_dir() as state:
        if not config.state_dir:
            config.state_dir = state
        sb = Sandbox(config)
        env = default_env(config.env)
        cwd = prepare_workdir(sb, config.workdir)
        path = find_command(sb, config.argv[0], env, config.workdir)
        sup = Supervisor(sb, tbl, debug=debug)
        interactive = os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
        try:
            pid = spawn(path, config.argv, env, cwd, tbl.bpf(), setsid=not interactive,
                        setpgid=interactive)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EPERM:
                hint = " (is ptrace forbidden here? check kernel.yama.ptrace_scope)"
            raise ContainerError(f"cannot start the supervisor: {exc.strerror}{hint}") from None
        previous = {s: signal.signal(s, lambda sig, _f: sup.forward_signal(sig))
                    for s in FORWARDED}
        try:
            with foreground(pid if interactive else None):
                status = sup.run(pid)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if stats:
            print(sb.stats.report(tbl.names()), file=sys.stderr)
        return status
