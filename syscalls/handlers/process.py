"""Process-level calls the supervisor must see: clone flags that would
leave its sight (new namespaces, CLONE_UNTRACED), clone3 (whose arguments
are in memory), and the few prctl/time calls that would reach the host."""

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
CLONE_NEWTIME = 0x00000080
CLONE_UNTRACED = 0x00800000
CLONE_SIGHAND, CLONE_THREAD, CLONE_PARENT = 0x800, 0x10000, 0x8000
CLONE_PIDFD, CLONE_PARENT_SETTID, CLONE_DETACHED = 0x1000, 0x00100000, 0x00400000
CLONE_LEGACY_FLAGS = 0xFFFFFFFF
CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP = 1 << 32, 1 << 33
CSIGNAL = 0xFF
NSIG = 64
# VER1 adds set_tid and set_tid_size, VER2 cgroup
CLONE_ARGS_SIZE_VER0, CLONE_ARGS_SIZE_VER2 = 64, 88
MAX_PID_NS_LEVEL = 32
PAGE = 4096
TASK_SIZE = 0x7FFFFFFFF000       # the top of user space (access_ok's limit)
SYS_clone = 56
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_NAME = 16
PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = 0xFFFFFFFFFFFFFFFF
# the options the supervisor performs (by user notification: no argument
# to rewrite), the others but PR_SET_PTRACER running natively
PERFORMED = (PR_GET_NAME, PR_GET_DUMPABLE, PR_SET_DUMPABLE)


def clone(call: Call) -> None:
    """Only clone calls asking for new namespaces or CLONE_UNTRACED are
    trapped (by BPF: the flags are a register, no other thread can change
    them meanwhile). A child made with CLONE_UNTRACED would skip ptrace's
    fork events and run unseen, outliving the container: the flag is
    dropped (it only keeps tracers away, and every process here is
    brandpy's). The caller and the child get their own registers back
    (the supervisor restores rewritten arguments at the exit and the
    child's first stop)."""
    flags = call.arg(0)
    if flags & CLONE_NAMESPACES:
        raise Errno(errno.EPERM, "new namespaces are not allowed: brandpy emulates them")
    call.set_arg(0, flags & ~CLONE_UNTRACED)
    call.after(_keep)


def clone3(call: Call) -> None:
    """clone3's arguments are in memory a sibling thread can rewrite after
    any check (CLONE_UNTRACED, namespaces): they are read once, checked as
    Linux checks them, and the call is made as clone with them in registers,
    which nothing else can change. What clone cannot say (CLONE_INTO_CGROUP,
    CLONE_CLEAR_SIGHAND, a pidfd with CLONE_PARENT_SETTID) is ENOSYS, and
    libc falls back to clone."""
    size = call.arg(1)
    if size > PAGE:
        raise Errno(errno.E2BIG)
    if size < CLONE_ARGS_SIZE_VER0:
        raise Errno(errno.EINVAL)
    raw = call.read(call.arg(0), size)
    if any(raw[CLONE_ARGS_SIZE_VER2:]):
        raise Errno(errno.E2BIG)     # fields this kernel (and brandpy) does not know
    args = raw[:CLONE_ARGS_SIZE_VER2].ljust(CLONE_ARGS_SIZE_VER2, b"\0")
    (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
     set_tid_size, _cgroup) = struct.unpack("<11Q", args)
    if not _clone3_valid(flags, exit_signal, stack, stack_size, set_tid, set_tid_size):
        raise Errno(errno.EINVAL)
    if flags & CLONE_NAMESPACES:
        raise Errno(errno.EPERM, "new namespaces are not allowed: brandpy emulates them")
    if flags & (CLONE_INTO_CGROUP | CLONE_CLEAR_SIGHAND) or \
            flags & CLONE_PIDFD and flags & CLONE_PARENT_SETTID:
        raise Errno(errno.ENOSYS, "clone3 with CLONE_INTO_CGROUP, CLONE_CLEAR_SIGHAND or "
                    "both CLONE_PIDFD and CLONE_PARENT_SETTID: clone cannot say it")
    if set_tid:
        _set_tid(call, set_tid, set_tid_size)
    else:
        call.after(_keep)
    call.set_nr(SYS_clone)
    call.set_arg(0, (flags & ~CLONE_UNTRACED) | exit_signal)
    call.set_arg(1, stack + stack_size if stack else 0)
    call.set_arg(2, pidfd if flags & CLONE_PIDFD else parent_tid)
    call.set_arg(3, child_tid)
    call.set_arg(4, tls)
    return None


