"""Calls that name other processes by PID act only on the container's own
processes: a container (even as root on the host) cannot signal, trace,
renice or read the memory of anything outside it. PIDs are translated
through the sandbox's PID map."""

from __future__ import annotations

import errno
import os

from brandpy.runtime.call import Call
from brandpy.runtime.process import Errno

PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3


def _host_pid(call: Call, guest: int) -> int:
    host = call.sb.pids.to_host(guest)
    if host is None:
        raise Errno(errno.ESRCH)
    return host


def translate_pid(call: Call, i: int, zero_is_self: bool = True) -> None:
    """Rewrite argument i (a container PID) to the host PID; 0 means the
    caller where the syscall says so."""
    pid = call.iarg(i)
    if pid == 0 and zero_is_self:
        return
    if pid <= 0:
        raise Errno(errno.EINVAL if pid < 0 else errno.ESRCH)
    call.set_arg(i, _host_pid(call, pid))


def _container_pgrp(call: Call, pgid: int) -> int:
    host = call.sb.pids.to_host(pgid)
    if host is None or not any(_pgid(t) == host for t in call.sb.procs):
        raise Errno(errno.ESRCH)
    return host


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def kill(call: Call) -> int | None:
    pid, sig = call.iarg(0), call.iarg(1)
    if pid > 0:
        call.set_arg(0, _host_pid(call, pid))
        return None
    if pid == 0:
        return None    # the caller's process group: always inside the container's session
    if pid == -1:
        return _kill_all(call, sig)
    call.set_arg(0, -_container_pgrp(call, -pid))
    return None


def _kill_all(call: Call, sig: int) -> int:
    """kill(-1): every container process but the caller and the init, as in
    a PID namespace, instead of every process on the host."""
    if not 0 <= sig <= 64:
        raise Errno(errno.EINVAL)
    sent = 0
    for tgid in list(call.sb.procs):
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


def tkill(call: Call) -> None:            # tkill(tid, sig), rt_sigqueueinfo(tgid, sig, info)
    translate_pid(call, 0, zero_is_self=False)


def tgkill(call: Call) -> None:           # tgkill(tgid, tid, sig), rt_tgsigqueueinfo(...)
    translate_pid(call, 0, zero_is_self=False)
    translate_pid(call, 1, zero_is_self=False)


def first_pid(call: Call) -> None:
    """Calls whose first argument is a PID with 0 meaning the caller:
    sched_*, prlimit64, get_robust_list, pidfd_open (0 is EINVAL there:
    the kernel says so itself), process_vm_readv/writev."""
    translate_pid(call, 0)


def which_who(call: Call) -> int | None:
    """getpriority/setpriority(which, who) and ioprio_get/set(which, who):
    a process, a process group, or every process of a user."""
    which, who = call.iarg(0), call.iarg(1)
    ioprio = call.nr in (251, 252)
    by_process = IOPRIO_WHO_PROCESS if ioprio else PRIO_PROCESS
    by_group = IOPRIO_WHO_PGRP if ioprio else PRIO_PGRP
    if who == 0:
        return None
    if which == by_process:
        call.set_arg(1, _host_pid(call, who))
    elif which == by_group:
        call.set_arg(1, _container_pgrp(call, who))
    else:
        # all processes of a user: on the host that reaches beyond the container
        raise Errno(errno.EPERM, "per-user priority changes are not emulated")
    return None
