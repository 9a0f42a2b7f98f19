"""IDs that file descriptors carry: the holder of a record lock
(F_GETLK's l_pid), the process or group a file signals (F_SETOWN and its
variants, the socket ioctls FIOSETOWN/SIOCSPGRP and their getters), the
process a pidfd names (PIDFD_GET_INFO) and a user namespace's owner
(NS_GET_OWNER_UID). Container PIDs go to the
kernel as host PIDs and come back translated (brandpy/runtime/ids.py)."""

from __future__ import annotations

import errno
import fcntl as fcntl_
import os
import stat
import struct
from typing import TYPE_CHECKING

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.ids import Layout, parent_out, pid_in, pid_out, to_guest, uid_out

from . import pids

if TYPE_CHECKING:
    from brandpy.runtime.sandbox import Sandbox

F_GETLK, F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX, F_GETOWNER_UIDS = 5, 8, 9, 15, 16, 17
F_OFD_GETLK = 36
FCNTL_CMDS = (F_GETLK, F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX, F_GETOWNER_UIDS, F_OFD_GETLK)
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
FLOCK = Layout(32, pids=(24,))
NS_OWNER = Layout(4, uids=((0, "euid"),))        # no process: the supervisor's or overflow
INT_MIN = -(1 << 31)

FIOSETOWN, SIOCSPGRP, FIOGETOWN, SIOCGPGRP = 0x8901, 0x8902, 0x8903, 0x8904
SOCKET_OWNER_CMDS = (FIOSETOWN, SIOCSPGRP, FIOGETOWN, SIOCGPGRP)
# PIDFD_GET_INFO is _IOWR(0xFF, 11, struct pidfd_info): its size bits vary
PIDFD_GET_INFO, PIDFD_GET_INFO_MASK = 0xC000FF0B, 0xC000FFFF
PIDFD_INFO_CREDS = 1 << 1
NS_GET_OWNER_UID = 0xB704         # _IO(0xb7, 0x4): the user namespace owner's UID
PIDFD_INFO = Layout(64, pids=(16, 20),
                    uids=((28, "ruid"), (36, "euid"), (44, "suid"), (52, "fsuid")),
                    gids=((32, "rgid"), (40, "egid"), (48, "sgid"), (56, "fsgid")))


def owner_in(sb: Sandbox, owner: int) -> int:
    """F_SETOWN's argument: a PID, or a process group as its negative."""
    if owner == INT_MIN:
        return owner              # the kernel's EINVAL
    return -pid_in(sb, -owner) if owner < 0 else pid_in(sb, owner)


def _dup(call: Call, fd: int) -> int:
    return call.sb.grab_fd(call.proc, fd)


def _ask(call: Call, fd: int, cmd: int) -> tuple[int, int]:
    """An 8-byte fcntl answer about the file, asked of the kernel through a
    duplicate of the tracee's fd (the same open file)."""
    dup = _dup(call, fd)
    try:
        return struct.unpack("<ii", fcntl_.fcntl(dup, cmd, bytes(8)))
    except OSError as exc:
        raise Errno(exc.errno or errno.EBADF) from None
    finally:
        os.close(dup)


def _owner(call: Call, fd: int) -> tuple[int, int]:
    """(F_OWNER_* type, container PID) of the file's owner."""
    kind, host = _ask(call, fd, F_GETOWN_EX)
    return kind, pid_out(call.sb, host)


def fcntl(call: Call) -> int | None:
    """Only the commands in FCNTL_CMDS are trapped."""
    fd, cmd = call.iarg(0), call.iarg(1)
    if cmd in (F_GETLK, F_OFD_GETLK):
        # the caller's own locks never conflict: the kernel must ask for it
        ptr = call.arg(2)
        call.after(lambda c, result: translate_back(c, ptr, FLOCK) if result == 0 else None)
        return None
    if cmd == F_SETOWN:
        call.set_arg(2, owner_in(call.sb, call.iarg(2)))
        return None
    if cmd == F_SETOWN_EX:
        kind, pid = struct.unpack("<ii", call.read(call.arg(2), 8))
        if kind in (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP) and pid:
            call.set_arg(2, call.push(struct.pack("<ii", kind, pid_in(call.sb, pid))))
        return None
    if cmd == F_GETOWNER_UIDS:
        return _owner_uids(call, fd)
    kind, pid = _owner(call, fd)
    if cmd == F_GETOWN:
        return -pid if kind == F_OWNER_PGRP else pid
    call.write(call.arg(2), struct.pack("<ii", kind, pid))      # F_GETOWN_EX
    return 0


