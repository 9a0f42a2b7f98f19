"""ptrace emulated for the container's own tracers (strace, gdb).

The supervisor is every container process's real tracer, so a container
process that calls ptrace becomes an *emulated* tracer, as under PRoot's
ptrace extension or gVisor: the supervisor keeps a tracee stopped at the
stops its emulated tracer asked for (signal delivery, syscall entry and
exit when resumed with PTRACE_SYSCALL, fork/clone/exec events, group- and
interrupt-stops), and the tracer learns of them from its emulated wait4 or
waitid (syscalls/handlers/guest_ptrace.py), with container PIDs. The stop
stays a real ptrace-stop of the supervisor's, so register and memory
requests are made by the supervisor on the real tracee.

A syscall-entry stop comes before seccomp runs (the kernel reports it
first), so brandpy decides and translates a call on what the emulated
tracer left in registers and memory, never before it.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import Errno
from .linux import PTRACE_INTERRUPT, ptrace

PTRACE_TRACEME = 0
PTRACE_PEEKTEXT, PTRACE_PEEKDATA, PTRACE_PEEKUSER = 1, 2, 3
PTRACE_POKETEXT, PTRACE_POKEDATA, PTRACE_POKEUSER = 4, 5, 6
PTRACE_CONT, PTRACE_KILL, PTRACE_SINGLESTEP = 7, 8, 9
PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_GETFPREGS, PTRACE_SETFPREGS = 12, 13, 14, 15
PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SYSCALL = 16, 17, 24
PTRACE_SETOPTIONS, PTRACE_GETEVENTMSG = 0x4200, 0x4201
PTRACE_GETSIGINFO, PTRACE_SETSIGINFO = 0x4202, 0x4203
PTRACE_GETREGSET, PTRACE_SETREGSET = 0x4204, 0x4205
PTRACE_SEIZE, PTRACE_LISTEN = 0x4206, 0x4208
PTRACE_GETSIGMASK, PTRACE_SETSIGMASK = 0x420A, 0x420B
PTRACE_GET_SYSCALL_INFO = 0x420E

O_TRACESYSGOOD, O_TRACEFORK, O_TRACEVFORK, O_TRACECLONE = 0x01, 0x02, 0x04, 0x08
O_TRACEEXEC, O_TRACEVFORKDONE, O_TRACEEXIT, O_TRACESECCOMP = 0x10, 0x20, 0x40, 0x80
O_EXITKILL, O_SUSPEND_SECCOMP = 0x100000, 0x200000
OPTIONS = 0xFF | O_EXITKILL | O_SUSPEND_SECCOMP
EVENT_FORK, EVENT_VFORK, EVENT_CLONE, EVENT_EXEC, EVENT_VFORK_DONE, EVENT_EXIT = 1, 2, 3, 4, 5, 6
EVENT_STOP = 128
EVENT_OPTION = {EVENT_FORK: O_TRACEFORK, EVENT_VFORK: O_TRACEVFORK, EVENT_CLONE: O_TRACECLONE}

SIGTRAP = int(signal.SIGTRAP)

# resumes the real tracee from the stop its tracer saw: (request, signal)
Resume = Callable[[int, int], None]


def stopped(code: int) -> int:
    """The wait status of a ptrace-stop whose code is sig | event << 8."""
    return code << 8 | 0x7F


@dataclass
class Stop:
    status: int            # what the tracer's wait reports
    resume: Resume
    reported: bool = False
    syscall_exit: bool = False   # a syscall-exit stop (its orig_rax is shown as at entry)


@dataclass
class Tracee:
    """A container thread traced by a container process."""
    tid: int                   # host TID
    tracer: int                # host TGID of the emulated tracer
    seized: bool
    options: int = 0
    mode: int = PTRACE_CONT    # how the tracer last resumed it
    stop: Stop | None = None   # the ptrace-stop its tracer sees it in
    message: int = 0           # PTRACE_GETEVENTMSG
    interrupt: bool = False    # PTRACE_INTERRUPT (or a seize of a stopped task) awaits its stop
    new: bool = False          # auto-attached: its first stop is its tracer's
    listened: bool = False     # its tracer parked it with PTRACE_LISTEN
    shown_nr: int | None = None   # the syscall number its entry showed, if brandpy changed it
    exit_events: bool = False  # the supervisor asked the kernel for its EXIT and VFORK_DONE events
    # The guest's ELF loader mapping the program after an exec through it
    # (the kernel does that natively): its calls, from the first open to the
    # next close, are not the program's and its tracer does not see them.
    loading: int = 0           # LOAD_* below
    hidden: bool = False       # the call it is in is one of those
    # An exec stop its tracer sees once the loader has mapped the program
    # (a debugger sets breakpoints in it there), if it is not tracing syscalls.
    deferred: int | None = None

    def real_request(self, request: int) -> int:
        """How the supervisor resumes it: as it would without the emulated
        tracer, but into the tracer's next syscall stop or single step."""
        if self.mode == PTRACE_SYSCALL or self.deferred is not None:
            return PTRACE_SYSCALL
        if self.mode == PTRACE_SINGLESTEP and request == PTRACE_CONT:
            return PTRACE_SINGLESTEP
        return request


