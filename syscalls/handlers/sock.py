"""Sockets: AF_UNIX names are paths, and published ports are translated.

bind, connect, sendto (with a destination), sendmsg and sendmmsg
(sendmsg.py) are performed by the supervisor on the tracee's own socket,
taken with pidfd_getfd: the address is read once from the tracee's
memory, and an AF_UNIX path is resolved on descriptors inside the
container (pathres), then reached through /proc/self/fd/N: for bind, N the
directory found and the new name in it; for connect and the sends, N an
O_PATH descriptor of exactly the socket file found. The kernel never walks a path the container can still change, and
names longer than sun_path's 108 bytes work (only the last component must
fit). A connect or send that may block runs on a thread (deferred.py).

The names the kernel then records (/proc/self/fd/N/NAME) are mapped back
to the guest path the program gave (Sandbox.unix_names) on the way out
(getsockname, getpeername, accept, recvfrom). Abstract names (leading NUL)
and other families pass through; -p HOST:CONTAINER ports are translated
both ways.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import stat
import struct
from collections.abc import Callable

from brandpy.runtime import dac, loopback
from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import libc

from . import deferred
from .paths import find_path, parent_of, umask_of

SUN_PATH_MAX = 108
SOL_SOCKET = socket.SOL_SOCKET
SO_DOMAIN = 39
MSG_DONTWAIT = 0x40


def _sun_path(addr: bytes) -> bytes | None:
    """The filesystem path in a sockaddr_un, None for other families,
    unnamed and abstract sockets."""
    if len(addr) <= 2 or struct.unpack_from("<H", addr)[0] != socket.AF_UNIX:
        return None
    path = addr[2:].split(b"\0", 1)[0]
    if not path:
        return None
    return path


def _abstract_reachable(call: Call, addr: bytes) -> None:
    """The walls' scope for abstract unix sockets (Landlock, brandpy/
    runtime/landlock.py), kept by the supervisor's own connect and sendto,
    which no Landlock domain restricts: a socket bound at that name in the
    caller's network namespace (its /proc/PID/net/unix, as ss finds it)
    answers only if one of the container's processes holds it, else EPERM,
    as the walls say. A name nothing is bound at is the kernel's to refuse."""
    if len(addr) <= 3 or struct.unpack_from("<H", addr)[0] != socket.AF_UNIX or addr[2]:
        return
    shown = b"@" + addr[3:].replace(b"\0", b"@")
    try:
        with open(b"/proc/%d/net/unix" % call.proc.tgid, "rb") as f:
            inodes = {b"socket:[%s]" % fields[6] for fields in
                      (line.rstrip(b"\n").split(None, 7) for line in f)
                      if len(fields) == 8 and fields[7] == shown}
    except OSError:
        inodes = set()
    if not inodes:
        return
    for tgid in call.sb.tgids():
        try:
            fds = os.listdir(b"/proc/%d/fd" % tgid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(b"/proc/%d/fd/%s" % (tgid, fd)) in inodes:
                    return
            except OSError:
                continue
    raise Errno(errno.EPERM, "an abstract socket outside the container (the walls' scope)")


def _sockaddr(call: Call, addr_i: int, len_i: int) -> bytes:
    """The address argument, read once (at most a sockaddr_storage)."""
    size = call.iarg(len_i)
    if size < 0 or size > 128:
        raise Errno(errno.EINVAL)
    return call.read(call.arg(addr_i), size) if size else b""


def _unix_addr(path: bytes) -> bytes:
    if len(path) >= SUN_PATH_MAX:
        raise Errno(errno.ENAMETOOLONG)
    return struct.pack("<H", socket.AF_UNIX) + path + b"\0"


def _raw(fn: Callable[..., int], fd: int, addr: bytes, *more: int) -> int:
    """bind/connect(fd, addr) on a sockaddr as bytes; -errno on failure."""
    buf = ctypes.create_string_buffer(addr, len(addr))
    if fn(fd, *more, buf, ctypes.c_uint(len(addr))) < 0:
        return -(ctypes.get_errno() or errno.EIO)
    return 0


def blocking(fd: int) -> bool:
    return not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK


class Socket:
    """The tracee's socket, duplicated into the supervisor."""

    def __init__(self, call: Call, fd: int) -> None:
        self.fd = call.sb.grab_fd(call.proc, fd)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *_exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)

    def give(self) -> int:
        """Hand the fd over (to a deferred call)."""
        fd, self.fd = self.fd, -1
        return fd


