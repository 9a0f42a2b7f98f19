"""Calls that name other processes by PID act only on the container's own
processes: a container (even as root on the host) cannot signal, trace,
renice or read the memory of anything outside it. PIDs are translated
through the sandbox's PID map."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.ids import SIGINFO, parent_out, pid_out, to_guest
from brandpy.runtime.linux import receives

from . import guest_ptrace

INT_MIN = -(1 << 31)


def _host_pid(call: Call, guest: int) -> int:
    host = call.sb.pids.to_host(guest)
    if host is None:
        raise Errno(errno.ESRCH)
    return host


def translate_pid(call: Call, i: int) -> None:
    """Rewrite argument i (a container PID) to the host PID. 0 and negative
    values name no other process: the kernel gives them its own meaning
    (the caller) or its own error (EINVAL or ESRCH, by syscall)."""
    pid = call.iarg(i)
    if pid > 0:
        call.set_arg(i, _host_pid(call, pid))


def _container_pgrp(call: Call, pgid: int) -> int:
    host = call.sb.pids.to_host(pgid)
    if host is None or not any(_pgid(t) == host for t in call.sb.tgids()):
        raise Errno(errno.ESRCH)
    return host


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def _init_ignores(call: Call, host: int, sig: int, tid: int = 0) -> bool:
    """The container's init, like a PID namespace's, only receives from
    inside the signals it has a handler for or blocks (not even SIGKILL).
    `tid`: the thread a thread-directed signal is for."""
    target = tid or host
    return host == call.sb.init_pid and sig != 0 and \
        not receives(target, sig, call.sb.sigwaiting.get(target, 0))


def _signal_group(call: Call, pgid: int, sig: int) -> int:
    """kill() of a process group that holds the init: every member but an
    init that does not handle the signal."""
    sent = 0
    for tgid in call.sb.tgids():
        if _pgid(tgid) == pgid and not _init_ignores(call, tgid, sig):
            try:
                os.kill(tgid, sig)
                sent += 1
            except ProcessLookupError:
                pass
    if not sent and not any(_pgid(t) == pgid for t in call.sb.tgids()):
        raise Errno(errno.ESRCH)
    return 0


def kill(call: Call) -> int | None:
    pid, sig = call.iarg(0), call.iarg(1)
    if pid > 0:
        host = _host_pid(call, pid)
        if _init_ignores(call, host, sig):
            return 0
        call.set_arg(0, host)
        return None
    if pid == -1:
        return _kill_all(call, sig)
    pgid = _pgid(call.proc.tgid) if pid == 0 else _container_pgrp(call, -pid)
    if _pgid(call.sb.init_pid) == pgid and _init_ignores(call, call.sb.init_pid, sig):
        return _signal_group(call, pgid, sig)
    call.set_arg(0, -pgid)
    return None


def _kill_all(call: Call, sig: int) -> int:
    """kill(-1): every container process but the caller and the init, as in
    a PID namespace, instead of every process on the host."""
    if not 0 <= sig <= 64:
        raise Errno(errno.EINVAL)
    sent = 0
    for tgid in call.sb.tgids():
        if tgid in (call.proc.tgid, call.sb.init_pid):
            continue
        try:
            os.kill(tgid, sig)
            sent += 1
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
    if not sent:
        raise Errno(errno.ESRCH)
    return 0


def _tgid(call: Call, host_tid: int) -> int:
    proc = call.sb.threads.get(host_tid)
    return proc.tgid if proc is not None else host_tid


def tkill(call: Call) -> int | None:     # tkill(tid, sig), rt_sigqueueinfo(tgid, sig, info)
    translate_pid(call, 0)
    tid = call.iarg(0)
    return 0 if _init_ignores(call, _tgid(call, tid), call.iarg(1), tid) else None


def tgkill(call: Call) -> int | None:    # tgkill(tgid, tid, sig), rt_tgsigqueueinfo(...)
    translate_pid(call, 0)
    translate_pid(call, 1)
    return 0 if _init_ignores(call, call.iarg(0), call.iarg(2), call.iarg(1)) else None


def first_pid(call: Call) -> None:
    """Calls whose first argument is a PID with 0 meaning the caller:
    sched_*, prlimit64, get_robust_list, pidfd_open (0 is EINVAL there:
    the kernel says so itself), process_vm_readv/writev, move_pages,
    migrate_pages."""
    translate_pid(call, 0)


def two_pids(call: Call) -> None:
    """kcmp(pid1, pid2, ...)."""
    translate_pid(call, 0)
    translate_pid(call, 1)


# -- the caller's own IDs --------------------------------------------------------

def getpid(call: Call) -> int:
    return call.sb.pids.to_guest(call.proc.tgid)


def gettid(call: Call) -> int:
    return call.sb.pids.to_guest(call.tid)


def getppid(call: Call) -> int:
    """The parent's container PID; a process whose parent is outside the
    container sees 0 (the entrypoint, exec'd processes) and an orphan sees 1,
    as after reparenting to the namespace's init."""
    try:
        with open(b"/proc/%d/stat" % call.proc.tgid, "rb") as f:
            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        raise Errno(errno.ESRCH) from None
    return parent_out(call.sb, call.proc.tgid, ppid)


def _guest_id(call: Call, host: int) -> int:
    return call.sb.pids.to_guest(host)


def getpgrp(call: Call) -> int:
    return _guest_id(call, _pgid(call.proc.tgid))


def getpgid(call: Call) -> int:
    pid = call.iarg(0)
    host = call.proc.tgid if pid == 0 else _host_pid(call, pid)
    try:
        return _guest_id(call, os.getpgid(host))
    except OSError as exc:
        raise Errno(exc.errno or errno.ESRCH) from None


def getsid(call: Call) -> int:
    pid = call.iarg(0)
    host = call.proc.tgid if pid == 0 else _host_pid(call, pid)
    try:
        return _guest_id(call, os.getsid(host))
    except OSError as exc:
        raise Errno(exc.errno or errno.ESRCH) from None


def setpgid(call: Call) -> None:
    """Linux's order: pgid 0 means pid, a negative pgid is EINVAL, then an
    unknown pid ESRCH and an unknown group EPERM."""
    pid, pgid = call.iarg(0), call.iarg(1)
    if (pgid or pid) < 0:
        raise Errno(errno.EINVAL)
    for i, value, err in ((0, pid, errno.ESRCH), (1, pgid, errno.EPERM)):
        if value:
            host = call.sb.pids.to_host(value)
            if host is None:
                raise Errno(err)
            call.set_arg(i, host)


def setsid(call: Call) -> None:
    """setsid() returns the new session's ID: the caller's host PID."""
    call.after(lambda c, result: pid_out(c.sb, result) if result > 0 else None)


# Terminal ioctls that carry a process group or session ID through memory.
TIOCGPGRP, TIOCSPGRP, TIOCGSID = 0x540F, 0x5410, 0x5429


def tty_pgrp(call: Call) -> None:
    """ioctl(fd, TIOCSPGRP, &pgid) takes a container pgid: the kernel is
    handed a copy holding the host one. TIOCGPGRP and TIOCGSID write a host
    ID, translated on the way out (0 when it is outside the container)."""
    cmd, ptr = call.arg(1) & 0xFFFFFFFF, call.arg(2)
    if cmd == TIOCSPGRP:
        guest = int.from_bytes(call.read(ptr, 4), "little", signed=True)
        if guest > 0:   # else no group: the kernel's own error (EBADF first)
            call.set_arg(2, call.push(_container_pgrp(call, guest).to_bytes(4, "little")))
        return

    def after(c: Call, result: int) -> None:
        if result == 0:
            host = int.from_bytes(c.read(ptr, 4), "little")
            c.write(ptr, _guest_id(c, host).to_bytes(4, "little"))

    call.after(after)


CPUCLOCK_FD = 3          # the low three bits of a clock ID made from an fd


def cpu_clock(call: Call) -> None:
    """clock_gettime & co. with a negative clock ID: the CPU-time clock of
    a process or thread (clock_getcpuclockid, pthread_getcpuclockid), which
    carries its PID as ~pid << 3: the container PID becomes the host one."""
    clock = call.iarg(0)
    pid = ~(clock >> 3)
    if clock & 7 == CPUCLOCK_FD or pid == 0:
        return   # a clock from an fd (PTP), or the caller's own
    host = call.sb.pids.to_host(pid)
    if host is None:
        raise Errno(errno.EINVAL)   # as Linux says for a clock of no process
    call.set_arg(0, ((~host << 3) | (clock & 7)) & 0xFFFFFFFF)
    # glibc's clock_getcpuclockid stores the clock ID from the argument
    # register after the call: the exit stop gives the thread its own back
    call.after(lambda c, result: None)


def set_tid_address(call: Call) -> None:
    """The kernel returns the caller's TID, which glibc stores as the
    thread's own: it must be the container TID."""
    call.after(lambda c, result: c.sb.pids.to_guest(c.tid) if result > 0 else None)


# -- waiting for children ------------------------------------------------------

P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3
WNOWAIT = 0x01000000
WNOHANG, WUNTRACED, WEXITED, WCONTINUED = 1, 2, 4, 8
WNOTHREAD, WCLONE, WALL = 0x20000000, 0x80000000, 0x40000000
WAIT4_OPTIONS = WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WCLONE | WALL
WAITID_OPTIONS = WNOHANG | WNOWAIT | WEXITED | WUNTRACED | WCONTINUED | WNOTHREAD | WCLONE | WALL


def _waitable(find: Callable[[Call, int], int], call: Call, guest: int) -> int:
    """A PID or group to wait for: one the container does not have is not
    the caller's child, and Linux says ECHILD for that (CPython's
    Popen.poll() takes ECHILD for a child already reaped)."""
    try:
        return find(call, guest)
    except Errno as exc:
        if exc.errno == errno.ESRCH:
            raise Errno(errno.ECHILD) from None
        raise


def _ordinary(call: Call, pid: int, options: int) -> bool:
    """Whether a wait for pid may report an ordinary child of the caller."""
    if pid > 0:
        host = call.sb.pids.to_host(pid)
        proc = call.sb.threads.get(host) if host is not None else None
        return proc is not None and proc.tgid == host and proc.parent == call.proc.tgid
    return not _childless(call, options)


def _childless(call: Call, options: int) -> bool:
    """True when the caller (its thread with __WNOTHREAD, else any thread
    of its process) has no child at all, live or zombie: every wait then
    fails with ECHILD, answered here without running the call, so without
    the exit stop a reaped PID needs (a shell's wait4(-1, WNOHANG) after
    each command). The kernel's children lists are the truth; one that
    cannot be read says nothing, and the kernel answers."""
    tgid = call.proc.tgid
    try:
        if _has_children(tgid, call.tid):     # the caller's own first: the usual case
            return False
        if options & WNOTHREAD:
            return True
        return not any(_has_children(tgid, int(tid)) for tid in os.listdir(f"/proc/{tgid}/task")
                       if int(tid) != call.tid)
    except OSError:
        return False


def _has_children(tgid: int, tid: int) -> bool:
    with open(f"/proc/{tgid}/task/{tid}/children", "rb") as f:
        return bool(f.read(1))


def wait4(call: Call) -> int | None:
    pid, options = call.iarg(0), call.arg(2) & 0xFFFFFFFF
    if options & ~WAIT4_OPTIONS:
        return None                  # EINVAL, the kernel's (before any other check)
    if pid == INT_MIN:
        raise Errno(errno.ESRCH)     # as Linux: -INT_MIN names no group
    if call.sb.ptraced.traces(call.proc.tgid):   # an emulated tracer's
        handled, result = guest_ptrace.wait(
            call, guest_ptrace.selector(call, pid), options | WEXITED,
            _ordinary(call, pid, options), guest_ptrace.write_wait4(call), returns_pid=True)
        if handled:
            return result
    if _childless(call, options):
        raise Errno(errno.ECHILD)
    if call.sb.pids.kernel:     # its PIDs are the container's: no exit stop (runtime/pids.py)
        return None
    if pid > 0:
        call.set_arg(0, _waitable(_host_pid, call, pid))
    elif pid < -1:
        call.set_arg(0, -_waitable(_container_pgrp, call, -pid))
    def after(c: Call, result: int) -> int | None:
        guest_ptrace.waited(c)
        return c.sb.pids.reaped(result) if result > 0 else None   # the child's container PID

    call.after(after)
    return None


def waitid(call: Call) -> int | None:
    idtype, ident = call.iarg(0), call.iarg(1)
    infop, options = call.arg(2), call.arg(3) & 0xFFFFFFFF
    if call.sb.ptraced.traces(call.proc.tgid) and _valid_waitid(idtype, ident, options) \
            and idtype != P_PIDFD:
        pid = ident if idtype == P_PID else -1
        handled, result = guest_ptrace.wait(
            call, guest_ptrace.selector(call, pid), options, _ordinary(call, pid, options),
            guest_ptrace.write_waitid(call), returns_pid=False)
        if handled:
            return result
    try:
        if _valid_waitid(idtype, ident, options) and _childless(call, options):
            raise Errno(errno.ECHILD)
        if call.sb.pids.kernel:
            if not call.sb.fake_ids:    # its PIDs and IDs are the container's: no exit stop
                return None
        elif idtype == P_PID and ident > 0:     # else EINVAL, the kernel's
            call.set_arg(1, _waitable(_host_pid, call, ident))
        elif idtype == P_PGID and ident > 0:
            call.set_arg(1, _waitable(_container_pgrp, call, ident))
    except Errno as exc:
        if exc.errno == errno.ECHILD and infop:
            # as Linux: a failed waitid still fills infop, with zeros
            # (si_signo, si_errno, si_code; si_pid, si_uid, si_status)
            call.write(infop, bytes(12))
            call.write(infop + 16, bytes(12))
        raise

    def after(c: Call, result: int) -> None:
        guest_ptrace.waited(c)
        if result == 0 and infop:
            info = c.read(infop, 24)
            pid = struct.unpack_from("<i", info, 16)[0]
            # (in a PID namespace its PID is the container's; only the
            # emulated si_uid needs this exit stop)
            if pid > 0:
                seen = to_guest(c.sb, info, SIGINFO)   # while the child is still known
                host = c.sb.pids.to_host(pid) if c.sb.pids.kernel else pid
                if host is not None and not options & WNOWAIT:
                    c.sb.pids.reaped(host)
                c.write(infop + 16, seen[16:24])

    call.after(after)
    return None


def _valid_waitid(idtype: int, ident: int, options: int) -> bool:
    """Options and ID the kernel takes (else its EINVAL, checked first);
    P_PIDFD is left to it (its fd's own errors come before ECHILD)."""
    return not options & ~WAITID_OPTIONS and bool(options & (WEXITED | WUNTRACED | WCONTINUED)) \
        and (idtype == P_ALL or (idtype == P_PID and ident > 0) or (idtype == P_PGID and ident >= 0))
