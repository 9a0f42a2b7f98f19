"""The Python engine: a ptrace wait loop over the container's process tree.

One waitpid loop serves every tracee. Seccomp stops go to the syscall
table's handlers; fork/vfork/clone/exec events maintain the process
table; signal-delivery stops re-inject the signal; group-stops are parked
with PTRACE_LISTEN so job control behaves as without a tracer. When the
entrypoint exits, everything left is killed and reaped and its status is
returned (128+N for a signal, as docker reports it).
"""

from __future__ import annotations

import errno
import os
import signal
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ptrace.binding.func import ptrace_getregs, ptrace_setregs

from brandpy import scratch
from brandpy.runtime import acting, linux
from brandpy.runtime.call import ARG_REGS, HANDOFF, Call, CloseFd, Inject, Regs, args_of
from brandpy.runtime.errors import Errno, StrictViolation, Unborn, warn
from brandpy.runtime.guest_ptrace import (
    EVENT_EXEC,
    EVENT_EXIT,
    EVENT_OPTION,
    EVENT_VFORK_DONE,
    LOAD_NONE,
    LOAD_OPEN,
    O_EXITKILL,
    O_TRACEEXEC,
    O_TRACEEXIT,
    O_TRACESYSGOOD,
    O_TRACEVFORKDONE,
    Tracee,
    hides,
    stopped,
)
from brandpy.runtime.identity import Cred
from brandpy.runtime.ids import siginfo_out
from brandpy.runtime.inject import Injection, Injector
from brandpy.runtime.linux import (
    PTRACE_CONT,
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_EXEC,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_SECCOMP,
    PTRACE_EVENT_STOP,
    PTRACE_EVENT_VFORK,
    PTRACE_INTERRUPT,
    PTRACE_LISTEN,
    PTRACE_SETOPTIONS,
    PTRACE_SYSCALL,
    STOP_SIGNALS,
)
from brandpy.runtime.process import Process, dumpable_after_exec
from brandpy.runtime.replay import Replay
from brandpy.runtime.seccomp import combine, evaluate, ret_allow, ret_trace
from brandpy.runtime.trace import Tracer, format_call
from syscalls.effective import PASS
from syscalls.handlers.stacked import (
    SECCOMP_FILTER_FLAG_TSYNC,
    SYS_wait4,
    SYS_waitid,
    rewrite_into_filter,
    wait_trap,
)

if TYPE_CHECKING:
    from brandpy.runtime.landlock import Spawner
    from brandpy.runtime.sandbox import Sandbox
    from syscalls.effective import Effective

SKIP = 0xFFFFFFFFFFFFFFFF   # orig_rax = -1: the kernel skips the call
SYSGOOD_TRAP = signal.SIGTRAP | 0x80
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_SETTID = 0x01000000
CLONE_THREAD = 0x00010000
SYS_clone = 56
SYS_SECCOMP_CODE = 1
TRAP_DATA = 0xB7          # syscalls/handlers/ident.py stacks traps with this data
NO_RETURN = frozenset({60, 231})   # exit, exit_group: traced at entry (strace's "= ?")
SYS_execve, SYS_execveat = 59, 322
SYS_openat, SYS_close = 257, 3
WAITS = frozenset({SYS_wait4, SYS_waitid})
PASSED = ret_trace(PASS)           # trapped only to be seen (--trace-all)
AT_FDCWD = (1 << 64) - 100
ENTERING = (1 << 64) - 38          # rax at a syscall-enter stop: -ENOSYS