# -- bind ---------------------------------------------------------------------

def bind(call: Call) -> int | None:
    addr = _sockaddr(call, 1, 2)
    family = struct.unpack_from("<H", addr)[0] if len(addr) >= 2 else -1
    inet = family in (socket.AF_INET, socket.AF_INET6)
    # exact: a port below ip_unprivileged_port_start takes the caller's
    # CAP_NET_BIND_SERVICE, never the supervisor's
    with as_tracee(call.proc.cred, call.sb, exact=inet), \
            Socket(call, call.iarg(0)) as fd:
        if inet:
            return _bind_port(call, fd, bytearray(addr))
        path = _sun_path(addr)
        if path is None:
            return _raw(libc.bind, fd, addr)
        return _bind_unix(call, fd, path)


def _bind_unix(call: Call, fd: int, path: bytes) -> int:
    """A new socket file in the directory found: bound to
    /proc/self/fd/DIRFD/NAME, which the kernel creates without following."""
    with parent_of(call, 0, path=path) as r:
        if not r.name or r.must_dir or r.name == b".":
            raise Errno(errno.EADDRINUSE if not r.name or r.name == b"." else errno.ENOENT)
        dac.may_create(r.dirfd, r.name)
        name = b"/proc/self/fd/%d/%s" % (r.dirfd, r.name)
        old = os.umask(umask_of(call.tid))
        try:
            rc = _raw(libc.bind, fd, _unix_addr(name))
        finally:
            os.umask(old)
        if rc == 0:
            call.sb.unix_names[name] = path
        return rc


# -- connect and sendto -----------------------------------------------------------

def _unix_target(call: Call, path: bytes) -> tuple[bytes, int]:
    """The socket file a path names, held open: (its sockaddr through
    /proc/self/fd/N, N, for the caller to close)."""
    with find_path(call, path) as obj:
        if not dac.allowed(obj.fd, dac.MAY_WRITE, obj.st):     # as unix_find_bsd, first
            raise Errno(errno.EACCES)
        if not stat.S_ISSOCK(obj.st.st_mode):
            raise Errno(errno.ECONNREFUSED)
        fd = os.dup(obj.fd)
    return _unix_addr(b"/proc/self/fd/%d" % fd), fd


def connect(call: Call) -> int | None:
    addr = _sockaddr(call, 1, 2)
    family = struct.unpack_from("<H", addr)[0] if len(addr) >= 2 else -1
    held = -1
    with as_tracee(call.proc.cred, call.sb), Socket(call, call.iarg(0)) as fd:
        if family in (socket.AF_INET, socket.AF_INET6):
            addr = _local_destination(call, fd, bytearray(addr))
        elif _sun_path(addr) is None:
            _abstract_reachable(call, addr)
        else:
            addr, held = _unix_target(call, _sun_path(addr) or b"")
        if family == socket.AF_UNIX:    # SO_PEERCRED will name the supervisor
            c = call.proc.cred
            call.sb.unix_connectors[os.fstat(fd).st_ino] = (call.proc.tgid, c.euid, c.egid,
                                                             c.groups)
        return _maybe_later(call, "connect", fd, held, lambda sock: _raw(libc.connect, sock, addr))


def destination(call: Call, fd: int, addr: bytes) -> tuple[bytes, int]:
    """Where a send on fd goes, as the supervisor hands it to the kernel:
    an AF_UNIX path resolved inside the container (with the descriptor
    held for it, for the caller to close; else -1), an abstract name only
    if the container's, a local inet destination through the port map."""
    path = _sun_path(addr)
    family = struct.unpack_from("<H", addr)[0] if len(addr) >= 2 else -1
    if path is not None:
        return _unix_target(call, path)
    if family == socket.AF_UNIX:
        _abstract_reachable(call, addr)
    elif family in (socket.AF_INET, socket.AF_INET6):
        addr = _local_destination(call, fd, bytearray(addr))
    return addr, -1


