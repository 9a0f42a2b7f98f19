"""`brandpy daemon` (alias `brandpyd`): serve the Docker Engine API.

Containers outlive the daemon (each has its own shim), so stopping the
daemon, or killing it, leaves them running; the next daemon finds them."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import fcntl
import ipaddress
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from brandpy import datadir

from . import daemon_config
from .adapter_config import AdapterConfigError, Chain
from .adapter_config import load as load_adapters

if TYPE_CHECKING:
    from brandpy.engine.engine import Engine

SHUTDOWN_TIMEOUT = 2.0


def default_host() -> str:
    return "unix://" + str(datadir.runtime_dir() / "docker.sock")


def parse_host(text: str) -> tuple[str, str | tuple[str, int]]:
    """("unix", path) or ("tcp", (address, port)); TCP only on loopback,
    since the API gives full control of the containers and has no TLS here."""
    if text.startswith("/"):
        text = "unix://" + text
    u = urlsplit(text)
    if u.scheme == "unix":
        path = u.netloc + u.path
        if not path:
            raise ValueError(f"{text}: give a socket path, e.g. unix:///run/brandpy/docker.sock")
        return "unix", path
    if u.scheme == "tcp":
        host, port = u.hostname or "127.0.0.1", u.port
        if port is None:
            raise ValueError(f"{text}: give a port, e.g. tcp://127.0.0.1:2375")
        addr = socket.gethostbyname(host) if host == "localhost" else host
        if not ipaddress.ip_address(addr).is_loopback:
            raise ValueError(f"{text}: only loopback addresses are served (the API has no TLS "
                             "here and gives full control of the machine's containers)")
        return "tcp", (addr, port)
    raise ValueError(f"{text}: use unix://PATH or tcp://127.0.0.1:PORT")


def _lock(root: Path) -> int:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "daemon.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(f"brandpy daemon: another daemon is using the data root {root}; stop "
                         "it or give --data-root") from None
    return fd


def _claim_socket(path: str) -> None:
    """Remove a stale socket file; refuse one a live server answers on."""
    if not os.path.exists(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise SystemExit(f"brandpy daemon: {path} is in use by another server")


async def serve(config: daemon_config.DaemonConfig, hosts: list[str], adapters: Chain | None,
                reread: Callable[[], daemon_config.DaemonConfig]) -> None:
    """Serve until SIGTERM or SIGINT; on SIGHUP, reread() the configuration
    and apply what dockerd reloads."""
    from aiohttp import web

    from brandpy.engine.engine import Engine

    from .server import make_app

    root = config.data_root
    eng = Engine(root, config.settings)
    await eng.startup()
    runner = web.AppRunner(make_app(eng, adapters), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    sockets = []
    for host in hosts:
        kind, where = parse_host(host)
        if kind == "unix":
            assert isinstance(where, str)
            _claim_socket(where)
            site = web.UnixSite(runner, where)
            await site.start()
            os.chmod(where, 0o660)
            sockets.append(where)
        else:
            assert not isinstance(where, str)
            address, port = where
            await web.TCPSite(runner, address, port).start()
    print(f"brandpy daemon: data root {root}", file=sys.stderr)
    for host in hosts:
        print(f"export DOCKER_HOST={host if '://' in host else 'unix://' + host}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, eng, reread, config)
    await stop.wait()
    await eng.shutdown()
    await runner.cleanup()
    for path in sockets:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _reload(eng: Engine, reread: Callable[[], daemon_config.DaemonConfig],
            started: daemon_config.DaemonConfig) -> None:
    """SIGHUP: the configuration file again; a file that does not check
    out leaves the daemon as it is, as in dockerd."""
    try:
        new = reread()
    except daemon_config.ConfigError as exc:
        print(f"brandpy daemon: reload refused, the configuration in use is kept: {exc}",
              file=sys.stderr, flush=True)
        return
    eng.reconfigure(daemon_config.reloaded(eng.settings, new))
    print("brandpy daemon: reloaded configuration: "
          + json.dumps(eng.settings.reload_attributes()), file=sys.stderr, flush=True)
    waiting = daemon_config.not_reloaded(started, new)
    if waiting:
        print(f"brandpy daemon: {', '.join(waiting)} changed: not reloaded (as in dockerd), "
              "restart the daemon to apply", file=sys.stderr, flush=True)


def _daemon(args: argparse.Namespace) -> int:
    try:
        config = daemon_config.resolve(args)
        hosts = config.hosts or [default_host()]
        for host in hosts:
            parse_host(host)
    except (ValueError, daemon_config.ConfigError) as exc:
        print(f"brandpy daemon: {exc}", file=sys.stderr)
        return 2
    root = config.data_root
    adapters = None
    if args.adapters:
        try:
            adapters = load_adapters(args.adapters)
        except AdapterConfigError as exc:
            print(f"brandpy daemon: --adapters {exc}", file=sys.stderr)
            return 2
    lock = _lock(root)
    # `kill -USR1 <daemon>` writes every thread's stack to stderr (diagnosis).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        asyncio.run(serve(config, hosts, adapters, lambda: daemon_config.resolve(args)))
    finally:
        os.close(lock)
    return 0


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--host", action="append", default=[],
                   metavar="unix://PATH|tcp://127.0.0.1:PORT",
                   help="where to listen (repeatable); default: unix:///run/brandpy/docker.sock "
                   "for root, $XDG_RUNTIME_DIR/brandpy/docker.sock otherwise")
    p.add_argument("--data-root", metavar="DIR",
                   help="images, containers and volumes (default: /var/lib/brandpy for root, "
                   "$XDG_DATA_HOME/brandpy otherwise, or $BRANDPY_ROOT)")
    daemon_config.arguments(p)
    p.add_argument("--adapters", metavar="FILE",
                   help="a JSON chain of extension adapters (pre- and post-hooks, HTTP "
                   "endpoints or Python entry points) run around API requests; see README, "
                   "'Extension adapters'")


DESCRIPTION = ("Serve the Docker Engine API on a unix socket (and/or loopback TCP); point "
               "DOCKER_HOST at it. Containers keep running when the daemon stops.")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("daemon", help="serve the Docker Engine API (docker CLI and SDK)",
                       description=DESCRIPTION)
    _arguments(p)
    p.set_defaults(func=_daemon)


def main(argv: list[str] | None = None) -> int:
    """The `brandpyd` entry point: `brandpy daemon` under its own name."""
    p = argparse.ArgumentParser(prog="brandpyd", description=DESCRIPTION)
    _arguments(p)
    return _daemon(p.parse_args(argv))