def _clone3_valid(flags: int, exit_signal: int, stack: int, stack_size: int, set_tid: int,
                  set_tid_size: int) -> bool:
    """Linux's checks of clone3's arguments (copy_clone_args_from_user,
    clone3_args_valid)."""
    return not (
        set_tid_size > MAX_PID_NS_LEVEL or bool(set_tid) != bool(set_tid_size)
        or exit_signal & ~CSIGNAL or exit_signal > NSIG
        or flags & ~(CLONE_LEGACY_FLAGS | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP)
        or flags & (CLONE_DETACHED | CSIGNAL & ~CLONE_NEWTIME)
        or flags & CLONE_SIGHAND and flags & CLONE_CLEAR_SIGHAND
        or flags & (CLONE_THREAD | CLONE_PARENT) and exit_signal
        or (stack_size and not stack) or (stack and (not stack_size
                                                     or stack + stack_size > TASK_SIZE)))


def _keep(call: Call, result: int) -> None:
    """The exit stop, where the supervisor gives back the registers the
    rewrite changed (a failed clone has no child event to wait for)."""
    return None


def _set_tid(call: Call, ptr: int, count: int) -> None:
    """clone3's set_tid asks for the new task's PIDs, innermost namespace
    first: the container's PID here, granted by the PID map, as Linux
    would in the container's namespace (one level: a second PID would be
    the host's, which needs capabilities there). The kernel is handed the
    call without it."""
    if count > 2:
        raise Errno(errno.EINVAL)
    tids = struct.unpack(f"<{count}i", call.read(ptr, 4 * count))
    for level, tid in enumerate(tids):     # Linux's order: each level's range, then right
        if not 1 <= tid < _pid_max():
            raise Errno(errno.EINVAL)
        if level or not capable(call, "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"):
            raise Errno(errno.EPERM)
    if call.sb.pids.taken(tids[0]):
        raise Errno(errno.EEXIST)
    if call.sb.pids.kernel:
        raise Errno(errno.ENOSYS, "clone3's set_tid in the container's PID namespace: clone "
                    "cannot say it, and the kernel numbers the container's processes")
    call.sb.pids.request(call.tid, tids[0])
    # a clone3 that fails creates nothing: the request goes
    call.after(lambda c, result: c.sb.pids.request(c.tid, None) if result < 0 else None)


def _pid_max() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read())


def prctl(call: Call) -> int:
    """The options the supervisor performs (PERFORMED, by user
    notification: native/notify.c's prctl_ answers them the same in C).
    PR_SET_DUMPABLE 0 would also hide the process's /proc files from an
    unprivileged supervisor: it is recorded, not applied. PR_GET_NAME gives
    the name the program would have in the container, not the host file's
    (busybox renames its applets from it)."""
    option = call.iarg(0)
    if option == PR_GET_NAME:
        call.write(call.arg(1), _name(call).ljust(COMM_LEN + 1, b"\0"))
        return 0
    if option == PR_GET_DUMPABLE:
        return int(call.proc.dumpable)
    if option != PR_SET_DUMPABLE:
        raise Errno(errno.ENOSYS, f"prctl option {option} is not one brandpy performs")
    value = call.arg(1)
    if value not in (0, 1):
        raise Errno(errno.EINVAL)
    call.proc.dumpable = bool(value)
    call.sb.changed(call.proc)   # (the native engine's copy)
    return 0


def set_ptracer(call: Call) -> None:
    """Yama's PR_SET_PTRACER (the one prctl option trapped for ptrace)
    names the process allowed to trace the caller: a container PID, given
    to the kernel as the host one (none: EINVAL, as Yama says)."""
    if call.arg(1) != PR_SET_PTRACER_ANY:
        call.set_arg(1, pid_in(call.sb, call.iarg(1), errno.EINVAL))


def _name(call: Call) -> bytes:
    """The calling thread's name: the container's name for its program
    while the kernel's is still the one exec gave it (not renamed by
    PR_SET_NAME or /proc/self/comm), else the kernel's."""
    try:
        with open(f"/proc/{call.tid}/comm", "rb") as f:
            real = f.read().removesuffix(b"\n")   # a name may end in a newline itself
    except FileNotFoundError:
        raise Errno(errno.ESRCH) from None   # gone: the answer reaches no one
    if not call.proc.comm or real != call.proc.kernel_comm:
        return real
    return call.proc.comm[:COMM_LEN]

