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
import sys
import threading
import traceback
from collections import deque
from typing import TYPE_CHECKING, Callable

from ptrace.binding.func import ptrace_getregs, ptrace_setregs

from . import linux
from .call import Call
from .linux import (PTRACE_CONT, PTRACE_EVENT_CLONE, PTRACE_EVENT_EXEC, PTRACE_EVENT_FORK,
                    PTRACE_EVENT_SECCOMP, PTRACE_EVENT_STOP, PTRACE_EVENT_VFORK,
                    PTRACE_INTERRUPT, PTRACE_LISTEN, PTRACE_SYSCALL, STOP_SIGNALS, WALL)
from .process import Errno, Process

if TYPE_CHECKING:
    from syscalls.table import Table

    from .sandbox import Sandbox

SKIP = 0xFFFFFFFFFFFFFFFF   # orig_rax = -1: the kernel skips the call
SYSGOOD_TRAP = signal.SIGTRAP | 0x80


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Supervisor:
    def __init__(self, sandbox: Sandbox, table: Table, debug: bool = False) -> None:
        self.sb = sandbox
        self.table = table
        self.debug = debug
        self.init_pid = 0
        self.status: int | None = None
        self.terminating = False
        self.expected: dict[int, tuple[Process, int]] = {}   # child tid -> (creator, event)
        self.held: dict[int, int] = {}                       # new tracee -> its first stop status
        self.at_exit: dict[int, Call] = {}                   # tids stopped for syscall exit
        self.paused = False
        self.frozen: dict[int, tuple[int, int]] = {}         # paused tid -> its pending resume
        self.watchers: dict[int, Callable[[int], None]] = {}  # tgid -> called with its exit status
        self._requests: deque[Callable[[], None]] = deque()
        self._wakers: set[int] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._reported: set[str] = set()

    # -- running ------------------------------------------------------------

    def adopt(self, pid: int, init: bool = False,
              on_exit: Callable[[int], None] | None = None) -> None:
        """Register a process just spawned (seized) by this thread: the
        entrypoint, or a process `docker exec` starts in the container."""
        if init:
            self.init_pid = self.sb.init_pid = pid
        self.sb.add_thread(pid, Process(tgid=pid))
        if on_exit is not None:
            self.watchers[pid] = on_exit

    def run(self) -> int:
        """Supervise the container until the entrypoint and every other
        process are gone; return the entrypoint's exit status."""
        while True:
            self._drain_requests()
            try:
                tid, status = os.waitpid(-1, WALL)
            except ChildProcessError:
                break
            if tid in self._wakers:
                self._wakers.discard(tid)
            elif os.WIFSTOPPED(status):
                self._on_stop(tid, status)
            else:
                self._on_exit(tid, status)
        with self._lock:
            self._closed = True
        self._drain_requests()
        return self.status if self.status is not None else 128 + signal.SIGKILL

    def call_soon(self, fn: Callable[[], None]) -> bool:
        """Run fn on the tracer thread (ptrace requests must come from it),
        from any thread. The loop sleeps in waitpid, so it is woken by a
        short-lived child: control requests are rare, and the hot path keeps
        its single blocking syscall. False once the container is gone."""
        with self._lock:
            if self._closed:
                return False
            self._requests.append(fn)
            self._wakers.add(os.posix_spawn("/bin/true", ["true"], {}))
        return True

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
        """A signal brandpy itself received goes to the entrypoint."""
        if self.init_pid and self.status is None:
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
        if sig == signal.SIGTRAP and event == PTRACE_EVENT_SECCOMP:
            self._on_syscall(tid)
        elif sig == SYSGOOD_TRAP:
            self._on_syscall_exit(tid)
        elif sig == signal.SIGTRAP and event in (PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK,
                                                 PTRACE_EVENT_CLONE):
            self.sb.stats.event_stops += 1
            self._on_new_child(tid, linux.geteventmsg(tid), event)
            self._resume(tid)
        elif sig == signal.SIGTRAP and event == PTRACE_EVENT_EXEC:
            self.sb.stats.event_stops += 1
            self._on_exec(tid)
            self._resume(tid)
        elif event == PTRACE_EVENT_STOP:
            self.sb.stats.event_stops += 1
            if sig in STOP_SIGNALS:
                self._ptrace(PTRACE_LISTEN, tid)    # group-stop: stay stopped, see SIGCONT
            else:
                self._resume(tid)
        else:
            self.sb.stats.event_stops += 1
            self._resume(tid, sig)                 # signal-delivery-stop: deliver it

    def _on_exit(self, tid: int, status: int) -> None:
        self.held.pop(tid, None)
        self.at_exit.pop(tid, None)
        self.frozen.pop(tid, None)
        self.sb.remove_thread(tid)
        watcher = self.watchers.pop(tid, None)
        if watcher is not None:
            watcher(exit_status(status))
        if tid == self.init_pid and self.status is None:
            self.status = exit_status(status)
            self.kill_all()

    def _resume(self, tid: int, sig: int = 0, request: int = PTRACE_CONT) -> None:
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
        creator = self.expected.pop(tid, None)
        if creator is None:
            self.held[tid] = status
            return False
        self._register(tid, *creator)
        return True

    def _on_new_child(self, parent_tid: int, child: int, event: int) -> None:
        creator = self.sb.threads[parent_tid]
        if child in self.held:
            status = self.held.pop(child)
            self._register(child, creator, event)
            self._on_stop(child, status)
        else:
            self.expected[child] = (creator, event)

    def _register(self, tid: int, creator: Process, event: int) -> None:
        if event == PTRACE_EVENT_CLONE and _tgid_of(tid) == creator.tgid:
            self.sb.add_thread(tid, creator)
        else:
            self.sb.add_thread(tid, creator.fork(tid))

    def _on_exec(self, tid: int) -> None:
        former = linux.geteventmsg(tid)
        proc = self.sb.threads.get(former) or self.sb.threads[tid]
        # execve from a thread: the kernel gives the exec'ing thread the
        # leader's tid and the other threads are gone.
        for other in list(proc.threads):
            if other != tid:
                self.sb.remove_thread(other)
        self.sb.add_thread(tid, proc)
        if proc.exec_pending is not None:
            proc.exe, proc.exec_pending = proc.exec_pending, None

    # -- syscalls -----------------------------------------------------------

    def _on_syscall(self, tid: int) -> None:
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return   # died under us; the exit report follows
        proc = self.sb.threads[tid]
        call = Call(self.sb, proc, tid, regs)
        nr = call.nr
        self.sb.stats.trapped(nr)
        result = self.dispatch(call)
        if result is not None:
            regs.orig_rax = SKIP
            regs.rax = result & 0xFFFFFFFFFFFFFFFF
            self.sb.stats.emulated[nr] += 1
            if result < 0:
                self.sb.stats.errors[nr] += 1
            call.changed = True
        try:
            if call.changed:
                ptrace_setregs(tid, regs)
        except Exception:
            return
        if call.after_fn is not None and result is None:
            self.at_exit[tid] = call
            self._resume(tid, request=PTRACE_SYSCALL)
        else:
            self._resume(tid)

    def dispatch(self, call: Call) -> int | None:
        row = self.table.rows[call.nr] if 0 <= call.nr < len(self.table.rows) else None
        if row is None:
            return -errno.ENOSYS
        if row.handler is None:
            return None   # trapped by a filter the tracee stacked itself: run it
        try:
            return row.handler(call)
        except Errno as exc:
            return -exc.errno
        except Exception:
            if self.debug:
                raise
            if row.name not in self._reported:
                self._reported.add(row.name)
                print(f"brandpy: internal error in the {row.name} handler "
                      f"(the call returns EIO; please report it):\n{traceback.format_exc()}",
                      file=sys.stderr)
            return -errno.EIO

    def _on_syscall_exit(self, tid: int) -> None:
        call = self.at_exit.pop(tid, None)
        if call is None:
            self._resume(tid)
            return
        self.sb.stats.exit_stop(call.nr)
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return
        call.regs = regs
        result = regs.rax - (1 << 64) if regs.rax >= 1 << 63 else regs.rax
        try:
            new = call.after_fn(call, result) if call.after_fn else None
        except Errno as exc:
            new = -exc.errno
        if new is not None:
            regs.rax = new & 0xFFFFFFFFFFFFFFFF
            call.changed = True
        if call.changed:
            try:
                ptrace_setregs(tid, regs)
            except Exception:
                return
        self._resume(tid)


def _tgid_of(tid: int) -> int:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return tid