def sendto(call: Call) -> int | None:
    """sendto with a destination (the filter lets the others run)."""
    addr = _sockaddr(call, 4, 5)
    size, flags = call.arg(2), call.iarg(3)
    data = call.read(call.arg(1), min(size, 1 << 24))
    with as_tracee(call.proc.cred, call.sb), Socket(call, call.iarg(0)) as fd:
        addr, held = destination(call, fd, addr)

        def send(sock: int) -> int:
            buf = ctypes.create_string_buffer(data, len(data))
            dest = ctypes.create_string_buffer(addr, len(addr))
            n = libc.sendto(sock, buf, ctypes.c_size_t(len(data)), flags, dest,
                            ctypes.c_uint(len(addr)))
            return int(n) if n >= 0 else -(ctypes.get_errno() or errno.EIO)

        if flags & MSG_DONTWAIT:
            try:
                return send(fd)
            finally:
                if held >= 0:
                    os.close(held)
        return _maybe_later(call, "sendto", fd, held, send)


def _maybe_later(call: Call, what: str, fd: int, held: int,
                 act: Callable[[int], int]) -> int | None:
    """act(fd) now on a non-blocking socket, else on a thread (deferred);
    then close what was held for it."""
    if not blocking(fd):
        try:
            return act(fd)
        finally:
            if held >= 0:
                os.close(held)
    sock = os.dup(fd)

    def work() -> int:
        try:
            return act(sock)
        finally:
            os.close(sock)
            if held >= 0:
                os.close(held)

    def unused() -> None:
        os.close(sock)
        if held >= 0:
            os.close(held)

    result = deferred.defer(call, (what, call.iarg(0)), work, unused)
    return result if result is None or isinstance(result, int) else None


# -- ports -------------------------------------------------------------------

