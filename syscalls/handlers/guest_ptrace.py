"""ptrace for the container's own tracers, and their waits
(brandpy/runtime/guest_ptrace.py holds the state and says how).

Every request acts on the real tracee through the supervisor, which is its
real tracer; a tracer reaches only threads of its container (a PID the
container does not have is ESRCH), with Linux's permission rules: same
real user and group as the target's every ID and a dumpable target, or
CAP_SYS_PTRACE (not in Docker's default set). Yama is not emulated: a
process may trace any such process of its container, as with
ptrace_scope 0. A request naming a task just made, whose first stop the
supervisor has not seen yet (strace seizes its child right after fork),
waits for that stop (errors.Unborn).
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import struct
from collections.abc import Callable

from ptrace.binding.func import ptrace_getregs, ptrace_setregs
from ptrace.binding.linux_struct import user_regs_struct

from brandpy.runtime import linux
from brandpy.runtime.acting import tracee_memory
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.guest_ptrace import (
    OPTIONS,
    PTRACE_ATTACH,
    PTRACE_CONT,
    PTRACE_DETACH,
    PTRACE_GET_SYSCALL_INFO,
    PTRACE_GETEVENTMSG,
    PTRACE_GETFPREGS,
    PTRACE_GETREGS,
    PTRACE_GETREGSET,
    PTRACE_GETSIGINFO,
    PTRACE_GETSIGMASK,
    PTRACE_KILL,
    PTRACE_LISTEN,
    PTRACE_PEEKDATA,
    PTRACE_PEEKTEXT,
    PTRACE_PEEKUSER,
    PTRACE_POKEDATA,
    PTRACE_POKETEXT,
    PTRACE_POKEUSER,
    PTRACE_SEIZE,
    PTRACE_SETFPREGS,
    PTRACE_SETOPTIONS,
    PTRACE_SETREGS,
    PTRACE_SETREGSET,
    PTRACE_SETSIGINFO,
    PTRACE_SETSIGMASK,
    PTRACE_SINGLESTEP,
    PTRACE_SYSCALL,
    PTRACE_TRACEME,
    Tracee,
)
from brandpy.runtime.ids import process_in
from brandpy.runtime.linux import PTRACE_INTERRUPT
from brandpy.runtime.process import Process

ORIG_RAX = 15 * 8                     # its offset in struct user_regs_struct (and struct user)
REGS_SIZE = ctypes.sizeof(user_regs_struct)
FPREGS_SIZE = 512                     # struct user_fpregs_struct
NT_PRSTATUS = 1
REGSET_MAX = 1 << 16                  # the largest register set (XSAVE areas are ~2-10 KiB)
SYS_pause = 34
RUSAGE_SIZE = 144
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED = 1, 2, 3, 4
RESUMES = (PTRACE_CONT, PTRACE_SYSCALL, PTRACE_SINGLESTEP, PTRACE_DETACH, PTRACE_LISTEN)


def ptrace(call: Call) -> int:
    request, pid, addr, data = call.arg(0) & 0xFFFFFFFF, call.iarg(1), call.arg(2), call.arg(3)
    tracing = call.sb.ptraced
    if request == PTRACE_TRACEME:
        return _traceme(call)
    host = call.sb.pids.to_host(pid) if pid > 0 else None
    if host is None:
        raise Errno(errno.ESRCH)
    process_in(call.sb, host)   # (a task being made: the call waits for its first stop)
    if request in (PTRACE_ATTACH, PTRACE_SEIZE):
        return _attach(call, host, request == PTRACE_SEIZE, addr, data)
    if request in (PTRACE_KILL, PTRACE_INTERRUPT):   # need no stop
        t = tracing.tracees.get(host)
        if t is None or t.tracer != call.proc.tgid:
            raise Errno(errno.ESRCH)
        if request == PTRACE_KILL:
            _tgkill(call, host, signal.SIGKILL)
        elif not t.seized:
            raise Errno(errno.EIO)
        elif t.stop is None:
            t.interrupt = True
            _real(PTRACE_INTERRUPT, host)
        return 0
    t = tracing.stopped_for(call.proc.tgid, host)
    if request in RESUMES:
        return _resume(call, t, request, data)
    handler = REQUESTS.get(request)
    if handler is None:
        raise Errno(errno.EIO)
    return handler(call, t, addr, data)


def _traceme(call: Call) -> int:
    """The caller's parent becomes its tracer; the parent must be a process
    of the container (the entrypoint's is not)."""
    parent = call.proc.parent
    if parent is None or parent not in call.sb.procs or call.tid in call.sb.ptraced.tracees:
        raise Errno(errno.EPERM)
    call.sb.ptraced.tracees[call.tid] = Tracee(call.tid, parent, seized=False)
    call.sb.ptraced.became_tracer(parent, call.tid)
    return 0


def _attach(call: Call, host: int, seize: bool, addr: int, options: int) -> int:
    tracing = call.sb.ptraced
    target = call.sb.threads[host]
    if seize and addr:
        raise Errno(errno.EIO)
    if seize and options & ~OPTIONS:
        raise Errno(errno.EINVAL)
    if target.tgid == call.proc.tgid or host in tracing.tracees or \
            not _may_trace(call, target):
        raise Errno(errno.EPERM)
    t = Tracee(host, call.proc.tgid, seized=seize, options=options if seize else 0)
    tracing.tracees[host] = t
    tracing.became_tracer(call.proc.tgid, call.tid)
    if host in tracing.listening:   # in a group-stop: its tracer is told so
        t.interrupt = True
        _real(PTRACE_INTERRUPT, host)
    elif not seize:
        _tgkill(call, host, signal.SIGSTOP)
    return 0


def _may_trace(call: Call, target: Process) -> bool:
    """Linux's __ptrace_may_access for PTRACE_MODE_ATTACH_REALCREDS."""
    me = call.proc.cred
    if me.capable("CAP_SYS_PTRACE"):
        return True
    it = target.cred
    return (me.ruid == it.ruid == it.euid == it.suid and me.rgid == it.rgid == it.egid == it.sgid
            and target.dumpable)


def _resume(call: Call, t: Tracee, request: int, sig: int) -> int:
    if not 0 <= sig <= 64:
        raise Errno(errno.EIO)
    stop = t.stop
    assert stop is not None
    if request == PTRACE_LISTEN:
        if not t.seized or stop.status >> 16 != 0x80:   # only a seized tracee's group-stop
            raise Errno(errno.EIO)
        t.stop = None
        stop.resume(PTRACE_LISTEN, 0)
        return 0
    t.stop = None
    if request == PTRACE_DETACH:
        del call.sb.ptraced.tracees[t.tid]
        t.mode = PTRACE_CONT
    else:
        t.mode = request
    stop.resume(PTRACE_CONT, sig)
    return 0


def _tgkill(call: Call, tid: int, sig: int) -> None:
    try:
        linux.tgkill(call.sb.threads[tid].tgid, tid, sig)
    except OSError as exc:
        raise Errno(exc.errno or errno.ESRCH) from None


def _real(request: int, tid: int, addr: int = 0, data: int = 0) -> int:
    try:
        return linux.ptrace(request, tid, addr, data)
    except OSError as exc:
        raise Errno(exc.errno or errno.EIO) from None


# -- registers ---------------------------------------------------------------------------

def _shown_nr(t: Tracee) -> int | None:
    """At the exit stop of a call brandpy answered or rewrote, orig_rax
    is what the tracer saw at its entry."""
    return t.shown_nr if t.stop is not None and t.stop.syscall_exit else None


def _getregs(call: Call, t: Tracee, addr: int, data: int) -> int:
    regs = _regs(t.tid)
    nr = _shown_nr(t)
    if nr is not None:
        regs.orig_rax = nr
    call.write(data, bytes(regs))
    return 0


def _regs(tid: int) -> user_regs_struct:
    try:
        return ptrace_getregs(tid)
    except Exception:
        raise Errno(errno.ESRCH) from None


def _setregs(call: Call, t: Tracee, addr: int, data: int) -> int:
    regs = user_regs_struct.from_buffer_copy(call.read(data, REGS_SIZE))
    if _shown_nr(t) is not None and regs.orig_rax == t.shown_nr:
        regs.orig_rax = _regs(t.tid).orig_rax    # left as shown: keep brandpy's
    try:
        ptrace_setregs(t.tid, regs)
    except Exception:
        raise Errno(errno.EIO) from None
    return 0


def _peekuser(call: Call, t: Tracee, addr: int, data: int) -> int:
    nr = _shown_nr(t)
    if addr == ORIG_RAX and nr is not None:
        word = nr
    else:
        ctypes.set_errno(0)
        word = linux.libc.ptrace(PTRACE_PEEKUSER, t.tid, ctypes.c_void_p(addr), None)
        if word == -1 and ctypes.get_errno():
            raise Errno(ctypes.get_errno())
    call.write(data, struct.pack("<q", word))
    return 0


def _pokeuser(call: Call, t: Tracee, addr: int, data: int) -> int:
    return _real(PTRACE_POKEUSER, t.tid, addr, data)


def _buffer_request(get: int, size: int, real_addr: int = 0) -> Callable[[Call, Tracee, int, int], int]:
    """GETFPREGS/SETFPREGS/GETSIGMASK: a fixed-size block at data."""
    def handler(call: Call, t: Tracee, addr: int, data: int) -> int:
        setting = get == PTRACE_SETFPREGS
        buf = ctypes.create_string_buffer(call.read(data, size) if setting else b"", size)
        _real(get, t.tid, real_addr, ctypes.addressof(buf))
        if not setting:
            call.write(data, buf.raw)
        return 0
    return handler


def _regset(call: Call, t: Tracee, kind: int, iov: int, setting: bool) -> int:
    base, length = struct.unpack("<QQ", call.read(iov, 16))
    length = min(length, REGSET_MAX)
    buf = ctypes.create_string_buffer(call.read(base, length) if setting else b"", length)
    local = (ctypes.c_uint64 * 2)(ctypes.addressof(buf), length)
    if setting and kind == NT_PRSTATUS and _shown_nr(t) is not None and length > ORIG_RAX + 8 \
            and struct.unpack_from("<Q", buf.raw, ORIG_RAX)[0] == t.shown_nr:
        struct.pack_into("<Q", buf, ORIG_RAX, _regs(t.tid).orig_rax)
    _real(PTRACE_SETREGSET if setting else PTRACE_GETREGSET, t.tid, kind, ctypes.addressof(local))
    if not setting:
        out = bytearray(buf.raw[:local[1]])
        nr = _shown_nr(t)
        if kind == NT_PRSTATUS and nr is not None and len(out) >= ORIG_RAX + 8:
            struct.pack_into("<Q", out, ORIG_RAX, nr)
        call.write(base, bytes(out))
    call.write(iov + 8, struct.pack("<Q", local[1]))
    return 0


def _getregset(call: Call, t: Tracee, addr: int, data: int) -> int:
    return _regset(call, t, addr, data, setting=False)


def _setregset(call: Call, t: Tracee, addr: int, data: int) -> int:
    return _regset(call, t, addr, data, setting=True)


def _syscall_info(call: Call, t: Tracee, size: int, data: int) -> int:
    buf = ctypes.create_string_buffer(linux.SYSCALL_INFO_SIZE)
    n = _real(PTRACE_GET_SYSCALL_INFO, t.tid, linux.SYSCALL_INFO_SIZE, ctypes.addressof(buf))
    call.write(data, buf.raw[:min(n, size, linux.SYSCALL_INFO_SIZE)])
    return n


def _sigmask(call: Call, t: Tracee, size: int, data: int) -> int:
    if size != 8:
        raise Errno(errno.EINVAL)
    return _buffer_request(PTRACE_GETSIGMASK, 8, 8)(call, t, 0, data)


def _setsigmask(call: Call, t: Tracee, size: int, data: int) -> int:
    if size != 8:
        raise Errno(errno.EINVAL)
    mask = ctypes.c_uint64(struct.unpack("<Q", call.read(data, 8))[0])
    return _real(PTRACE_SETSIGMASK, t.tid, 8, ctypes.addressof(mask))


# -- memory ------------------------------------------------------------------------------

def _mem(tid: int, addr: int, word: int | None = None) -> bytes:
    """A word of the tracee's memory through /proc/PID/mem, which the
    supervisor, its tracer, may write even where the mapping is read-only
    (breakpoints in text)."""
    try:
        with tracee_memory():
            fd = os.open(f"/proc/{tid}/mem", os.O_RDWR if word is not None else os.O_RDONLY)
        try:
            if word is not None:
                if os.pwrite(fd, struct.pack("<Q", word & 0xFFFFFFFFFFFFFFFF), addr) != 8:
                    raise Errno(errno.EIO)
                return b""
            data = os.pread(fd, 8, addr)
        finally:
            os.close(fd)
    except (OSError, OverflowError):
        raise Errno(errno.EIO) from None
    if len(data) != 8:
        raise Errno(errno.EIO)
    return data


def _peek(call: Call, t: Tracee, addr: int, data: int) -> int:
    call.write(data, _mem(t.tid, addr))
    return 0


def _poke(call: Call, t: Tracee, addr: int, data: int) -> int:
    _mem(t.tid, addr, data)
    return 0


# -- events ------------------------------------------------------------------------------

def _setoptions(call: Call, t: Tracee, addr: int, data: int) -> int:
    if data & ~OPTIONS:
        raise Errno(errno.EINVAL)
    t.options = data
    return 0


def _geteventmsg(call: Call, t: Tracee, addr: int, data: int) -> int:
    call.write(data, struct.pack("<Q", t.message))
    return 0


def _getsiginfo(call: Call, t: Tracee, addr: int, data: int) -> int:
    info = linux.getsiginfo(t.tid)
    if info is None:
        raise Errno(errno.EINVAL)
    call.write(data, info)
    return 0


def _setsiginfo(call: Call, t: Tracee, addr: int, data: int) -> int:
    linux.setsiginfo(t.tid, call.read(data, linux.SIGINFO_SIZE))
    return 0


REQUESTS: dict[int, Callable[[Call, Tracee, int, int], int]] = {
    PTRACE_PEEKTEXT: _peek, PTRACE_PEEKDATA: _peek,
    PTRACE_POKETEXT: _poke, PTRACE_POKEDATA: _poke,
    PTRACE_PEEKUSER: _peekuser, PTRACE_POKEUSER: _pokeuser,
    PTRACE_GETREGS: _getregs, PTRACE_SETREGS: _setregs,
    PTRACE_GETFPREGS: _buffer_request(PTRACE_GETFPREGS, FPREGS_SIZE),
    PTRACE_SETFPREGS: _buffer_request(PTRACE_SETFPREGS, FPREGS_SIZE),
    PTRACE_GETREGSET: _getregset, PTRACE_SETREGSET: _setregset,
    PTRACE_SETOPTIONS: _setoptions, PTRACE_GETEVENTMSG: _geteventmsg,
    PTRACE_GETSIGINFO: _getsiginfo, PTRACE_SETSIGINFO: _setsiginfo,
    PTRACE_GETSIGMASK: _sigmask, PTRACE_SETSIGMASK: _setsigmask,
    PTRACE_GET_SYSCALL_INFO: _syscall_info,
}


# -- the tracer's waits --------------------------------------------------------------------

Write = Callable[[int, int], None]   # (guest PID, wait status)


def wait(call: Call, wanted: Callable[[int], bool], options: int, ordinary: bool,
         write: Write, returns_pid: bool) -> tuple[bool, int | None]:
    """A wait by an emulated tracer: (handled, result). A stop or exit of
    its tracees is reported from here; with none yet, an ordinary child the
    wait may also report lets the kernel wait (an event interrupts it and
    the wait restarts, trapped again), else the thread blocks in pause()
    until one does (interrupted the same way, or by a signal)."""
    tracing = call.sb.ptraced
    tgid = call.proc.tgid
    got = tracing.take(tgid, wanted, bool(options & 4), not options & 0x01000000)   # WEXITED, WNOWAIT
    if got is not None:
        host, status, guest = got
        guest = guest or call.sb.pids.to_guest(host)
        write(guest, status)
        return True, guest if returns_pid else 0
    if not tracing.watches(tgid, wanted):
        return False, None
    tracing.waiters[tgid] = call.tid
    if ordinary:
        return False, None
    if options & 1:   # WNOHANG
        return True, 0
    call.set_nr(SYS_pause)
    call.after(lambda c, result: waited(c))   # its exit stop: a restart is wait's again
    return True, None


def waited(call: Call) -> None:
    """A wait is over: a stop to come no longer interrupts the thread."""
    if call.sb.ptraced.waiters.get(call.proc.tgid) == call.tid:
        del call.sb.ptraced.waiters[call.proc.tgid]


def selector(call: Call, pid: int) -> Callable[[int], bool]:
    host = call.sb.pids.to_host(pid) if pid > 0 else None
    if pid > 0:
        return lambda tid: tid == host
    return lambda tid: True


def write_wait4(call: Call) -> Write:
    def write(guest: int, status: int) -> None:
        if call.arg(1):
            call.write(call.arg(1), struct.pack("<i", status))
        if call.arg(3):
            call.write(call.arg(3), bytes(RUSAGE_SIZE))
    return write


def write_waitid(call: Call) -> Write:
    """waitid's siginfo: CLD_TRAPPED with sig | event << 8 for a ptrace-stop."""
    def write(guest: int, status: int) -> None:
        if os.WIFSTOPPED(status):
            code, value = CLD_TRAPPED, status >> 8
        elif os.WIFEXITED(status):
            code, value = CLD_EXITED, os.WEXITSTATUS(status)
        else:
            code = CLD_DUMPED if os.WCOREDUMP(status) else CLD_KILLED
            value = os.WTERMSIG(status)
        if call.arg(2):
            call.write(call.arg(2), struct.pack("<iiiiiIi", signal.SIGCHLD, 0, code, 0, guest,
                                                call.proc.cred.ruid, value))
        if call.arg(4):
            call.write(call.arg(4), bytes(RUSAGE_SIZE))
    return write
