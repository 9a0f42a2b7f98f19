"""Calls that carry a siginfo across the container's boundary.

Received: the siginfo of rt_sigtimedwait (sigwaitinfo, sigtimedwait) and of
signal handlers (the supervisor's signal-delivery stop) shows the
sender's container PID and, with emulated identity, its container UID
(brandpy/runtime/ids.py). Sent: rt_sigqueueinfo, rt_tgsigqueueinfo and
pidfd_send_signal name their target by container PID or pidfd; a siginfo
with a kernel's code (allowed only to oneself) gets the sender's host PID
the kernel would write, so it is received as sent.
"""

from __future__ import annotations

import errno
import os
import struct

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.ids import SIGNALFD_SIGINFO, pid_in, siginfo_in, siginfo_out
from brandpy.runtime.seccomp import ArgTest, ret_allow, ret_trace

from . import pids, stacked

SIGINFO_SIZE = 128
SIGSET_SIZE = 8


def sigtimedwait(call: Call) -> None:
    """rt_sigtimedwait(set, info, timeout, sigsetsize). While a thread
    waits, the signals it waits for count as blocked for the init's
    ignore rule (Linux checks the mask the wait saved); the siginfo is
    the container's on the way out."""
    waiting = 0
    if call.arg(3) == SIGSET_SIZE and call.arg(0):
        try:
            waiting = int.from_bytes(call.read(call.arg(0), SIGSET_SIZE), "little")
        except Errno:
            pass              # the kernel reports the fault
    call.sb.sigwaiting[call.tid] = waiting
    infop = call.arg(1)

    def after(c: Call, result: int) -> None:
        c.sb.sigwaiting.pop(c.tid, None)
        if result > 0 and infop:
            info = c.read(infop, SIGINFO_SIZE)
            seen = siginfo_out(c.sb, info)
            if seen != info:
                c.write(infop, seen)

    call.after(after)


def _send_info(call: Call, info_i: int, sig: int) -> None:
    ptr = call.arg(info_i)
    if not ptr:
        return
    info = call.read(ptr, SIGINFO_SIZE)
    sent = siginfo_in(call.sb, info, sig)
    if sent != info:
        call.set_arg(info_i, call.push(sent))


def sigqueueinfo(call: Call) -> int | None:
    """rt_sigqueueinfo(tgid, sig, info)."""
    dropped = pids.tkill(call)
    if dropped is None:
        _send_info(call, 2, call.iarg(1))
    return dropped


def tgsigqueueinfo(call: Call) -> int | None:
    """rt_tgsigqueueinfo(tgid, tid, sig, info)."""
    dropped = pids.tgkill(call)
    if dropped is None:
        _send_info(call, 3, call.iarg(2))
    return dropped


def pidfd_send_signal(call: Call) -> int | None:
    """pidfd_send_signal(pidfd, sig, info, flags): the init's ignore rule
    applies as to kill(), and a siginfo is sent as rt_sigqueueinfo's."""
    sig = call.iarg(1)
    target = _pidfd_pid(call, call.iarg(0))
    if target is not None and pids._init_ignores(call, target, sig):
        return 0
    _send_info(call, 2, sig)
    return None


def _pidfd_pid(call: Call, fd: int) -> int | None:
    """The host PID a pidfd of the tracee's refers to (its fdinfo), None
    for another kind of fd (the kernel then says EBADF)."""
    try:
        with open(b"/proc/%d/fdinfo/%d" % (call.tid, fd), "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


SIGEVENT_SIZE = 64
SIGEV_THREAD_ID = 4


def timer_create(call: Call) -> None:
    """timer_create(clock, sigevent, timerid): the CPU-time clock of a
    process or thread carries its PID, and SIGEV_THREAD_ID the TID of the
    thread to signal (glibc's SIGEV_THREAD timers name their helper
    thread so): container IDs, given to the kernel as host ones."""
    if call.iarg(0) < 0:
        pids.cpu_clock(call)
    ptr = call.arg(1)
    if not ptr:
        return
    sev = call.read(ptr, SIGEVENT_SIZE)
    notify, tid = struct.unpack_from("<ii", sev, 12)
    if notify & SIGEV_THREAD_ID and tid > 0:
        host = pid_in(call.sb, tid, errno.EINVAL)    # no such thread: Linux's EINVAL
        call.set_arg(1, call.push(sev[:16] + struct.pack("<i", host) + sev[20:]))


# -- signalfd ------------------------------------------------------------------------------

SYS_read, SYS_readv = 0, 19
IOVEC = struct.Struct("<QQ")


def signalfd(call: Call) -> None:
    """signalfd(-1, ...) and signalfd4(-1, ...) make a new signalfd, whose
    reads return siginfo records: the fd number it will get (the lowest
    free one) has its read and readv trapped in this process first
    (stacked.py). Changing an existing signalfd's mask needs nothing."""
    if call.iarg(0) != -1:
        return
    fd = _lowest_free_fd(call.tid)
    reads = ArgTest(0, "eq", fd, then=ret_trace(), otherwise=ret_allow())
    stacked.ready(call, f"signalfd {fd}", stacked.trap_filter({SYS_read: reads, SYS_readv: reads}))


def _lowest_free_fd(tid: int) -> int:
    try:
        used = {int(name) for name in os.listdir(b"/proc/%d/fd" % tid)}
    except OSError:
        raise Errno(errno.ESRCH) from None
    return next(fd for fd in range(len(used) + 1) if fd not in used)


def signalfd_read(call: Call) -> None:
    """read/readv, trapped only on fd numbers that were given to a
    signalfd: the records of one are translated on the way out."""
    fd = call.iarg(0)
    try:
        if os.readlink(b"/proc/%d/fd/%d" % (call.tid, fd)) != b"anon_inode:[signalfd]":
            return
    except OSError:
        return
    if call.nr == SYS_read:
        spans = [(call.arg(1), call.arg(2))]
    else:
        count = min(call.iarg(2), 1024)
        raw = call.read(call.arg(1), IOVEC.size * count) if count > 0 else b""
        spans = [IOVEC.unpack_from(raw, i * IOVEC.size) for i in range(count)]

    def after(c: Call, result: int) -> None:
        if result > 0:
            _translate_records(c, spans, result)

    call.after(after)


def _translate_records(call: Call, spans: list[tuple[int, int]], total: int) -> None:
    parts, left = [], total
    for base, size in spans:
        take = min(size, left)
        if take:
            parts.append((base, take))
            left -= take
    data = b"".join(call.read(base, size) for base, size in parts)
    size = SIGNALFD_SIGINFO.size
    seen = b"".join(siginfo_out(call.sb, data[i:i + size], SIGNALFD_SIGINFO)
                    for i in range(0, len(data) - len(data) % size, size))
    if seen == data[:len(seen)]:
        return
    at = 0
    for base, size in parts:
        call.write(base, seen[at:at + size])
        at += size