class Birth(NamedTuple):
    """What a new task inherits from the call that made it, known at its
    creator's fork/clone event."""
    creator: Process
    parent_tid: int
    event: int
    child_ptr: int                          # CLONE_CHILD_SETTID's pointer, or 0
    own_args: tuple[int, ...] | None        # the call's own registers, if brandpy rewrote them
    filters: tuple[bytes, ...]              # trap filters brandpy stacked on the creator


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Supervisor:
    def __init__(self, sandbox: Sandbox, effective: Effective, debug: bool = False) -> None:
        self.sb = sandbox
        self.effective = effective
        self.debug = debug
        self.init_pid = 0
        self.status: int | None = None
        self.on_entry_exec: Callable[[], None] | None = None   # Container.on_running
        self.terminating = False
        # child -> how to register it (_register's arguments)
        self.expected: dict[int, Birth] = {}
        self.held: dict[int, int] = {}                       # new tracee -> its first stop status
        # expected tid -> calls naming it, made again at its first stop (Unborn)
        self.births: dict[int, list[Callable[[], None]]] = {}
        self.at_exit: dict[int, Call] = {}                   # tids stopped for syscall exit
        self.fork_return: dict[int, int] = {}                # parent tid -> child's container PID
        # tid -> its last rewritten call: (new nr, new args, old nr, old args)
        self.rewritten: dict[int, tuple[int, tuple[int, ...], int, tuple[int, ...]]] = {}
        self.tracer: Tracer | None = None
        self.injector: Injector | None = None
        self.replay: Replay | None = None
        self.paused = False
        self.frozen: dict[int, tuple[int, int]] = {}         # paused tid -> its pending resume
        self.watchers: dict[int, Callable[[int], None]] = {}  # tgid -> called with its exit status
        self._requests: deque[Callable[[], None]] = deque()
        self.handoffs: dict[int, Inject] = {}                # tid -> fd to install (_hand_off)
        self.injected: dict[int, Any] = {}                   # tid -> registers to restore
        # tid -> the call it made, turned into the wait trap's installation
        self.wait_trap_exit: dict[int, tuple[int, tuple[int, ...], int]] = {}
        self.wait_trap_per_thread: set[int] = set()           # tgids TSYNC failed for
        self._lock = threading.Lock()
        self._closed = False
        self._reported: set[str] = set()
        self.spawner: Spawner | None = None   # the container's (brandpy.runtime.landlock)
        scratch.start()   # before the janitor, an orphan, would be reparented to us
        try:   # orphans are reparented to the supervisor, which reaps them
            linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass

    # -- running ------------------------------------------------------------

    def adopt(self, pid: int, init: bool = False,
              on_exit: Callable[[int], None] | None = None, cred: Cred | None = None) -> None:
        """Register a process just spawned (seized) by this thread: the
        entrypoint, or a process `docker exec` starts in the container
        (maybe as another user)."""
        if init:
            self.init_pid = self.sb.init_pid = pid
        cred = (cred or self.sb.cred).copy()
        if self.sb.needs_id_trap(cred):
            self.sb.id_trapped.add(pid)   # spawned with the trap (Container._filter_for)
        self.sb.add_thread(pid, Process(tgid=pid, cred=cred))
        if on_exit is not None:
            self.watchers[pid] = on_exit

    def _finish(self) -> int:
        with self._lock:
            self._closed = True
        self._drain_requests()
        return self.status if self.status is not None else 128 + signal.SIGKILL

    def handle(self, tid: int, status: int) -> None:
        """One waitpid() result."""
        if self.spawner is not None and tid == self.spawner.pid:
            self.spawner = None     # it ended (we closed it, or it was killed)
            return
        try:
            self._handle(tid, status)
        finally:
            if self.spawner is not None and self._gone():
                self.spawner.close()   # it exits; then waitpid can say ECHILD

    def _gone(self) -> bool:
        return (self.status is not None and not self.sb.threads and not self.held
                and not self.sb.newborn and not self.expected)

    def _handle(self, tid: int, status: int) -> None:
        try:
            if os.WIFSTOPPED(status):
                self._on_stop(tid, status)
            else:
                self._on_exit(tid, status)
        except Exception:
            if self.debug:
                raise
            # a supervisor bug must not strand the tracee in its stop
            warn(f"brandpy: internal error handling task {tid} (please report it):\n"
                 f"{traceback.format_exc()}")
            if os.WIFSTOPPED(status):
                self._ptrace(PTRACE_CONT, tid)

    def call_soon(self, fn: Callable[[], None]) -> bool:
        """Run fn on the tracer thread (ptrace requests must come from it),
        from any thread. False once the container is gone."""
        with self._lock:
            if self._closed:
                return False
            self._requests.append(fn)
            self._wake()
        return True

    def _wake(self) -> None:
        """Wake the event loop for a request (with the lock held)."""
        raise NotImplementedError

    def _drain_requests(self) -> None:
        while self._requests:
            self._requests.popleft()()

    def pause(self) -> None:
        """Freeze every thread in a ptrace stop (as the cgroup freezer does:
        the container cannot observe it). Tracer thread only."""
        self.paused = True
        for tid in list(self.sb.threads):
            self._ptrace(PTRACE_INTERRUPT, tid)

    def resume(self) -> None:
        self.paused = False
        frozen, self.frozen = self.frozen, {}
        for tid, (request, sig) in frozen.items():
            self._ptrace(request, tid, 0, sig)

    def forward_signal(self, sig: int) -> None:
        """A signal from outside (brandpy's own, docker kill/stop) goes to the
        entrypoint, which, as a namespace's init, only gets the signals it
        handles, plus SIGKILL and SIGSTOP."""
        if self.init_pid and self.status is None:
            if sig not in (signal.SIGKILL, signal.SIGSTOP) and \
                    not linux.receives(self.init_pid, sig, self.sb.sigwaiting.get(self.init_pid, 0)):
                return
            try:
                os.kill(self.init_pid, sig)
            except ProcessLookupError:
                pass

    def kill_all(self) -> None:
        self.terminating = True
        for tgid in list(self.sb.procs) + list(self.held):
            try:
                os.kill(tgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- stops --------------------------------------------------------------

    def _on_stop(self, tid: int, status: int) -> None:
        sig = os.WSTOPSIG(status)
        event = status >> 16
        if self.terminating:
            self._kill(tid)
            return
        if tid not in self.sb.threads and not self._adopt(tid, status):
            return
        traced = self.sb.ptraced.tracees.get(tid)   # by a container process
        if traced is not None and traced.new:       # auto-attached: its first stop
            traced.new = False
            self.sb.stats.event_stops += 1
            self._report(traced, signal.SIGTRAP | PTRACE_EVENT_STOP << 8 if traced.seized
                         else signal.SIGSTOP)
        elif sig == signal.SIGTRAP and event == PTRACE_EVENT_SECCOMP:
            self._on_syscall(tid)
        elif sig == SYSGOOD_TRAP:
            if tid in self.wait_trap_exit:
                self._wait_trap_stacked(tid)
            elif tid in self.sb.ptraced.wait_pending and tid not in self.injected and \
                    self._stack_wait_trap(tid):
                pass
            elif traced is not None and tid not in self.injected and \
                    linux.syscall_info(tid, 1)[:1] == bytes([linux.SYSCALL_INFO_ENTRY]):
                self._syscall_entry(traced)
            else:
                self._on_syscall_exit(tid)
        elif sig == signal.SIGTRAP and event in (EVENT_EXIT, EVENT_VFORK_DONE):
            self.sb.stats.event_stops += 1   # (asked for its tracer's sake: _report)
            wanted = O_TRACEEXIT if event == EVENT_EXIT else O_TRACEVFORKDONE
            if traced is not None and traced.options & wanted:
                msg = linux.geteventmsg(tid)   # the exit status, or the vfork child's TID
                traced.message = msg if event == EVENT_EXIT else self.sb.pids.to_guest(msg)
                self._report(traced, signal.SIGTRAP | event << 8)
            else:
                self._resume(tid)
        elif sig == signal.SIGTRAP and event in (PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK,
                                                 PTRACE_EVENT_CLONE):
            self.sb.stats.event_stops += 1
            child = linux.geteventmsg(tid)
            if traced is not None and traced.options & EVENT_OPTION[event]:
                self.sb.ptraced.tracees[child] = Tracee(child, traced.tracer, traced.seized,
                                                        traced.options, new=True)
            self._on_new_child(tid, child, event)
            # PTRACE_SYSCALL: to fix fork()'s return value (in the kernel's
            # PID namespace it is right: only a call brandpy rewrote stops)
            request = PTRACE_SYSCALL if tid in self.fork_return or tid in self.at_exit \
                else PTRACE_CONT
            if traced is not None and child in self.sb.ptraced.tracees:
                traced.message = self.sb.pids.to_guest(child)
                self._report(traced, signal.SIGTRAP | event << 8, request)
            else:
                self._resume(tid, request=request)
        elif sig == signal.SIGTRAP and event == PTRACE_EVENT_EXEC:
            self.sb.stats.event_stops += 1
            waiting = self._on_exec(tid)
            # an execve waiting for its exit stop (the trace) still gets it
            request = PTRACE_SYSCALL if waiting else PTRACE_CONT
            traced = self.sb.ptraced.tracees.get(tid)   # (moved from the thread that exec'd)
            code = None if traced is None else signal.SIGTRAP | EVENT_EXEC << 8 \
                if traced.options & O_TRACEEXEC else None if traced.seized \
                else signal.SIGTRAP                     # Linux's SIGTRAP after exec
            if traced is not None and code is not None and traced.loading and \
                    traced.mode != PTRACE_SYSCALL:
                traced.deferred = code
                self._resume(tid, request=request)
            elif traced is not None and code is not None:
                self._report(traced, code, request)
            else:
                self._resume(tid, request=request)
        elif event == PTRACE_EVENT_STOP:
            self.sb.stats.event_stops += 1
            self.sb.ptraced.listening.discard(tid)
            if traced is not None and (sig in STOP_SIGNALS or traced.interrupt or traced.listened):
                traced.interrupt = traced.listened = False
                self._report(traced, sig | PTRACE_EVENT_STOP << 8 if traced.seized else sig)
            elif sig in STOP_SIGNALS:
                self.sb.ptraced.listening.add(tid)
                self._ptrace(PTRACE_LISTEN, tid)    # group-stop: stay stopped, see SIGCONT
            else:
                self._resume(tid)
        else:
            self.sb.stats.event_stops += 1
            self._on_signal(tid, sig)               # signal-delivery-stop

    def _on_signal(self, tid: int, sig: int) -> None:
        """Deliver a signal, its sender's IDs as the container sees them; a
        SIGSYS from the identity trap filter is answered instead."""
        # a wait a signal interrupts is over (a restarted one says so again)
        self.sb.sigwaiting.pop(tid, None)
        info = linux.getsiginfo(tid)
        if info is None:
            self._resume(tid, sig)
            return
        code = linux.siginfo_code(info)
        if sig == signal.SIGSYS and code == SYS_SECCOMP_CODE and \
                linux.siginfo_errno(info) == TRAP_DATA and tid in self.sb.id_trapped and \
                self._answer_trap(tid):
            return
        seen = siginfo_out(self.sb, info)
        if seen != info:
            linux.setsiginfo(tid, seen)
        traced = self.sb.ptraced.tracees.get(tid)
        if traced is not None:
            self._report(traced, sig)   # its tracer decides what is delivered
            return
        self._resume(tid, sig)

    # -- the container's own tracers (runtime/guest_ptrace.py) ----------------

    def _report(self, traced: Tracee, code: int, request: int = PTRACE_CONT,
                syscall_exit: bool = False) -> None:
        """Keep a tracee stopped for its emulated tracer, which sees the
        stop `code` (sig | event << 8); its resume carries on with
        `request`, what the supervisor needs next."""
        tid = traced.tid
        if not traced.exit_events:   # (stopped now: options can be set)
            traced.exit_events = True
            self._ptrace(PTRACE_SETOPTIONS, tid, 0,
                         linux.TRACE_OPTIONS | O_TRACEEXIT | O_TRACEVFORKDONE)

        def resume(how: int, sig: int) -> None:
            if how == PTRACE_LISTEN:
                traced.listened = True
                self.sb.ptraced.listening.add(tid)
                self._ptrace(PTRACE_LISTEN, tid)
            else:
                self._resume(tid, sig, request)

        self.sb.ptraced.report(traced, stopped(code), resume, syscall_exit)

    def _syscall_entry(self, traced: Tracee) -> None:
        """PTRACE_SYSCALL's entry stop: it comes before seccomp, so brandpy
        handles the call on what the tracer leaves."""
        traced.shown_nr = None
        if traced.loading or traced.deferred is not None:
            try:
                nr = ptrace_getregs(traced.tid).orig_rax
            except Exception:
                return   # gone; its exit follows
            if hides(traced, nr) or traced.deferred is not None:
                traced.hidden = True
                self._resume(traced.tid)
                return
        self._report(traced, self._sysgood(traced))

    @staticmethod
    def _sysgood(traced: Tracee) -> int:
        return SYSGOOD_TRAP if traced.options & O_TRACESYSGOOD else signal.SIGTRAP

    def _syscall_done(self, tid: int) -> None:
        """A syscall-exit stop brandpy is through with: the emulated tracer's
        if it resumed the thread with PTRACE_SYSCALL."""
        traced = self.sb.ptraced.tracees.get(tid)
        if traced is not None and traced.hidden:
            traced.hidden = False
            if traced.deferred is not None and not traced.loading:   # the program is mapped
                code, traced.deferred = traced.deferred, None
                self._report(traced, code)
            else:
                self._resume(tid)
        elif traced is not None and traced.mode == PTRACE_SYSCALL:
            self._report(traced, self._sysgood(traced), syscall_exit=True)
        else:
            self._resume(tid)

    def _tracer_gone(self, tgid: int) -> None:
        """A tracer's tracees are detached (killed, with PTRACE_O_EXITKILL)."""
        self.wait_trap_per_thread.discard(tgid)
        for traced in self.sb.ptraced.drop_tracer(tgid):
            if traced.options & O_EXITKILL:
                self._kill(traced.tid)
            elif traced.stop is not None:
                self._resume(traced.tid)

    def _stack_wait_trap(self, tid: int) -> bool:
        """At the syscall-entry stop of a thread whose process became an
        emulated tracer (Tracing.became_tracer): its call becomes the wait
        trap's installation, for every thread of the process (TSYNC), and
        comes back at the exit stop (_wait_trap_stacked). False at an exit
        stop."""
        if linux.syscall_info(tid, 1)[:1] != bytes([linux.SYSCALL_INFO_ENTRY]):
            return False
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return True   # gone; its exit follows
        call = Call(self.sb, self.sb.threads[tid], tid, regs)
        own = (call.nr, args_of(regs))
        tracing = self.sb.ptraced
        # TSYNC (every thread at once) unless an earlier try named a thread
        # whose filters differ: then each thread its own
        flags = 0 if call.proc.tgid in self.wait_trap_per_thread else SECCOMP_FILTER_FLAG_TSYNC
        try:
            rewrite_into_filter(call, wait_trap(), flags)
            ptrace_setregs(tid, regs)
        except (Errno, OSError) as exc:
            tracing.wait_pending.discard(tid)
            warn(f"brandpy: could not stack the wait trap on task {tid} ({exc}): its waits do "
                 "not see the stops of the tasks it traces")
            self._resume(tid)
            return True
        self.wait_trap_exit[tid] = (*own, flags)
        self._resume(tid)
        return True

    def _wait_trap_stacked(self, tid: int) -> None:
        """The wait trap's installation returned: the thread makes its own
        call again (through the trap)."""
        nr, args, flags = self.wait_trap_exit.pop(tid)
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return
        tracing = self.sb.ptraced
        result = regs.rax - (1 << 64) if regs.rax >= 1 << 63 else regs.rax
        proc = self.sb.threads[tid]
        if result == 0:
            tracing.wait_pending.difference_update(proc.threads if flags else (tid,))
        elif flags and result > 0:   # TSYNC named a thread whose filters differ
            self.wait_trap_per_thread.add(proc.tgid)
        else:
            tracing.wait_pending.discard(tid)
            warn(f"brandpy: could not stack the wait trap on task {tid} (errno {-result}): "
                 "its waits do not see the stops of the tasks it traces")
        regs.rax, regs.orig_rax = nr, nr
        regs.rip -= 2                   # the syscall instruction, again
        for name, value in zip(ARG_REGS, args, strict=True):
            setattr(regs, name, value)
        try:
            ptrace_setregs(tid, regs)
        except Exception:
            return
        self._resume(tid)

    def _answer_trap(self, tid: int) -> bool:
        """Answer a getter the identity trap filter trapped; False for any
        other SIGSYS (a filter of the container's own), delivered as is."""
        from syscalls.handlers.ident import GETTERS

        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return True   # gone; its exit follows
        getter = GETTERS.get(regs.orig_rax)
        if getter is None:
            return False
        call = Call(self.sb, self.sb.threads[tid], tid, regs)
        self.sb.stats.trapped(call.nr)
        regs.rax = getter(call)
        try:
            ptrace_setregs(tid, regs)
        except Exception:
            return True
        self._resume(tid)
        return True

    def _on_exit(self, tid: int, status: int) -> None:
        traced = self.sb.ptraced.tracees.get(tid)
        proc = self.sb.threads.get(tid)
        if traced is not None:   # its tracer's wait reports it (the kernel, to a parent)
            own = proc is not None and tid == proc.tgid and proc.parent == traced.tracer
            self.sb.ptraced.exited(traced, self.sb.pids.to_guest(tid), status, own)
        self.held.pop(tid, None)
        self.injected.pop(tid, None)
        self.wait_trap_exit.pop(tid, None)
        self.sb.ptraced.wait_pending.discard(tid)
        handoff = self.handoffs.pop(tid, None)
        if handoff is not None:
            os.close(handoff.fd)
        self.expected.pop(tid, None)
        self._born(tid)
        self.sb.newborn.discard(tid)
        self.rewritten.pop(tid, None)
        self.at_exit.pop(tid, None)
        self.frozen.pop(tid, None)
        self.sb.remove_thread(tid)
        if proc is not None and not proc.threads:
            self._tracer_gone(proc.tgid)
        watcher = self.watchers.pop(tid, None)
        if watcher is not None:
            watcher(exit_status(status))
        if tid == self.init_pid and self.status is None:
            self.status = exit_status(status)
            self.kill_all()

    def _resume(self, tid: int, sig: int = 0, request: int = PTRACE_CONT) -> None:
        if tid in self.injected or tid in self.wait_trap_exit:
            request = PTRACE_SYSCALL     # its injected call's stops are still to come
        elif request == PTRACE_CONT and tid in self.sb.ptraced.wait_pending:
            request = PTRACE_SYSCALL     # its next call installs the wait trap first
        traced = self.sb.ptraced.tracees.get(tid)
        if traced is not None:
            request = traced.real_request(request)
        if self.paused:
            self.frozen[tid] = (request, sig)
            return
        self._ptrace(request, tid, 0, sig)

    def _kill(self, tid: int) -> None:
        try:
            os.kill(tid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._ptrace(PTRACE_CONT, tid)

    @staticmethod
    def _ptrace(request: int, tid: int, addr: int = 0, data: int = 0) -> None:
        try:
            linux.ptrace(request, tid, addr, data)
        except OSError as exc:
            if exc.errno != errno.ESRCH:   # ESRCH: killed meanwhile; its exit follows
                raise

    # -- process tree -------------------------------------------------------

    def _adopt(self, tid: int, status: int) -> bool:
        """First stop of a tracee we have not registered: attach it to its
        creator if the creator's fork/clone event came first, else park it."""
        birth = self.expected.pop(tid, None)
        if birth is None:
            self.held[tid] = status
            return False
        self._register(tid, birth)
        return True

    def _on_new_child(self, parent_tid: int, child: int, event: int) -> None:
        """fork/vfork/clone: the new task gets its container PID now; the
        kernel wrote and returns its host TID, so the parent's copy
        (CLONE_PARENT_SETTID) is patched here and the parent's return value
        at its syscall exit."""
        guest = self.sb.pids.assign(child, self.sb.pids.requested(parent_tid))
        flags = parent_ptr = child_ptr = 0
        own_args = None
        try:
            regs = ptrace_getregs(parent_tid)
            rewritten = self.rewritten.get(parent_tid)
            # the call making the child, if brandpy rewrote it (an older
            # rewrite without an exit stop may still be recorded)
            if rewritten is not None and rewritten[:2] == (regs.orig_rax, args_of(regs)):
                own_args = rewritten[3]
            if regs.orig_rax == SYS_clone:   # (clone3 is made as clone: handlers/process.py)
                flags, parent_ptr, child_ptr = regs.rdi, regs.rdx, regs.r10
            if flags & CLONE_PARENT_SETTID and parent_ptr:
                linux.vm_write(parent_tid, parent_ptr, struct.pack("<I", guest))
            if not flags & CLONE_CHILD_SETTID:
                child_ptr = 0
        except (OSError, struct.error):
            child_ptr = 0
        if not self.sb.pids.kernel:
            self.fork_return[parent_tid] = guest
        if not (event == PTRACE_EVENT_CLONE and flags & CLONE_THREAD):
            self.sb.newborn.add(child)
        birth = Birth(self.sb.threads[parent_tid], parent_tid, event, child_ptr, own_args,
                      self.sb.own_filters.get(parent_tid, ()))
        if child in self.held:
            status = self.held.pop(child)
            self._register(child, birth)
            self._on_stop(child, status)
        else:
            self.expected[child] = birth

    def _register(self, tid: int, birth: Birth) -> None:
        """The creator may have exited meanwhile (a daemon's fork-and-exit):
        its Process record still says what the child inherits. A child of a
        call brandpy rewrote (clone3 made as clone, CLONE_UNTRACED dropped)
        starts with the registers the rewrite changed: it gets the caller's
        own back before its first instruction, as the caller does at its
        exit stop (glibc's clone3 child calls the function in rdx)."""
        creator, parent_tid, event, child_ptr, own_args, filters = birth
        self.sb.newborn.discard(tid)
        if filters:   # seccomp filters are inherited (unless a later TSYNC gave it more)
            self.sb.own_filters.setdefault(tid, filters)
        if own_args is not None:
            try:
                regs = ptrace_getregs(tid)
                for name, value in zip(ARG_REGS, own_args, strict=True):
                    setattr(regs, name, value)
                ptrace_setregs(tid, regs)
            except Exception:
                pass   # killed meanwhile
        if event == PTRACE_EVENT_CLONE and _tgid_of(tid) == creator.tgid:
            self.sb.add_thread(tid, creator)
        else:
            self.sb.add_thread(tid, creator.fork(tid))
        if parent_tid in self.sb.id_trapped:
            self.sb.id_trapped.add(tid)   # seccomp filters are inherited
        if child_ptr:   # CLONE_CHILD_SETTID: the child wrote its host TID
            try:
                linux.vm_write(tid, child_ptr, struct.pack("<I", self.sb.pids.to_guest(tid)))
            except OSError:
                pass
        self._born(tid)

    def _born(self, tid: int) -> None:
        """tid is registered (or gone before its first stop): the calls held
        for it are made again, once the stop in hand is handled."""
        for again in self.births.pop(tid, ()):
            self.call_soon(again)

    def _on_exec(self, tid: int) -> bool:
        """True if the execve waits for its exit stop."""
        former = linux.geteventmsg(tid)
        if former != tid and former in self.at_exit:
            self.at_exit[tid] = self.at_exit.pop(former)
        proc = self.sb.threads.get(former) or self.sb.threads[tid]
        # execve from a thread: the kernel gives the exec'ing thread the
        # leader's tid and the other threads are gone.
        if former != tid and former in self.sb.own_filters:
            self.sb.own_filters[tid] = self.sb.own_filters[former]
        traced = self.sb.ptraced.tracees.pop(former, None)
        if traced is not None:
            traced.tid = tid
            traced.message = self.sb.pids.to_guest(former)
            traced.loading = LOAD_OPEN if proc.exec_pending is not None and \
                proc.exec_pending.loader_args else LOAD_NONE
            self.sb.ptraced.tracees[tid] = traced
        for other in list(proc.threads):
            if other != tid:
                self.sb.remove_thread(other)
        self.sb.add_thread(tid, proc)
        if proc.exec_pending is not None:
            proc.image, proc.exec_pending = proc.exec_pending, None
            proc.exe = proc.image.exe
            if proc.image.cred is not None:
                proc.cred = proc.image.cred
        if not self.sb.fake_ids:   # execve may change capabilities (root's are raised)
            try:
                acting.learn(tid, proc.cred)
            except OSError:
                pass
        proc.dumpable = dumpable_after_exec(proc.cred)
        self.sb.changed(proc)   # (the native engine's copy of its exe, credentials, dumpable)
        if proc.tgid == self.init_pid and self.on_entry_exec is not None:
            entered, self.on_entry_exec = self.on_entry_exec, None
            entered()
        if self.replay is not None:
            try:
                self.replay.on_exec(tid, self.sb.pids.to_guest(tid), ptrace_getregs(tid).rsp)
            except Errno as exc:
                warn(f"brandpy: replay: {exc.why}")
        return tid in self.at_exit

    # -- syscalls -----------------------------------------------------------

    def _on_syscall(self, tid: int) -> None:
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return   # died under us; the exit report follows
        self._undo_rewrite_on_restart(tid, regs)
        call = Call(self.sb, self.sb.threads[tid], tid, regs)
        action = self._own_action(tid, call.nr, args_of(regs))
        shown = None
        if self.tracer is not None and _workload(call):
            name = self.effective.names.get(call.nr, str(call.nr))
            if self.tracer.wants(name, self.sb.pids.to_guest(call.proc.tgid)):
                shown = (format_call(call, name), time.time())
        injection = self.injector.decide(call.nr, self.sb.pids.to_guest(tid)) \
            if self.injector is not None else None
        if injection is not None and injection.rule.delay is not None:
            # hold this thread (not the supervisor) for the delay, then go on
            timer = threading.Timer(injection.rule.delay, self.call_soon,
                                    args=(lambda: self._complete(call, action, shown, None),))
            timer.daemon = True
            timer.start()
            return
        self._complete(call, action, shown, injection)

    def _own_action(self, tid: int, nr: int, args: tuple[int, ...]) -> int:
        """What brandpy's own filters say of the call: the container's, and
        the trap filters stacked on this thread (handlers/stacked.py, the
        identity one of handlers/ident.py). Never
        the trace data the kernel reports: filters the container stacks can
        set that."""
        action = self.effective.action(nr, args)
        stacked = self.sb.own_filters.get(tid)
        if stacked:
            action = combine([action, *(evaluate(prog, nr, args) for prog in stacked)])
        if tid in self.sb.id_trapped:
            from syscalls.handlers.ident import TRAPPED
            action = combine([action, TRAPPED.get(nr, ret_allow())])
        if nr in WAITS and self.sb.ptraced.waits_native and action in (ret_allow(), PASSED):
            # the wait trap's (stacked on an emulated tracer, inherited by
            # its children): the only filter of brandpy's that traps a wait
            # there, so the handler is asked even if the thread's record
            # missed it (a thread made as TSYNC installed it)
            action = ret_trace()
        return action

    def _complete(self, call: Call, action: int, shown: tuple[str, float] | None,
                  injection: Injection | None, again: bool = False) -> None:
        """Handle a trapped call and resume the thread. again: the call,
        held for a task's birth, is made again (it is counted once)."""
        tid, regs, nr = call.tid, call.regs, call.nr
        if tid not in self.sb.threads:
            return   # killed while its call was delayed
        original = (regs.orig_rax, args_of(regs))
        workload = _workload(call)
        if workload and not again:
            self.sb.stats.trapped(nr)
        started = time.perf_counter()
        outcome: int | Inject | None
        if injection is not None:
            outcome, how = injection.result, "injected"
            self.sb.stats.injected[nr] += 1
        else:
            try:
                outcome = self.dispatch(call, action)
            except Unborn as exc:
                if exc.tid in self.expected:   # its first stop is to come: the call waits
                    self.births.setdefault(exc.tid, []).append(
                        lambda: self._complete(call, action, shown, None, again=True))
                    return
                outcome = -errno.ESRCH
            except StrictViolation as exc:
                warn(f"brandpy: strict mode: the container called {exc}; stopping it")
                if self.status is None:
                    self.status = 128 + signal.SIGSYS
                self.kill_all()
                self._kill(tid)
                return
            how = self.effective.handling(action, outcome, call.changed)
        if workload:
            self.sb.stats.seconds[nr] += time.perf_counter() - started
            self.sb.stats.handled[how] += 1
        result = None
        if isinstance(outcome, Inject):
            self._hand_off(call, outcome)
            if shown is not None and self.tracer is not None:
                self._show_at_exit(call, self.tracer, shown, how)
        else:
            result = outcome
        if result is not None:
            regs.orig_rax = SKIP
            regs.rax = result & 0xFFFFFFFFFFFFFFFF
            self.sb.stats.emulated[nr] += 1
            if result < 0:
                self.sb.stats.errors[nr] += 1
            call.changed = True
            if shown is not None and self.tracer is not None:
                self.tracer.record(call, shown[0], result, how, shown[1])
        elif shown is not None and self.tracer is not None:
            if nr in NO_RETURN:
                self.tracer.record(call, shown[0], None, how, shown[1])
            else:
                self._show_at_exit(call, self.tracer, shown, how)
        traced = self.sb.ptraced.tracees.get(tid)
        if traced is not None and regs.orig_rax != original[0]:
            traced.shown_nr = original[0]   # what its tracer saw at the entry
        try:
            if call.changed:
                ptrace_setregs(tid, regs)
        except Exception:
            return
        if result is None and call.changed and tid not in self.handoffs:
            self.rewritten[tid] = (regs.orig_rax, args_of(regs), *original)
        if call.after_fn is not None and result is None:
            self.at_exit[tid] = call
            self._resume(tid, request=PTRACE_SYSCALL)
        else:
            self._resume(tid)

    def _hand_off(self, call: Call, fd: Inject) -> None:
        """A ptrace handler's fd for the tracee: the call becomes an openat
        the filter sends to user notification (the kernel runs the filter
        again on a call its tracer changed), answered by installing fd
        (native_engine: the HANDOFF mark in the unused fifth argument). The
        tracee cannot make that notification come from anyone but itself."""
        regs = call.regs
        regs.orig_rax, regs.rdi, regs.rsi, regs.r10 = SYS_openat, AT_FDCWD, 0, 0
        regs.rdx = os.O_CLOEXEC if fd.cloexec else 0
        regs.r8 = HANDOFF
        old = self.handoffs.pop(call.tid, None)
        if old is not None:
            os.close(old.fd)
        self.handoffs[call.tid] = fd
        call.changed = True

    def _close_in_tracee(self, tid: int, regs: Regs, close: CloseFd) -> None:
        """An exit stop's CloseFd: the tracee runs close(fd) (its syscall
        instruction again, with other registers), then returns close.result
        from the original call (_injected_stop)."""
        saved = type(regs).from_buffer_copy(regs)
        saved.rax = close.result & 0xFFFFFFFFFFFFFFFF
        regs.orig_rax = regs.rax = SYS_close
        regs.rdi = close.fd
        regs.rip -= 2
        try:
            ptrace_setregs(tid, regs)
        except Exception:
            return
        self.injected[tid] = saved
        self._resume(tid, request=PTRACE_SYSCALL)

    def _injected_stop(self, tid: int) -> None:
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return
        if regs.rax == ENTERING:
            self._resume(tid, request=PTRACE_SYSCALL)
            return
        try:
            ptrace_setregs(tid, self.injected.pop(tid))
        except Exception:
            return
        self._syscall_done(tid)

    def _show_at_exit(self, call: Call, tracer: Tracer, shown: tuple[str, float], how: str) -> None:
        """A traced call the kernel runs: its result is known at its exit."""
        handler_after = call.after_fn

        def after(c: Call, result: int) -> int | CloseFd | None:
            replaced = handler_after(c, result) if handler_after is not None else None
            shown_result = result if replaced is None else \
                replaced.result if isinstance(replaced, CloseFd) else replaced
            tracer.record(c, shown[0], shown_result, how, shown[1])
            return replaced

        call.after_fn = after

    def _restore_arguments(self, tid: int, regs: Regs, restarting: bool) -> bool:
        """At the exit stop of a call whose arguments were rewritten, the
        thread gets its own back: the kernel preserves argument registers,
        and compiled code reuses them after an inline syscall (glibc's
        clock_getcpuclockid stores the clock ID it passed). A call the
        kernel will restart gets its own number back too: the restart is
        the program's call, trapped and handled afresh (clone3 made as
        clone must not restart as clone with clone3's arguments)."""
        last = self.rewritten.pop(tid, None)
        if last is None:
            return False
        _new_nr, new_args, old_nr, old_args = last
        if args_of(regs) != new_args:
            return False          # an after handler set them (a rewound call)
        for name, value in zip(ARG_REGS, old_args, strict=True):
            setattr(regs, name, value)
        if restarting:
            regs.orig_rax = old_nr
        return True

    def _undo_rewrite_on_restart(self, tid: int, regs: Regs) -> None:
        """A call whose arguments we rewrote can be interrupted by a signal
        and restarted by the kernel (ERESTARTSYS...) with the rewritten
        registers, and a signal handler may have overwritten the scratch
        memory they point to in between. A stop that repeats the rewritten
        call exactly is such a restart: give it back its own arguments and
        handle it afresh."""
        last = self.rewritten.pop(tid, None)
        if last is None:
            return
        new_nr, new_args, old_nr, old_args = last
        if regs.orig_rax == new_nr and args_of(regs) == new_args:
            regs.orig_rax = old_nr
            for name, value in zip(ARG_REGS, old_args, strict=True):
                setattr(regs, name, value)

    def dispatch(self, call: Call, action: int) -> int | Inject | None:
        try:
            return self.effective.dispatch(call, action)
        except (Errno, StrictViolation, Unborn):
            raise
        except Exception:
            if self.debug:
                raise
            name = self.effective.names.get(call.nr, str(call.nr))
            if name not in self._reported:
                self._reported.add(name)
                warn(f"brandpy: internal error in the {name} handler "
                     f"(the call returns EIO; please report it):\n{traceback.format_exc()}")
            return -errno.EIO

    def _on_syscall_exit(self, tid: int) -> None:
        if tid in self.injected:
            self._injected_stop(tid)
            return
        child = self.fork_return.pop(tid, None)
        call = self.at_exit.pop(tid, None)
        if child is None and call is None:
            self._syscall_done(tid)
            return
        if call is None:   # fork's own second stop: its return value is the host PID
            self.sb.stats.event_stops += 1
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return
        changed = False
        if child is not None and regs.rax < 1 << 63:   # a failed fork keeps its -errno
            regs.rax = child
            changed = True
        result = regs.rax - (1 << 64) if regs.rax >= 1 << 63 else regs.rax
        if call is not None and not -516 <= result <= -512:   # ERESTART*: it will restart
            self.sb.stats.exit_stop(call.nr)
            call.regs = regs
            try:
                new = call.after_fn(call, result) if call.after_fn else None
            except Errno as exc:
                new = -exc.errno
            if isinstance(new, CloseFd):
                self._close_in_tracee(tid, regs, new)
                return
            if new is not None:
                regs.rax = new & 0xFFFFFFFFFFFFFFFF
                changed = True
        if call is not None and not (call.nr in (SYS_execve, SYS_execveat) and result == 0):
            # (a new program has its own)
            changed |= self._restore_arguments(tid, regs, -516 <= result <= -512)
        if changed:
            try:
                ptrace_setregs(tid, regs)
            except Exception:
                return
        self._syscall_done(tid)


def _workload(call: Call) -> bool:
    """The spawned child's own calls before its first execve (sending the
    seccomp listener...) are brandpy's, not the workload's: they are neither
    traced nor counted."""
    return call.proc.image is not None or call.nr in (SYS_execve, SYS_execveat)


def _tgid_of(tid: int) -> int:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return tid