def _proto(fd: int) -> str | None:
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    with sock:
        return {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(sock.type)


def _bind_port(call: Call, fd: int, sa: bytearray) -> int:
    """-p HOST:CONTAINER: the container's bind() of CONTAINER binds HOST;
    a privileged port the supervisor cannot bind gets an ephemeral one."""
    if len(sa) < 4:
        return _raw(libc.bind, fd, bytes(sa))
    port = struct.unpack_from(">H", sa, 2)[0]
    ports = call.sb.ports
    proto = _proto(fd) if ports.interesting(port) else None
    target = ports.for_bind(proto, port) if proto else None
    if target is None:
        return _raw(libc.bind, fd, bytes(sa))
    host_ip, host_port = target
    struct.pack_into(">H", sa, 2, host_port)
    family = struct.unpack_from("<H", sa)[0]
    if host_ip and family == socket.AF_INET and sa[4:8] == bytes(4):
        sa[4:8] = socket.inet_aton(host_ip)
    rc = _raw(libc.bind, fd, bytes(sa))
    if rc == 0 and host_port == 0 and proto is not None:
        bound = _local_port(fd)
        if bound:
            call.sb.ports.bound(proto, port, bound)
    return rc


def _local_port(fd: int) -> int:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return int(sock.getsockname()[1])
    except OSError:
        return 0
    finally:
        sock.close()


def _local_destination(call: Call, fd: int, sa: bytearray) -> bytes:
    """From inside, the container's own published ports answer at their
    container port on loopback, as they would inside its namespace; and
    with the host's loopback closed (brandpy/runtime/loopback.py) nothing
    else local answers."""
    family = struct.unpack_from("<H", sa)[0] if len(sa) >= 2 else -1
    if len(sa) < 8 or (family == socket.AF_INET6 and len(sa) < 24) or \
            not loopback.local_destination(bytes(sa)):
        return bytes(sa)
    port = struct.unpack_from(">H", sa, 2)[0]
    closed = call.sb.config.loopback_closed
    if not closed and not call.sb.ports.interesting(port):
        return bytes(sa)
    proto = _proto(fd)
    if proto is None:
        return bytes(sa)
    host_port = call.sb.ports.host_port(proto, port) if call.sb.ports.interesting(port) else None
    if host_port is not None:
        struct.pack_into(">H", sa, 2, host_port)
    if closed and not loopback.allowed(proto, bytes(sa), call.sb.state):
        raise Errno(errno.ECONNREFUSED, "the host's loopback is closed to the container")
    return bytes(sa)


def _inet_name(call: Call, sock: socket.socket, peer: bool) -> int | None:
    """getsockname of a socket bound through a port mapping shows the
    container port; so does getpeername of a loopback connection to one."""
    proto = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(sock.type)
    try:
        name = sock.getpeername() if peer else sock.getsockname()
    except OSError:
        return None
    if peer and not (name[0].startswith("127.") or name[0] == "::1"):
        return None
    port = call.sb.ports.container_port(proto, name[1]) if proto else None
    if port is None:
        return None
    if sock.family == socket.AF_INET:
        sa = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + \
            socket.inet_aton(name[0]) + bytes(8)
    else:
        sa = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", port) + \
            struct.pack(">I", name[2]) + socket.inet_pton(socket.AF_INET6, name[0]) + \
            struct.pack("<I", name[3])
    room = int.from_bytes(call.read(call.arg(2), 4), "little", signed=True)
    if room < 0:
        raise Errno(errno.EINVAL)
    call.write(call.arg(1), sa[:room])
    call.write(call.arg(2), len(sa).to_bytes(4, "little"))
    return 0


def _unix_name_out(call: Call, host_path: bytes) -> bytes:
    given = call.sb.unix_names.get(host_path)
    if given is not None:
        return given          # bound through the supervisor: the name the program gave
    guest = call.sb.resolver.guest_of_host(call.proc, host_path)
    return guest if guest is not None else host_path


def _write_sockaddr(call: Call, addr_p: int, len_p: int, path: bytes) -> None:
    """Write a sockaddr_un the way the kernel does: truncated to the
    caller's buffer, *len set to the full length."""
    sockaddr = struct.pack("<H", socket.AF_UNIX) + path + b"\0"
    room = int.from_bytes(call.read(len_p, 4), "little", signed=True)
    if room < 0:
        raise Errno(errno.EINVAL)
    call.write(addr_p, sockaddr[:room])
    call.write(len_p, len(sockaddr).to_bytes(4, "little"))


def _grab(call: Call, fd: int) -> socket.socket:
    """The tracee's socket, duplicated into the supervisor."""
    dup = call.sb.grab_fd(call.proc, fd)
    try:
        return socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        raise Errno(errno.ENOTSOCK) from None


def _name(call: Call, peer: bool) -> int | None:
    sock = _grab(call, call.iarg(0))
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            return _inet_name(call, sock, peer)
        finally:
            sock.close()
    if sock.family != socket.AF_UNIX:
        sock.close()
        return None
    try:
        name = sock.getpeername() if peer else sock.getsockname()
    except OSError as exc:
        raise Errno(exc.errno or errno.ENOTCONN) from None
    finally:
        sock.close()
    if isinstance(name, bytes) or not name:   # abstract or unnamed: nothing to translate
        return None
    _write_sockaddr(call, call.arg(1), call.arg(2), _unix_name_out(call, os.fsencode(name)))
    return 0


def getsockname(call: Call) -> int | None:
    return _name(call, peer=False)


def getpeername(call: Call) -> int | None:
    return _name(call, peer=True)


def _fix_out(call: Call, addr_i: int, len_i: int) -> None:
    """accept/recvfrom on an AF_UNIX socket: the peer's name is only known
    after the call, so ask for the exit stop."""
    addr_p, len_p = call.arg(addr_i), call.arg(len_i)
    if addr_p == 0 or len_p == 0:
        return None
    sock = _grab(call, call.iarg(0))
    family = sock.family
    sock.close()
    if family != socket.AF_UNIX:
        return None
    room = call.read(len_p, 4)

    def after(call: Call, result: int) -> int | None:
        if result < 0:
            return None
        got = int.from_bytes(call.read(len_p, 4), "little")
        path = _sun_path(call.read(addr_p, min(got, int.from_bytes(room, "little"))))
        if path is None:
            return None
        call.write(len_p, room)
        _write_sockaddr(call, addr_p, len_p, _unix_name_out(call, path))
        return None

    call.after(after)
    return None


def accept(call: Call) -> None:
    _fix_out(call, 1, 2)


accept4 = accept


def recvfrom(call: Call) -> None:
    _fix_out(call, 4, 5)