LOAD_NONE, LOAD_OPEN, LOAD_MAPPING = 0, 1, 2
SYS_open, SYS_openat, SYS_close = 2, 257, 3


def hides(t: Tracee, nr: int) -> bool:
    """Whether the call entering now is the loader's (see Tracee.loading)."""
    if t.loading == LOAD_OPEN and nr in (SYS_open, SYS_openat):
        t.loading = LOAD_MAPPING
    elif t.loading == LOAD_MAPPING:
        if nr == SYS_close:
            t.loading = LOAD_NONE
    else:
        return False
    return True


@dataclass
class Exited:
    guest: int       # its container PID, kept past the reaping
    tid: int
    status: int


@dataclass
class Tracing:
    """Who traces whom in one container, and what their waits will report."""
    tracees: dict[int, Tracee] = field(default_factory=dict)     # host tid -> its record
    exits: dict[int, list[Exited]] = field(default_factory=dict)   # tracer tgid -> exits
    waiters: dict[int, int] = field(default_factory=dict)    # tracer tgid -> tid in a wait
    listening: set[int] = field(default_factory=set)         # tids the supervisor LISTENed
    # In a PID namespace of the kernel's, waits run natively: a process that
    # becomes a tracer gets a filter trapping its own (Supervisor._stack_wait_trap)
    waits_native: bool = False
    wait_trapped: set[int] = field(default_factory=set)      # tgids given the wait trap
    wait_pending: set[int] = field(default_factory=set)      # tids to install it at their next call

    def became_tracer(self, tgid: int, caller: int) -> None:
        """tgid traces a task now. Its threads are interrupted: a wait one
        is blocked in (the kernel's, which knows nothing of emulated stops)
        restarts, trapped, and reports them. Where waits run natively, the
        process first gets the wait trap: each thread stops at its next
        syscall entry (the supervisor resumes them with PTRACE_SYSCALL) and
        the first installs it for them all. caller: the thread making the
        call, stopped now (its resume does it)."""
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{tgid}/task")]
        except OSError:
            return   # gone
        if self.waits_native and tgid not in self.wait_trapped:
            self.wait_trapped.add(tgid)
            self.wait_pending.update(tids)
        for tid in tids:
            if tid != caller:
                try:
                    ptrace(PTRACE_INTERRUPT, tid)
                except OSError:
                    pass   # exited meanwhile

    def traces(self, tgid: int) -> bool:
        return bool(self.exits.get(tgid)) or any(t.tracer == tgid for t in self.tracees.values())

    def of(self, tgid: int) -> list[Tracee]:
        return [t for t in self.tracees.values() if t.tracer == tgid]

    def stopped_for(self, tracer: int, tid: int) -> Tracee:
        """The tracee a request names, in a ptrace-stop (ESRCH otherwise, as
        Linux says for a task not traced by the caller or not stopped)."""
        t = self.tracees.get(tid)
        if t is None or t.tracer != tracer or t.stop is None:
            raise Errno(errno.ESRCH)
        return t

    # -- reporting -----------------------------------------------------------------

    def report(self, t: Tracee, status: int, resume: Resume, syscall_exit: bool = False) -> None:
        """Keep t stopped: its tracer sees status."""
        t.stop = Stop(status, resume, syscall_exit=syscall_exit)
        self.notify(t.tracer)

    def exited(self, t: Tracee, guest: int, status: int, kernel_reports: bool) -> None:
        del self.tracees[t.tid]
        if not kernel_reports:
            self.exits.setdefault(t.tracer, []).append(Exited(guest, t.tid, status))
        self.notify(t.tracer)

    def notify(self, tracer: int) -> None:
        """SIGCHLD, as for any ptrace-stop, and a tracer blocked in a wait
        is interrupted: its wait restarts and finds the stop."""
        try:
            os.kill(tracer, signal.SIGCHLD)
        except ProcessLookupError:
            return
        waiter = self.waiters.pop(tracer, None)
        if waiter is not None:
            try:
                ptrace(PTRACE_INTERRUPT, waiter)
            except OSError:
                pass

    def take(self, tracer: int, wanted: Callable[[int], bool], exits: bool,
             consume: bool) -> tuple[int, int, int] | None:
        """A stop or exit tracer's wait reports: (host tid, status, guest
        PID or 0 if the caller translates the tid)."""
        for t in self.tracees.values():
            if t.tracer == tracer and t.stop is not None and not t.stop.reported \
                    and wanted(t.tid):
                t.stop.reported = consume
                return t.tid, t.stop.status, 0
        if exits:
            queue = self.exits.get(tracer, [])
            for e in queue:
                if wanted(e.tid):
                    if consume:
                        queue.remove(e)
                    return e.tid, e.status, e.guest
        return None

    def watches(self, tracer: int, wanted: Callable[[int], bool]) -> bool:
        return any(t.tracer == tracer and wanted(t.tid) for t in self.tracees.values())

    def drop_tracer(self, tgid: int) -> list[Tracee]:
        """The tracer is gone: its tracees, now untraced (the caller detaches
        or kills them, by PTRACE_O_EXITKILL)."""
        self.exits.pop(tgid, None)
        self.waiters.pop(tgid, None)
        self.wait_trapped.discard(tgid)   # (its PID may be another process's next)
        gone = self.of(tgid)
        for t in gone:
            del self.tracees[t.tid]
        return gone
