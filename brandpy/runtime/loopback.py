"""The host's loopback, closed to a container that shares the host's
network stack (an unprivileged daemon's containers): connect() or
sendto() towards a local address (127.0.0.0/8, ::1, the unspecified
address, and their IPv4-mapped forms) reaches only a socket held by the
container's own processes or by a peer container's (the daemon names
their supervisors in the state directory's `peers`), or the host's
nameservers on port 53; anything else is refused as if nothing listened.

The owner of the socket listening at the port is found the way ss does:
its inode in /proc/net/{tcp,udp}{,6}, then the fds of the processes
under each allowed supervisor (/proc/PID/task/*/children)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

TCP_LISTEN = "0A"
DNS_PORT = 53


def local_destination(sa: bytes) -> bool:
    """Is this sockaddr_in/sockaddr_in6 one of the host's own addresses
    reached without a route (loopback, or unspecified, which the kernel
    turns into loopback)?"""
    family = struct.unpack_from("<H", sa)[0]
    if family == socket.AF_INET and len(sa) >= 8:
        return sa[4] == 127 or sa[4:8] == bytes(4)
    if family == socket.AF_INET6 and len(sa) >= 24:
        addr = ipaddress.IPv6Address(bytes(sa[8:24]))
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return mapped.is_loopback or mapped.is_unspecified
        return addr.is_loopback or addr.is_unspecified
    return False


def destination(sa: bytes) -> tuple[str, int]:
    family = struct.unpack_from("<H", sa)[0]
    port = struct.unpack_from(">H", sa, 2)[0]
    if family == socket.AF_INET:
        return socket.inet_ntoa(bytes(sa[4:8])), port
    addr = ipaddress.IPv6Address(bytes(sa[8:24]))
    return str(addr.ipv4_mapped or addr), port


def nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    """The host's nameservers, in order."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    out.append(fields[1])
    except OSError:
        pass
    return out


def _inodes(proto: str, port: int) -> set[str]:
    """Inodes of the sockets bound to the port on a local address (TCP:
    listening ones) in the caller's network namespace."""
    out = set()
    for table in (proto, proto + "6"):
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or int(fields[1].rsplit(":", 1)[1], 16) != port:
                continue
            if proto == "tcp" and fields[3] != TCP_LISTEN:
                continue
            out.add(fields[9])
    return out


def descendants(root: int) -> set[int]:
    """root and every process below it (those gone meanwhile left out)."""
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except OSError:
                continue
    return seen


def _holds(pids: set[int], targets: set[str]) -> bool:
    wanted = {f"socket:[{inode}]" for inode in targets}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return True
            except OSError:
                continue
    return False


def peers(state_dir: bytes) -> list[int]:
    try:
        with open(os.path.join(state_dir, b"peers")) as f:
            return [int(x) for x in f.read().split() if x.isdigit()]
    except OSError:
        return []


def allowed(proto: str, sa: bytes, state_dir: bytes) -> bool:
    """May a container whose supervisor is this process reach this local
    destination?"""
    host, port = destination(sa)
    if port == DNS_PORT and host in nameservers():
        return True
    inodes = _inodes(proto, port)
    if not inodes:
        return False
    # the processes under each supervisor, not the supervisor itself
    return any(_holds(descendants(root) - {root}, inodes)
               for root in (os.getpid(), *peers(state_dir)))
