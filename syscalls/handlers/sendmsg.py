"""sendmsg and sendmmsg, performed by the supervisor on the tracee's socket.

BPF cannot see into a msghdr, and a seccomp "continue" after a check
would let the kernel read the header again, which a sibling thread may
have changed meanwhile (a msg_name flipped to a host socket's path). So
every call is trapped and performed here, on a duplicate of the socket
(pidfd_getfd), from one copy of each header, its iovecs and its control
data. A destination is handled as sendto's (sock.destination): an AF_UNIX
path is resolved on descriptors inside the container and reached through
/proc/self/fd/N, an abstract name must be the container's, a local inet
destination follows the port map. SCM_RIGHTS descriptors are taken from
the caller with pidfd_getfd (EBADF for one that is not open, as Linux
says); the control data the kernel sees is rebuilt here, so no descriptor
number of the caller's ever names one of the supervisor's. An explicit
SCM_CREDENTIALS is refused with EPERM: the kernel would check it against
the supervisor, which may claim any process (as root) or only itself.

The native engine answers the common case, no destination and no control
data, in C (native/notify.c send_family); this is the reference, for the
rest and for the Python engine and the trace mode.

The send is made with MSG_DONTWAIT; on a blocking socket where it would
block it is made again on a thread (deferred.py), blocking there. A
broken pipe raises SIGPIPE in the calling thread unless MSG_NOSIGNAL, as
the kernel's own send would.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import struct
from collections.abc import Callable
from dataclasses import replace

from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.identity import Cred
from brandpy.runtime.linux import libc

from . import deferred
from .sock import MSG_DONTWAIT, SO_DOMAIN, Socket, blocking, destination

MSGHDR = struct.Struct("<QI4xQQQQi4x")    # name, namelen, iov, iovlen, control, controllen
MMSGHDR_SIZE = 64                          # a msghdr, then msg_len
IOVEC = struct.Struct("<QQ")
CMSGHDR = struct.Struct("<Qii")            # cmsg_len, cmsg_level, cmsg_type
UIO_MAXIOV = 1024
SOCKADDR_MAX = 128                         # sizeof(struct sockaddr_storage)
MAX_DATA = 1 << 24                         # what one performed send copies at most
MAX_CONTROL = 1 << 17                      # net.core.optmem_max's default: ENOBUFS above
SCM_MAX_FD = 253
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
MSG_NOSIGNAL = 0x4000
SSIZE_MAX = (1 << 63) - 1
SYS_tgkill = 234
VOUCH_CAPS = frozenset({"CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID"})

libc.sendmsg.restype = ctypes.c_ssize_t


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


def _align(n: int) -> int:
    return (n + 7) & ~7


class Message:
    """One message, copied out of the tracee: its destination (as the
    supervisor hands it to the kernel), data and control data, and the
    descriptors held for them."""

    def __init__(self) -> None:
        self.name = b""
        self.data = b""
        self.control = b""
        self.held: list[int] = []

    def close(self) -> None:
        for fd in self.held:
            os.close(fd)
        self.held.clear()

    def send(self, sock: int, flags: int) -> int:
        """sendmsg on the supervisor's socket: bytes sent or -errno."""
        keep = [ctypes.create_string_buffer(b, len(b) or 1)
                for b in (self.name, self.data, self.control)]
        name, data, control = keep
        iov = (ctypes.c_size_t * 2)(ctypes.addressof(data), len(self.data))
        hdr = _MsgHdr(ctypes.addressof(name) if self.name else None, len(self.name),
                      ctypes.addressof(iov), 1,
                      ctypes.addressof(control) if self.control else None, len(self.control), 0)
        n = libc.sendmsg(sock, ctypes.byref(hdr), flags)
        return int(n) if n >= 0 else -(ctypes.get_errno() or errno.EIO)


def _control(call: Call, raw: bytes, held: list[int]) -> bytes:
    """The control data to send: each SCM_RIGHTS descriptor replaced by the
    supervisor's duplicate of the caller's; the rest as given. Walked as
    the kernel walks it (CMSG_FIRSTHDR/NXTHDR), a malformed header is
    EINVAL here, before the kernel sees anything."""
    out = bytearray()
    at = 0
    while at + CMSGHDR.size <= len(raw):
        length, level, kind = CMSGHDR.unpack_from(raw, at)
        if length < CMSGHDR.size or length > len(raw) - at:
            raise Errno(errno.EINVAL)
        body = raw[at + CMSGHDR.size:at + length]
        if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS:
            raise Errno(errno.EPERM, "an explicit SCM_CREDENTIALS would be checked against "
                        "the supervisor's own")
        if level == socket.SOL_SOCKET and kind == SCM_RIGHTS:
            count = len(body) // 4
            if count > SCM_MAX_FD:
                raise Errno(errno.EINVAL)
            fds = []
            for (fd,) in struct.iter_unpack("<i", body[:count * 4]):
                fds.append(call.sb.grab_fd(call.proc, fd))
                held.append(fds[-1])
            body = struct.pack(f"<{count}i", *fds)
            length = CMSGHDR.size + len(body)
        piece = CMSGHDR.pack(length, level, kind) + body
        out += piece + bytes(_align(len(piece)) - len(piece))
        at += _align(length)
    return bytes(out)


