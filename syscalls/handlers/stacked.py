"""Trap filters the supervisor stacks on a process when it starts using
something whose IDs travel in plain reads: a socket that receives
credentials (SO_PASSCRED: recvmsg's SCM_CREDENTIALS) or a signalfd (its
siginfo records). BPF cannot tell such a read by its arguments, and
trapping every read costs every program a stop, so only processes that
set one up get the extra filter.

The filter is installed by the thread itself: its call (setsockopt,
signalfd) is first rewritten into seccomp(SECCOMP_SET_MODE_FILTER), whose
exit stop rewinds the thread to the original call, which then runs (three
stops, once per thread and filter). With SECCOMP_FILTER_FLAG_TSYNC every
thread of the process gets it; if the threads' filters differ (a thread
changed its IDs: see ident.py), the caller alone does.
"""

from __future__ import annotations

import functools
import os
import struct

from brandpy.runtime.call import ARG_REGS, Call, args_of
from brandpy.runtime.errors import warn
from brandpy.runtime.seccomp import Action, compile_filter, ret_allow, ret_trace

SYS_seccomp = 317
SYS_wait4, SYS_waitid = 61, 247
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1


def trap_filter(actions: dict[int, Action]) -> bytes:
    """A filter that acts only on `actions` and allows everything else."""
    return compile_filter(actions, default=ret_allow(), foreign_arch=ret_allow())


@functools.cache
def wait_trap() -> bytes:
    """Stacked on an emulated tracer where waits run natively (in a PID
    namespace of the kernel's): its waits stop, to report the stops of its
    tracees (Supervisor._stack_wait_trap)."""
    return trap_filter({SYS_wait4: ret_trace(), SYS_waitid: ret_trace()})


def rewrite_into_filter(call: Call, prog: bytes, flags: int = 0) -> None:
    """Make the trapped call seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)."""
    insns = call.push(prog)
    fprog = call.push(struct.pack("<H6xQ", len(prog) // 8, insns))
    call.set_nr(SYS_seccomp)
    call.set_arg(0, SECCOMP_SET_MODE_FILTER)
    call.set_arg(1, flags)
    call.set_arg(2, fprog)


def ready(call: Call, key: str, prog: bytes) -> bool:
    """True when the calling thread has the filter named `key` (or cannot
    have it): the caller then lets its call run. Else the call is turned
    into the filter's installation, and comes back once that is done."""
    sb = call.sb
    have = sb.stacked.setdefault(call.tid, set())
    if key in have:
        return True
    pending = sb.stacked_pending.pop(call.tid, None)
    if pending is not None and pending[0] == key and pending[1] != RETRY:
        if pending[1] == FAILED:
            warn(f"brandpy: could not stack the {key} trap filter on task {call.tid}: "
                 "the IDs it carries stay the host's")
        for tid in pending[2]:
            sb.stacked.setdefault(tid, set()).add(key)
        have.add(key)
        return True
    threads = _threads(call) if pending is None else (call.tid,)
    _prepend(call, key, prog, threads)
    return False


def _threads(call: Call) -> tuple[int, ...]:
    """The threads of the caller's process as the kernel has them (a new
    thread's first stop may not have reached the supervisor yet)."""
    try:
        return tuple(int(t) for t in os.listdir(b"/proc/%d/task" % call.proc.tgid))
    except OSError:
        return (call.tid,)


INSTALLED, RETRY, FAILED = "installed", "retry", "failed"


def _prepend(call: Call, key: str, prog: bytes, threads: tuple[int, ...]) -> None:
    """For `threads` (all the process's: TSYNC) or the caller alone."""
    nr, args = call.nr, args_of(call.regs)
    flags = SECCOMP_FILTER_FLAG_TSYNC if len(threads) > 1 else 0
    rewrite_into_filter(call, prog, flags)

    def rewind(c: Call, result: int) -> int:
        # result: 0, or a failure; with TSYNC the TID of a thread whose
        # filters differ: then the thread alone, next time
        outcome = INSTALLED if result == 0 else RETRY if flags else FAILED
        c.sb.stacked_pending[c.tid] = (key, outcome, threads if result == 0 else (c.tid,))
        if result == 0:   # (TSYNC gives every thread the caller's chain)
            chain = c.sb.own_filters.get(c.tid, ()) + (prog,)
            for tid in threads:
                c.sb.own_filters[tid] = chain
        c.regs.rip -= 2                 # the syscall instruction, again
        for name, value in zip(ARG_REGS, args, strict=True):
            setattr(c.regs, name, value)
        return nr

    call.after(rewind)
