"""Scheduling and I/O priorities of a process, a process group or a user:
getpriority/setpriority(which, who[, nice]) and ioprio_get/ioprio_set.

A process or group is a container PID, translated. A user's processes
are those the caller can see: in a PID namespace Linux walks only the
namespace's tasks, so the supervisor walks the container's threads and
applies the call to each with the kernel's per-process call. Unprivileged,
the supervisor has the caller's host user and no capabilities, so the
kernel's own permission checks apply unchanged; as root, the supervisor
checks what the kernel would check for the caller (its IDs, capabilities
and RLIMIT_NICE) before acting for it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource

from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno, Unborn
from brandpy.runtime.linux import libc

from .ident import capable
from .pids import _container_pgrp, _host_pid

PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
SYS_getpriority, SYS_ioprio_set, SYS_ioprio_get = 140, 251, 252
NICE_MIN, NICE_MAX = -20, 19
IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE = 0, 1, 2, 3
IOPRIO_LEVELS = 8
RLIMIT_NICE = 13


def priority(call: Call) -> int | None:
    """getpriority, setpriority, ioprio_get, ioprio_set."""
    io = call.nr in (SYS_ioprio_set, SYS_ioprio_get)
    process, group, user = (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER) if io \
        else (PRIO_PROCESS, PRIO_PGRP, PRIO_USER)
    which, who = call.iarg(0), call.iarg(1)
    if call.nr == SYS_ioprio_set:
        _check_ioprio(call, call.iarg(2))      # Linux checks the value first
    if which not in (process, group, user):
        raise Errno(errno.EINVAL)
    if which == user:
        return _per_user(call, who, io)
    if who:
        call.set_arg(1, _host_pid(call, who) if which == process else _container_pgrp(call, who))
    return None


# -- every process of a user -------------------------------------------------------

def _per_user(call: Call, who: int, io: bool) -> int:
    """A process just forked is among them once its first stop is seen:
    the call waits for that (errors.Unborn), as Linux's walk finds it at
    once. A thread just made (which sb.newborn does not hold) is not
    waited for: the walk may miss it."""
    sb = call.sb
    if sb.newborn:
        raise Unborn(next(iter(sb.newborn)))
    uid = (who & 0xFFFFFFFF) if who else _uids(call, call.tid)[0]
    tids = [tid for tid in list(sb.threads) if _uids(call, tid)[0] == uid]
    if call.nr == SYS_ioprio_get:
        found = [p for p in (_ioprio(SYS_ioprio_get, tid) for tid in tids) if p >= 0]
        if not found:
            raise Errno(errno.ESRCH)
        return min(found)
    if call.nr == SYS_ioprio_set:
        ioprio = call.iarg(2)
        if not tids:
            raise Errno(errno.ESRCH)
        for tid in tids:          # Linux stops at the first failure
            if not sb.fake_ids:
                _may_reprioritize(call, tid, io=True)
            rc = _ioprio(SYS_ioprio_set, tid, ioprio)
            if rc < 0:
                raise Errno(-rc)
        return 0
    if call.nr == SYS_getpriority:    # the best: the highest 20 - nice
        found = []
        for tid in tids:
            try:
                found.append(20 - os.getpriority(os.PRIO_PROCESS, tid))
            except OSError:
                continue
        if not found:
            raise Errno(errno.ESRCH)
        return max(found)
    nice = min(max(call.iarg(2), NICE_MIN), NICE_MAX)
    error = errno.ESRCH
    for tid in tids:              # the last failure is the result, as set_one_prio's
        try:
            if not sb.fake_ids:
                _may_reprioritize(call, tid, io=False, nice=nice)
            os.setpriority(os.PRIO_PROCESS, tid, nice)
            if error == errno.ESRCH:
                error = 0
        except Errno as exc:
            error = exc.errno
        except OSError as exc:
            error = exc.errno or errno.EPERM
    if error:
        raise Errno(error)
    return 0


def _uids(call: Call, tid: int) -> tuple[int, int]:
    """The (real, effective) UIDs of a container thread: emulated ones
    unprivileged, the kernel's as root."""
    proc = call.sb.threads.get(tid)
    if call.sb.fake_ids and proc is not None:
        return proc.cred.ruid, proc.cred.euid
    try:
        with open(b"/proc/%d/status" % tid, "rb") as f:
            fields = next(line for line in f if line.startswith(b"Uid:")).split()
        return int(fields[1]), int(fields[2])
    except (OSError, StopIteration):
        return -1, -1


def _may_reprioritize(call: Call, tid: int, io: bool, nice: int = 0) -> None:
    """What Linux checks before the caller changes another task's priority
    (set_one_prio / set_task_ioprio), for a root supervisor acting for it."""
    ruid, euid = _uids(call, call.tid)
    t_ruid, t_euid = _uids(call, tid)
    nice_cap = capable(call, "CAP_SYS_NICE")
    allowed = t_ruid in (euid, ruid) if io else euid in (t_ruid, t_euid)
    if not allowed and not nice_cap:
        raise Errno(errno.EPERM)
    if io or nice_cap:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        limit = resource.prlimit(tid, RLIMIT_NICE)[0]
    except OSError:
        raise Errno(errno.ESRCH) from None
    if nice < current and 20 - nice > limit:
        raise Errno(errno.EACCES)


def _check_ioprio(call: Call, ioprio: int) -> None:
    """ioprio_check_cap: the class and level are checked before anything.
    Unprivileged the kernel checks with the same (no) capabilities; as
    root only the real-time class needs the caller's own."""
    klass, level = ioprio >> 13 & 7, ioprio & 7
    if klass == IOPRIO_CLASS_RT and not call.sb.fake_ids and \
            not capable(call, "CAP_SYS_NICE", "CAP_SYS_ADMIN"):
        raise Errno(errno.EPERM)
    if klass in (IOPRIO_CLASS_RT, IOPRIO_CLASS_BE) and level >= IOPRIO_LEVELS or \
            klass == IOPRIO_CLASS_NONE and level or \
            klass not in (IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE):
        raise Errno(errno.EINVAL)


def _ioprio(nr: int, tid: int, ioprio: int = 0) -> int:
    """ioprio_get/ioprio_set of one host thread: the value or -errno."""
    rc = libc.syscall(ctypes.c_long(nr), ctypes.c_int(IOPRIO_WHO_PROCESS), ctypes.c_int(tid),
                      ctypes.c_int(ioprio))
    return rc if rc >= 0 else -ctypes.get_errno()