def _owner_uids(call: Call, fd: int) -> int:
    """F_GETOWNER_UIDS: the real and effective UIDs of whoever set the
    owner; with emulated identity, the caller's (who normally set it)."""
    uid, euid = (v & 0xFFFFFFFF for v in _ask(call, fd, F_GETOWNER_UIDS))
    cred = call.proc.cred
    call.write(call.arg(2), struct.pack("<II", uid_out(call.sb, uid, cred, "ruid"),
                                        uid_out(call.sb, euid, cred, "euid")))
    return 0


def translate_back(call: Call, ptr: int, layout: Layout) -> None:
    """A structure the kernel wrote, translated in place."""
    data = call.read(ptr, layout.size)
    seen = to_guest(call.sb, data, layout)
    if seen != data:
        call.write(ptr, seen)


# -- ioctl ----------------------------------------------------------------------------------

def ioctl(call: Call) -> int | None:
    """The ioctls that carry IDs (only these are trapped)."""
    cmd = call.arg(1) & 0xFFFFFFFF
    if cmd in SOCKET_OWNER_CMDS:
        return _socket_owner(call, cmd)
    if cmd == NS_GET_OWNER_UID:
        ptr = call.arg(2)
        own = call.sb.userns and _is_own_userns(call, call.iarg(0))

        def owner(c: Call, result: int) -> None:
            if result == 0 and own:     # shown as the initial namespace: the host's root's
                c.write(ptr, struct.pack("<I", uid_out(c.sb, 0)))
            elif result == 0:
                translate_back(c, ptr, NS_OWNER)

        call.after(owner)
    elif cmd & PIDFD_GET_INFO_MASK == PIDFD_GET_INFO:
        if not call.sb.pids.kernel or call.sb.fake_ids:
            _pidfd_info(call, min(cmd >> 16 & 0x3FFF, PIDFD_INFO.size))
    elif not call.sb.pids.kernel:    # else the kernel's PIDs are the container's (pids.py)
        pids.tty_pgrp(call)
    return None


def _is_own_userns(call: Call, fd: int) -> bool:
    """Whether fd is the container's user namespace (unprivileged, the
    spawner's: its processes take it for the initial one, as without it)."""
    try:
        dup = call.sb.grab_fd(call.proc, fd)
    except Errno:
        return False
    try:
        return os.fstat(dup).st_ino == os.stat(b"/proc/%d/ns/user" % call.sb.init_pid).st_ino
    except OSError:
        return False
    finally:
        os.close(dup)


def _socket_owner(call: Call, cmd: int) -> int | None:
    """FIOSETOWN/SIOCSPGRP take F_SETOWN's argument through a pointer;
    FIOGETOWN/SIOCGPGRP give F_GETOWN's. Sockets only (else ENOTTY from
    the kernel)."""
    dup = _dup(call, call.iarg(0))
    try:
        is_socket = stat.S_ISSOCK(os.fstat(dup).st_mode)
    finally:
        os.close(dup)
    if not is_socket:
        return None
    ptr = call.arg(2)
    if cmd in (FIOSETOWN, SIOCSPGRP):
        owner = struct.unpack("<i", call.read(ptr, 4))[0]
        call.set_arg(2, call.push(struct.pack("<i", owner_in(call.sb, owner))))
        return None
    kind, pid = _owner(call, call.iarg(0))
    call.write(ptr, struct.pack("<i", -pid if kind == F_OWNER_PGRP else pid))
    return 0


def _pidfd_info(call: Call, size: int) -> None:
    """PIDFD_GET_INFO (Linux 6.13): the process's PIDs and credentials; one
    outside the container is ESRCH, as outside a PID namespace (in the
    kernel's, its PIDs are the container's: the emulated IDs alone)."""
    ptr = call.arg(2)

    def after(c: Call, result: int) -> int | None:
        if result != 0 or size < 28:
            return None
        data = c.read(ptr, size)
        mask, = struct.unpack_from("<Q", data)
        pid, _tgid, ppid = struct.unpack_from("<iii", data, 16)
        layout = PIDFD_INFO if mask & PIDFD_INFO_CREDS else Layout(size, pids=(16, 20))
        seen = bytearray(to_guest(c.sb, data, layout))
        if c.sb.pids.kernel:
            c.write(ptr, bytes(seen))
            return None
        if struct.unpack_from("<ii", seen, 16) == (0, 0) and pid > 0:
            return -errno.ESRCH
        struct.pack_into("<i", seen, 24, parent_out(c.sb, pid, ppid))
        c.write(ptr, bytes(seen))
        return None

    call.after(after)