def read_message(call: Call, fd: int, addr: int) -> Message:
    """One struct msghdr at addr, read once, with what it points at."""
    name_p, namelen, iov_p, iovlen, control_p, controllen = MSGHDR.unpack(
        call.read(addr, MSGHDR.size))[:6]
    m = Message()
    try:
        if iovlen > UIO_MAXIOV:
            raise Errno(errno.EMSGSIZE)
        if controllen > 0x7FFFFFFF:
            raise Errno(errno.ENOBUFS)
        parts, total = [], 0
        for base, length in IOVEC.iter_unpack(call.read(iov_p, iovlen * IOVEC.size)):
            if length > SSIZE_MAX:
                raise Errno(errno.EINVAL)
            take = min(length, MAX_DATA - total)
            parts.append(call.read(base, take))
            total += take
        m.data = b"".join(parts)
        if controllen:
            if controllen > MAX_CONTROL:
                raise Errno(errno.ENOBUFS)
            m.control = _control(call, call.read(control_p, controllen), m.held)
        if name_p and namelen:
            if namelen & 0x80000000:
                raise Errno(errno.EINVAL)
            m.name, held = destination(call, fd, call.read(name_p, min(namelen, SOCKADDR_MAX)))
            if held >= 0:
                m.held.append(held)
    except BaseException:
        m.close()
        raise
    return m


def _send_from(call: Call, sock: int, msgs: list[Message], start: int, flags: int,
               lens_at: int | None) -> tuple[int, int]:
    """Send msgs[start:] in order, until one fails: (the index reached, the
    last send's result); sendmmsg's msg_len written for each sent."""
    n = 0
    for i in range(start, len(msgs)):
        n = msgs[i].send(sock, flags | MSG_NOSIGNAL)
        if n == -errno.EPIPE and not flags & MSG_NOSIGNAL:
            libc.syscall(SYS_tgkill, call.proc.tgid, call.tid, signal.SIGPIPE)
        if n < 0:
            return i, n
        if lens_at is not None:
            call.write(lens_at + i * MMSGHDR_SIZE + MSGHDR.size, n.to_bytes(4, "little"))
    return len(msgs), n


def _outcome(reached: int, last: int, lens_at: int | None) -> int:
    """sendmsg: the bytes sent or the error; sendmmsg: the messages sent,
    the error only when none was."""
    if lens_at is None:
        return last
    return reached if reached else last


def _family(fd: int) -> int:
    """The socket's address family; -1 for what is no socket."""
    value, size = ctypes.c_int(-1), ctypes.c_uint(4)
    if libc.getsockopt(fd, socket.SOL_SOCKET, SO_DOMAIN, ctypes.byref(value),
                       ctypes.byref(size)) < 0:
        return -1
    return value.value


def _vouching(call: Call, fd: int, msgs: list[Message]) -> Cred:
    """The identity to send with. A receiver with SO_PASSCRED would see the
    supervisor's PID and IDs: as root, each message on an AF_UNIX socket
    carries the caller's own (its host PID, real IDs, what the kernel
    would attach) as an explicit SCM_CREDENTIALS, which the kernel accepts
    from CAP_SYS_ADMIN and CAP_SETUID/CAP_SETGID; those are added to the
    caller's capabilities for the send (they do not bear on its file
    permission checks). Unprivileged the kernel lets the supervisor vouch
    only for itself (README, Limits)."""
    cred = call.proc.cred
    if call.sb.fake_ids or os.geteuid() != 0:
        return cred
    if _family(fd) != socket.AF_UNIX:
        return cred
    ucred = struct.pack("<iII", call.proc.tgid, cred.ruid, cred.rgid)
    piece = CMSGHDR.pack(CMSGHDR.size + len(ucred), socket.SOL_SOCKET, SCM_CREDENTIALS) + ucred
    for m in msgs:
        m.control += piece + bytes(_align(len(piece)) - len(piece))
    return replace(cred, caps=cred.caps | VOUCH_CAPS)


def _perform(call: Call, what: str, read: Callable[[int], list[Message]], flags: int,
             lens_at: int | None) -> int | None:
    """Read the messages (read(socket)) and send them on the caller's
    socket; what would block a blocking socket goes on a thread."""
    msgs: list[Message] = []
    deferring = False
    try:
        with Socket(call, call.iarg(0)) as fd:
            with as_tracee(call.proc.cred, call.sb):
                msgs = read(fd)
            if not msgs:
                return 0
            with as_tracee(_vouching(call, fd, msgs), call.sb):
                waits = not flags & MSG_DONTWAIT and blocking(fd)
                reached, last = _send_from(call, fd, msgs, 0, flags | MSG_DONTWAIT, lens_at)
                if last != -errno.EAGAIN or not waits:
                    return _outcome(reached, last, lens_at)
                sock = os.dup(fd)
                deferring = True
    finally:
        if not deferring:
            for m in msgs:
                m.close()

    def release() -> None:
        os.close(sock)
        for m in msgs:
            m.close()

    def work() -> int:
        try:
            more, last = _send_from(call, sock, msgs, reached, flags, lens_at)
            return _outcome(more, last, lens_at)
        finally:
            release()

    result = deferred.defer(call, (what, call.iarg(0)), work, release)
    return result if result is None or isinstance(result, int) else None


def sendmsg(call: Call) -> int | None:
    return _perform(call, "sendmsg", lambda fd: [read_message(call, fd, call.arg(1))],
                    call.iarg(2), None)


def sendmmsg(call: Call) -> int | None:
    vec, count = call.arg(1), min(call.arg(2) & 0xFFFFFFFF, UIO_MAXIOV)

    def read(fd: int) -> list[Message]:
        msgs: list[Message] = []
        for i in range(count):
            try:
                msgs.append(read_message(call, fd, vec + i * MMSGHDR_SIZE))
            except Errno:
                if not msgs:
                    raise
                break        # the kernel sends those before the bad one
            except BaseException:
                for m in msgs:
                    m.close()
                raise
        return msgs

    return _perform(call, "sendmmsg", read, call.iarg(3), vec)
