"""A worker: the process the zygote forks for one request, which becomes
the container's supervisor. It takes the launcher's stdio, working
directory, umask and environment, tells the launcher it has the request
(before that, the launcher may still run it in Python itself), runs the
command line as `python -m brandpy` would, and sends the exit status.

Meanwhile the connection carries the signals the launcher forwards; they
arrive as SIGIO (O_ASYNC) and are raised here, so they meet the handlers
`brandpy run` installs as they would in-process. The launcher going away
(killed) kills the container, as the supervisor's own death would."""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import socket
import sys
import tempfile
import traceback
from typing import NoReturn

from brandpy import cli
from brandpy.supervise.container import Container

from . import protocol

REQUEST_TIMEOUT = 10.0


class Relay:
    """The connection while the command runs (SIGIO handler)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.container: Container | None = None
        self.pending = b""
        self.gone = False

    def start(self) -> None:
        self.conn.setblocking(False)
        signal.signal(signal.SIGIO, self._readable)
        fcntl.fcntl(self.conn, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(self.conn, fcntl.F_SETFL, fcntl.fcntl(self.conn, fcntl.F_GETFL) | os.O_ASYNC)
        self._readable()   # what came before O_ASYNC

    def attach(self, container: Container) -> None:
        self.container = container
        if self.gone:
            container.signal(signal.SIGKILL)

    def _readable(self, *_: object) -> None:
        while not self.gone:
            try:
                data = self.conn.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.gone = True
                if self.container is None:
                    raise SystemExit(128 + signal.SIGKILL)
                self.container.signal(signal.SIGKILL)
                return
            self.pending += data
            size = protocol.MESSAGE.size
            while len(self.pending) >= size:
                kind, value = protocol.MESSAGE.unpack(self.pending[:size])
                self.pending = self.pending[size:]
                if kind == protocol.SIGNAL and 0 < value < signal.NSIG:
                    signal.raise_signal(value)


def read_request(conn: socket.socket) -> tuple[list[str], list[bytes], int, list[int]]:
    """The arguments, environment, umask and fds (stdin, stdout, stderr, cwd)."""
    conn.settimeout(REQUEST_TIMEOUT)
    head, fds, _, _ = socket.recv_fds(conn, protocol.REQUEST.size, protocol.REQUEST_FDS)
    while len(head) < protocol.REQUEST.size:
        more = conn.recv(protocol.REQUEST.size - len(head))
        if not more:
            raise EOFError("the launcher closed its request")
        head += more
    magic, umask, argc, envc, length = protocol.REQUEST.unpack(head)
    if magic != protocol.MAGIC or len(fds) != protocol.REQUEST_FDS:
        raise ValueError("not a brandpy launcher's request")
    data = bytearray()
    while len(data) < length:
        more = conn.recv(min(length - len(data), 1 << 20))
        if not more:
            raise EOFError("the launcher closed its request")
        data += more
    strings = bytes(data).split(b"\0")[:-1]
    if len(strings) != argc + envc:
        raise ValueError("a launcher's request with a wrong count of strings")
    return [os.fsdecode(a) for a in strings[:argc]], strings[argc:], umask, fds


def take(env: list[bytes], umask: int, fds: list[int]) -> None:
    """Become the launcher's process for the command."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
        os.close(fd)
    os.fchdir(fds[3])
    os.close(fds[3])
    os.umask(umask)
    os.environb.clear()
    for entry in env:
        key, _, value = entry.partition(b"=")
        if key:
            os.environb[key] = value
    tempfile.tempdir = None     # TMPDIR is the launcher's now
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        stream = open(fd, "r" if fd == 0 else "w", closefd=False,
                      buffering=1 if fd == 2 or os.isatty(fd) else -1,
                      errors="backslashreplace" if fd == 2 else None)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def work(conn: socket.socket, parser: argparse.ArgumentParser) -> NoReturn:
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    try:
        argv, env, umask, fds = read_request(conn)
        conn.sendall(protocol.message(protocol.ACCEPT))
    except (OSError, EOFError, ValueError) as exc:
        print(f"brandpy zygote: a request it could not read: {exc}", file=sys.stderr)
        os._exit(125)
    take(env, umask, fds)
    sys.argv = ["brandpy", *argv]
    relay = Relay(conn)
    status = 1
    try:
        relay.start()
        args = cli.parse(argv, parser)
        args.on_start = relay.attach
        status = args.func(args)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        conn.setblocking(True)
        conn.sendall(protocol.message(protocol.EXIT, status))
    except OSError:
        pass
    os._exit(0)
