"""AF_UNIX socket names are paths: translated on the way in (bind,
connect, sendto) and on the way out (getsockname, getpeername, accept,
recvfrom). Abstract names (leading NUL) and other families pass through."""

from __future__ import annotations

import errno
import os
import socket
import struct

from brandpy.runtime import loopback
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno

SUN_PATH_MAX = 108
SOL_SOCKET = socket.SOL_SOCKET
SO_DOMAIN = 39


def _sun_path(addr: bytes) -> bytes | None:
    """The filesystem path in a sockaddr_un, None for other families,
    unnamed and abstract sockets."""
    if len(addr) <= 2 or struct.unpack_from("<H", addr)[0] != socket.AF_UNIX:
        return None
    path = addr[2:].split(b"\0", 1)[0]
    if not path:
        return None
    return path


def _translate_in(call: Call, addr_i: int, len_i: int, *, creating: bool) -> None:
    size = call.iarg(len_i)
    if call.arg(addr_i) == 0 or size <= 2:
        return None
    if size > 2 + SUN_PATH_MAX:
        size = 2 + SUN_PATH_MAX
    path = _sun_path(call.read(call.arg(addr_i), size))
    if path is None:
        return None
    r = call.sb.resolver.resolve(call.proc, call.tid, path, follow=not creating)
    if creating and r.readonly:
        raise Errno(errno.EROFS)
    if len(r.host) >= SUN_PATH_MAX:
        raise Errno(errno.ENAMETOOLONG, "host path of the socket exceeds sun_path; "
                    "use a shorter data root")
    sockaddr = struct.pack("<H", socket.AF_UNIX) + r.host + b"\0"
    call.set_arg(addr_i, call.push(sockaddr))
    call.set_arg(len_i, len(sockaddr))
    return None


def bind(call: Call) -> None:
    if _family(call, 1, 2) in (socket.AF_INET, socket.AF_INET6):
        return _bind_port(call)
    _translate_in(call, 1, 2, creating=True)


def connect(call: Call) -> None:
    if _family(call, 1, 2) in (socket.AF_INET, socket.AF_INET6):
        return _connect_port(call)
    _translate_in(call, 1, 2, creating=False)


# -- ports -------------------------------------------------------------------

def _family(call: Call, addr_i: int, len_i: int) -> int:
    if call.arg(addr_i) == 0 or call.iarg(len_i) < 2:
        return -1
    family: int = struct.unpack("<H", call.read(call.arg(addr_i), 2))[0]
    return family


def _proto(call: Call, fd: int) -> str | None:
    dup = call.sb.grab_fd(call.proc, fd)
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None
    kind = sock.type
    sock.close()
    return {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(kind)


def _inet_sockaddr(call: Call, addr_i: int, len_i: int) -> bytearray:
    return bytearray(call.read(call.arg(addr_i), min(call.iarg(len_i), 28)))


def _bind_port(call: Call) -> None:
    """-p HOST:CONTAINER: the container's bind() of CONTAINER binds HOST;
    a privileged port the supervisor cannot bind gets an ephemeral one."""
    sa = _inet_sockaddr(call, 1, 2)
    if len(sa) < 4:
        return None
    port: int = struct.unpack_from(">H", sa, 2)[0]
    ports = call.sb.ports
    if not ports.interesting(port):
        return None
    proto = _proto(call, call.iarg(0))
    target = ports.for_bind(proto, port) if proto else None
    if proto is None or target is None:
        return None
    host_ip, host_port = target
    struct.pack_into(">H", sa, 2, host_port)
    family = struct.unpack_from("<H", sa)[0]
    if host_ip and family == socket.AF_INET and sa[4:8] == bytes(4):
        sa[4:8] = socket.inet_aton(host_ip)
    call.set_arg(1, call.push(bytes(sa)))
    if host_port == 0:
        def learn(c: Call, result: int) -> None:
            if result == 0:
                bound = _local_port(c, c.iarg(0))
                if bound:
                    c.sb.ports.bound(proto, port, bound)
        call.after(learn)
    return None


def _local_port(call: Call, fd: int) -> int:
    dup = call.sb.grab_fd(call.proc, fd)
    sock = socket.socket(fileno=dup)
    try:
        port: int = sock.getsockname()[1]
        return port
    except OSError:
        return 0
    finally:
        sock.close()


def _connect_port(call: Call) -> None:
    """From inside, the container's own published ports answer at their
    container port on loopback, as they would inside its namespace; and
    with the host's loopback closed (brandpy/runtime/loopback.py) nothing
    else local answers."""
    _local_destination(call, 1, 2, call.iarg(0))


def _local_destination(call: Call, addr_i: int, len_i: int, fd: int) -> None:
    sa = _inet_sockaddr(call, addr_i, len_i)
    if len(sa) < 8 or (struct.unpack_from("<H", sa)[0] == socket.AF_INET6 and len(sa) < 24):
        return None
    if not loopback.local_destination(bytes(sa)):
        return None
    port = struct.unpack_from(">H", sa, 2)[0]
    closed = call.sb.config.loopback_closed
    if not closed and not call.sb.ports.interesting(port):
        return None
    proto = _proto(call, fd)
    if proto is None:
        return None
    host_port = call.sb.ports.host_port(proto, port) if call.sb.ports.interesting(port) else None
    if host_port is not None:
        struct.pack_into(">H", sa, 2, host_port)
    if closed and not loopback.allowed(proto, bytes(sa), call.sb.state):
        raise Errno(errno.ECONNREFUSED, "the host's loopback is closed to the container")
    if closed or host_port not in (None, port):
        call.set_arg(addr_i, call.push(bytes(sa)))   # the kernel reads what was checked
    return None


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


def sendto(call: Call) -> None:
    if _family(call, 4, 5) in (socket.AF_INET, socket.AF_INET6):
        return _local_destination(call, 4, 5, call.iarg(0))
    _translate_in(call, 4, 5, creating=False)


def _unix_name_out(call: Call, host_path: bytes) -> bytes:
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
