"""The monitor's control socket (`--root/<id>/monitor.sock`): one JSON
request per connection, with file descriptors riding along (SCM_RIGHTS)
when a process's stdio is handed over, answered by one JSON line. An exec
connection stays open: the caller may send {"signal": N}, the monitor sends
{"exit": STATUS} when the process ends, and a caller that goes away takes
its process with it (as a killed runc exec would)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import OciError
from .state import ContainerDir

MAX_FDS = 64


class MonitorGone(OciError):
    def __init__(self, cid: str) -> None:
        super().__init__(f"container not running ({cid})")


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, obj: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
        data = json.dumps(obj).encode() + b"\n"
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
            data = data[sent:]
        if data:   # an empty send to a peer that already answered and left: EPIPE
            self.sock.sendall(data)

    def recv(self) -> tuple[dict[str, Any] | None, list[int]]:
        """The next message and any fds that came with it; None at EOF."""
        fds: list[int] = []
        while b"\n" not in self.buf:
            data, got, _, _ = socket.recv_fds(self.sock, 65536, MAX_FDS)
            fds += got
            if not data:
                return None, fds
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line), fds


@contextmanager
def socket_path(cdir: ContainerDir) -> Iterator[str]:
    """The socket's path, short enough for sockaddr_un (108 bytes) however
    deep --root is (dockerd's runtime roots hold 64-character ids): named
    through an fd of its directory."""
    fd = os.open(cdir.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{cdir.socket.name}"
    finally:
        os.close(fd)


def connect(cdir: ContainerDir) -> Channel:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with socket_path(cdir) as path:
            sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise MonitorGone(cdir.id) from None
    return Channel(sock)


def request(cdir: ContainerDir, op: str, fds: list[int] | tuple[int, ...] = (),
            **args: Any) -> dict[str, Any]:
    with connect(cdir) as chan:
        return call(chan, cdir, op, fds, **args)


def call(chan: Channel, cdir: ContainerDir, op: str, fds: list[int] | tuple[int, ...] = (),
         **args: Any) -> dict[str, Any]:
    """Send one request on an open channel; its reply, or OciError."""
    try:
        chan.send({"op": op, **args}, fds)
        reply, extra = chan.recv()
    except (BrokenPipeError, ConnectionResetError):
        raise MonitorGone(cdir.id) from None
    for fd in extra:
        os.close(fd)
    if reply is None:
        raise MonitorGone(cdir.id)
    if "error" in reply:
        raise OciError(reply["error"])
    return reply
