"""Process-level calls the supervisor must see: namespace flags of
clone3 (which BPF cannot read), ptrace (the supervisor already traces every
process), and the few prctl/time calls that would reach the host."""

from __future__ import annotations

import errno
import struct

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.process import COMM_LEN

# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000 | 0x00000080
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_NAME = 16


def clone3(call: Call) -> None:
    size = call.arg(1)
    if size < 64:
        raise Errno(errno.EINVAL)
    (flags,) = struct.unpack("<Q", call.read(call.arg(0), 8))
    if flags & CLONE_NAMESPACES:
        raise Errno(errno.EPERM, "new namespaces are not allowed: brandpy emulates them")
    return None


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
    if option == PR_GET_DUMPABLE:
        return int(call.proc.dumpable)
    value = call.arg(1)
    if value not in (0, 1):
        raise Errno(errno.EINVAL)
    call.proc.dumpable = bool(value)
    return 0


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

