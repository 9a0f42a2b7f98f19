"""Network namespaces: made or joined by the process that will own one (a
container's shim, brandpy-runc's monitor) before it starts any thread, so
everything it starts afterwards lives there; and the few settings a
container's namespace gets, as dockerd gives them.

A namespace is named by a file: /proc/PID/ns/net of a process in it, or a
bind mount of one (`ip netns add`'s /run/netns/NAME). Python 3.11 has no
os.unshare/os.setns, hence ctypes."""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

from .errors import NetworkError

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1
NEW = "new"

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise NetworkError(f"{what}: {os.strerror(ctypes.get_errno())}")


def enter(spec: str) -> None:
    """Make ("new") or join (a namespace file) a network namespace for the
    calling thread and what it starts from now on; "" keeps the current."""
    if not spec:
        return
    if spec == NEW:
        _check(_libc.unshare(CLONE_NEWNET), "new network namespace")
        return
    try:
        fd = os.open(spec, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetworkError(f"network namespace {spec}: {exc.strerror}") from None
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"network namespace {spec}")
    finally:
        os.close(fd)


def of_pid(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def same(a: str, b: str) -> bool:
    """Do two namespace files name the same namespace?"""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def run_in(spec: str, fn: Callable[[], T]) -> T:
    """fn() on a thread of its own inside the namespace `spec` (a network
    namespace is per thread: the caller's stays as it was)."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            enter(spec)
            result.append(fn())
        except BaseException as exc:   # handed back to the caller
            error.append(exc)

    t = threading.Thread(target=body, name="netns")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def loopback_up() -> None:
    """lo up in the calling thread's namespace (a new one's is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def container_defaults() -> None:
    """In a container's new namespace (calling thread): loopback up, and
    the sysctls dockerd sets there, so a non-root user may bind ports below
    1024 and ping (they are the namespace's own)."""
    loopback_up()
    for name, value in (("ipv4/ip_unprivileged_port_start", "0"),
                        ("ipv4/ping_group_range", "0 2147483647")):
        with open(f"/proc/sys/net/{name}", "w") as f:
            f.write(value)
