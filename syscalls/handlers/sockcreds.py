"""Credentials that sockets carry: SO_PEERCRED and SO_PEERGROUPS (the
peer's, as it connected) and the SCM_CREDENTIALS control messages a
socket with SO_PASSCRED receives. They name the peer by host PID and,
with emulated identity, by host IDs: the container sees its own
(brandpy/runtime/ids.py).

getsockopt is trapped for these two options only, and answered from a
duplicate of the socket (the same socket, so the same peer). Receiving:
a process that turns SO_PASSCRED on gets its recvmsg/recvmmsg trapped
(stacked.py), and messages from a socket that passes credentials have
theirs translated."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.ids import Layout, cred_of, gid_out, to_guest
from brandpy.runtime.linux import libc, unix_peer_inode
from brandpy.runtime.seccomp import ret_trace

from . import stacked

SOL_SOCKET = 1
SO_PASSCRED, SO_PEERCRED, SO_PEERGROUPS = 16, 17, 59
SCM_CREDENTIALS = 2
UCRED_SIZE = 12
PEERCRED = Layout(UCRED_SIZE, pids=(0,), uids=((4, "euid"),), gids=((8, "egid"),))
SCM_CRED = Layout(UCRED_SIZE, pids=(0,), uids=((4, "ruid"),), gids=((8, "rgid"),))
NGROUPS_MAX = 65536
SYS_recvmsg, SYS_recvmmsg = 47, 299
MSGHDR_SIZE, MMSGHDR_SIZE = 56, 64
CMSG_HEADER = 16


def _sockopt(fd: int, name: int, size: int) -> bytes:
    """getsockopt(SOL_SOCKET, name) of a supervisor fd, any size."""
    buf = ctypes.create_string_buffer(size)
    length = ctypes.c_uint(size)
    if libc.getsockopt(fd, SOL_SOCKET, name, buf, ctypes.byref(length)) < 0:
        raise Errno(ctypes.get_errno())
    return buf.raw[:length.value]


def _ask(call: Call, fd: int, name: int, size: int) -> bytes:
    dup = call.sb.grab_fd(call.proc, fd)
    try:
        return _sockopt(dup, name, size)
    finally:
        os.close(dup)


def getsockopt(call: Call) -> int | None:
    """getsockopt(fd, level, name, optval, optlen) for SO_PEERCRED and
    SO_PEERGROUPS, with Linux's length rules."""
    if call.iarg(1) != SOL_SOCKET:
        return None
    name, optval, optlen = call.iarg(2), call.arg(3), call.arg(4)
    room = struct.unpack("<i", call.read(optlen, 4))[0]
    if room < 0:
        raise Errno(errno.EINVAL)
    peer = _ask(call, call.iarg(0), SO_PEERCRED, UCRED_SIZE)
    connector = _connector(call, peer)
    if connector is not None:
        peer = struct.pack("<iII", *connector[:3])
    if name == SO_PEERCRED:
        data = to_guest(call.sb, peer, PEERCRED, host=True)[:room]
    elif connector is not None and not call.sb.fake_ids:
        data = struct.pack(f"<{len(connector[3])}I", *connector[3])
    else:
        data = _peer_groups(call, peer)
        if room < len(data):
            call.write(optlen, struct.pack("<i", len(data)))
            raise Errno(errno.ERANGE)
    call.write(optval, data)
    call.write(optlen, struct.pack("<i", len(data)))
    return 0


def _connector(call: Call, peer: bytes) -> tuple[int, int, int, tuple[int, ...]] | None:
    """The container process the supervisor connected the peer socket for:
    the kernel records the connecting task, which was the supervisor
    (handlers/sock.py performs connect)."""
    if struct.unpack_from("<i", peer)[0] != os.getpid():
        return None
    dup = call.sb.grab_fd(call.proc, call.iarg(0))
    try:
        peer_ino = unix_peer_inode(dup)
    finally:
        os.close(dup)
    return call.sb.unix_connectors.get(peer_ino) if peer_ino is not None else None


def _peer_groups(call: Call, peer: bytes) -> bytes:
    raw = _ask(call, call.iarg(0), SO_PEERGROUPS, 4 * NGROUPS_MAX)
    if not call.sb.fake_ids:
        return raw
    pid = struct.unpack_from("<i", peer)[0]
    cred = cred_of(call.sb, pid) if pid > 0 else None
    if cred is not None:
        groups = list(cred.groups)
    else:
        groups = [gid_out(call.sb, g) for g in struct.unpack(f"<{len(raw) // 4}I", raw)]
    return struct.pack(f"<{len(groups)}I", *groups)


# -- SCM_CREDENTIALS -----------------------------------------------------------------------

RECV_FILTER = stacked.trap_filter({SYS_recvmsg: ret_trace(), SYS_recvmmsg: ret_trace()})


def setsockopt(call: Call) -> None:
    """Trapped for SO_PASSCRED only: turning it on first stacks the filter
    that traps this process's receives."""
    if call.iarg(1) != SOL_SOCKET or call.arg(3) == 0 or call.iarg(4) < 4:
        return None
    if struct.unpack("<i", call.read(call.arg(3), 4))[0]:
        stacked.ready(call, "recvmsg", RECV_FILTER)
    return None


def _passes_credentials(call: Call, fd: int) -> bool:
    try:
        return bool(struct.unpack("<i", _ask(call, fd, SO_PASSCRED, 4))[0])
    except Errno:
        return False            # not a socket: the kernel answers


def recvmsg(call: Call) -> None:
    """recvmsg(fd, msghdr, flags) and recvmmsg(fd, mmsghdr[], n, ...):
    trapped only in processes that turned SO_PASSCRED on (stacked.py)."""
    if not _passes_credentials(call, call.iarg(0)):
        return None
    headers = call.arg(1)

    def after(c: Call, result: int) -> None:
        if result < 0:
            return
        if c.nr == SYS_recvmsg:
            _translate_control(c, headers)
        else:
            for i in range(result):
                _translate_control(c, headers + i * MMSGHDR_SIZE)

    call.after(after)
    return None


def _translate_control(call: Call, msghdr: int) -> None:
    control, length = struct.unpack_from("<QQ", call.read(msghdr + 32, 16))
    if not control:
        return
    data = call.read(control, length)
    off = 0
    while off + CMSG_HEADER <= len(data):
        size, level, kind = struct.unpack_from("<Qii", data, off)
        if size < CMSG_HEADER:
            break
        if level == SOL_SOCKET and kind == SCM_CREDENTIALS and size >= CMSG_HEADER + UCRED_SIZE:
            at = off + CMSG_HEADER
            creds = data[at:at + UCRED_SIZE]
            seen = to_guest(call.sb, creds, SCM_CRED)
            if seen != creds:
                call.write(control + at, seen)
        off += (size + 7) & ~7
