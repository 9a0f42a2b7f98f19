"""Process-level calls the supervisor must see: namespace flags of
clone3 (which BPF cannot read), ptrace (the supervisor already traces every
process), and the few prctl/time calls that would reach the host."""

from __future__ import annotations

import errno
import struct

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.ids import pid_in
from brandpy.runtime.process import COMM_LEN

from .ident import capable

# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000 | 0x00000080
CLONE_ARGS_SIZE_VER0, CLONE_ARGS_SIZE_VER1 = 64, 80   # VER1 adds set_tid, set_tid_size
MAX_PID_NS_LEVEL = 32
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_NAME = 16
PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = 0xFFFFFFFFFFFFFFFF


def clone3(call: Call) -> None:
    size = call.arg(1)
    if size < CLONE_ARGS_SIZE_VER0:
        raise Errno(errno.EINVAL)
    args = call.read(call.arg(0), min(size, CLONE_ARGS_SIZE_VER1))
    (flags,) = struct.unpack_from("<Q", args)
    if flags & CLONE_NAMESPACES:
        raise Errno(errno.EPERM, "new namespaces are not allowed: brandpy emulates them")
    if len(args) == CLONE_ARGS_SIZE_VER1 and struct.unpack_from("<Q", args, 72)[0]:
        _set_tid(call, args)
    return None


def _set_tid(call: Call, args: bytes) -> None:
    """clone3's set_tid asks for the new task's PIDs, innermost namespace
    first: the container's PID here, granted by the PID map, as Linux
    would in the container's namespace (one level: a second PID would be
    the host's, which needs capabilities there). The kernel is handed the
    call without it."""
    ptr, count = struct.unpack_from("<QQ", args, 64)
    if count > MAX_PID_NS_LEVEL or not ptr or count > 2:
        raise Errno(errno.EINVAL)
    tids = struct.unpack(f"<{count}i", call.read(ptr, 4 * count))
    for level, tid in enumerate(tids):     # Linux's order: each level's range, then right
        if not 1 <= tid < _pid_max():
            raise Errno(errno.EINVAL)
        if level or not capable(call, "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"):
            raise Errno(errno.EPERM)
    if call.sb.pids.taken(tids[0]):
        raise Errno(errno.EEXIST)
    call.sb.pids.request(call.tid, tids[0])
    call.set_arg(0, call.push(args[:64] + bytes(16)))
    # a clone3 that fails creates nothing: the request goes
    call.after(lambda c, result: c.sb.pids.request(c.tid, None) if result < 0 else None)


def _pid_max() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read())


def clone_namespaces(call: Call) -> int:
    """Only clone calls asking for new namespaces are trapped (by BPF)."""
    raise Errno(errno.EPERM, "new namespaces are not allowed: brandpy emulates them")


def ptrace(call: Call) -> int:
    raise Errno(errno.EPERM, "every container process is already traced by brandpy; "
                "debuggers and tracers cannot run inside")


def prctl(call: Call) -> int | None:
    """Only the options below are trapped. PR_SET_DUMPABLE 0 would also
    hide the process's /proc files from an unprivileged supervisor: it is
    recorded, not applied. PR_GET_NAME gives the name the program would
    have in the container, not the host file's (busybox renames its
    applets from it)."""
    option = call.iarg(0)
    if option == PR_GET_NAME:
        return _get_name(call)
    if option == PR_SET_PTRACER:
        _set_ptracer(call)
        return None
    if option == PR_GET_DUMPABLE:
        return int(call.proc.dumpable)
    value = call.arg(1)
    if value not in (0, 1):
        raise Errno(errno.EINVAL)
    call.proc.dumpable = bool(value)
    return 0


def _set_ptracer(call: Call) -> None:
    """Yama's PR_SET_PTRACER names the process allowed to trace the caller:
    a container PID, given to the kernel as the host one (none: EINVAL, as
    Yama says)."""
    if call.arg(1) != PR_SET_PTRACER_ANY:
        call.set_arg(1, pid_in(call.sb, call.iarg(1), errno.EINVAL))
    return None


def _get_name(call: Call) -> int | None:
    try:
        with open(f"/proc/{call.tid}/comm", "rb") as f:
            real = f.read().rstrip(b"\n")
    except OSError:
        return None   # let the kernel answer
    if not call.proc.comm or real != call.proc.kernel_comm:
        return None
    call.write(call.arg(1), call.proc.comm[:COMM_LEN].ljust(COMM_LEN + 1, b"\0"))
    return 0

