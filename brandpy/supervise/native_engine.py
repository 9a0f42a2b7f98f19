"""The supervisor's event loop, in C (native/loop.c), for both engines: it
waits for ptrace stops and seccomp user notifications at once.

ptrace stops go to the Supervisor's Python code (one `handle()` per waitpid
result). Notifications (the rows the syscall table marks `perform`: calls
the supervisor performs for the tracee) are answered in C
(native/notify.c) by the native engine where it can; the Python engine,
and every engine while a trace or fault injection watches a call, answers
them in Python (syscalls/handlers/, the reference). The C side reads a
mirror of the sandbox (mounts, threads, credentials) that this class keeps
current.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from ptrace.binding.func import ptrace_getregs, ptrace_setregs

from brandpy._native import ffi, lib
from brandpy.runtime.acting import acts_as_supervisor
from brandpy.runtime.call import HANDOFF, Call, Inject, NotifCall
from brandpy.runtime.devices import GIVEN
from brandpy.runtime.errors import Errno, warn
from brandpy.runtime.inject import Injection
from brandpy.runtime.linux import kernel_release
from brandpy.runtime.process import Process
from brandpy.runtime.trace import format_call
from syscalls.handlers import deferred

from .supervisor import Supervisor, SYS_openat, _workload

if TYPE_CHECKING:
    from brandpy.runtime.mounts import MountTable
    from brandpy.runtime.sandbox import Sandbox
    from syscalls.effective import Effective

# linux/seccomp.h
NOTIF_SEND = 0xC0182101           # SECCOMP_IOWR(1, struct seccomp_notif_resp)
NOTIF_ADDFD = 0x40182103          # SECCOMP_IOW(3, struct seccomp_notif_addfd)
ADDFD_FLAG_SEND = 1 << 1
# what a syscall interrupted by a signal returns, as the signal-delivery stop sees it
ERESTARTSYS = (1 << 64) - 512
ERESTARTNOINTR = (1 << 64) - 513
MOUNT_KINDS = {"rootfs": lib.BP_MOUNT_ROOTFS, "proc": lib.BP_MOUNT_PROC, "pts": lib.BP_MOUNT_PTS,
               **{kind: lib.BP_MOUNT_DEVICE for kind in GIVEN}}

_active = threading.local()       # the supervisor whose loop runs on this thread


def block_sigchld() -> None:
    """The native loop learns of ptrace stops from SIGCHLD through a
    signalfd, which sees the signal only if no thread of the process
    accepts it: a supervising process (brandpy run, a shim) calls this
    before starting other threads (threads inherit the mask). Otherwise the
    loop still works, polling every 10 ms. Processes it starts other than
    through spawn() inherit the blocked SIGCHLD: unblock it for them."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})


def listeners_supported() -> bool:
    """seccomp user notification exists (Linux 5.0): every container
    process gets a listener then (Supervisor.add_listener says why)."""
    return kernel_release() >= (5, 0)


def notifications_supported() -> bool:
    """User notification with fd injection answered atomically
    (SECCOMP_ADDFD_FLAG_SEND) needs Linux 5.14; older kernels run
    ptrace-only."""
    return kernel_release() >= (5, 14)


class NativeSupervisor(Supervisor):
    def __init__(self, sandbox: Sandbox, effective: Effective, debug: bool = False,
                 fast_path: bool = True) -> None:
        """fast_path: the C handlers answer what they can (the native
        engine); off, Python answers every notification."""
        super().__init__(sandbox, effective, debug)
        self.state = lib.bp_state_new()
        self.loop = lib.bp_loop_new(self.state)
        if self.state == ffi.NULL or self.loop == ffi.NULL:
            raise MemoryError("native engine: cannot allocate its state")
        self.mounts_changed(sandbox.mounts)
        for number, (fd, _) in sandbox.ptys.held.items():
            self.pty(number, fd)
        lib.bp_state_set_identity(self.state, int(sandbox.fake_ids), os.geteuid(),
                                  os.getegid())
        self.uts_changed()
        if not fast_path:
            self.watch(None)
        self.watch(effective.performed_raw)   # a test's broken calls are Python's
        sandbox.mirror = self

    def watch(self, nrs: frozenset[int] | None) -> None:
        """Calls a trace or fault injection must see: answered in Python
        (None: every call)."""
        for nr in range(512) if nrs is None else nrs:
            lib.bp_state_python_only(self.state, nr, 1)

    # -- the mirror the C handlers read ----------------------------------------------

    def thread(self, tid: int, proc: Process) -> None:
        c = proc.cred
        flags = 0
        if acts_as_supervisor(c):
            flags |= lib.BP_THREAD_ROOT
        if acts_as_supervisor(c.for_access()):
            flags |= lib.BP_THREAD_ACCESS_ROOT
        if proc.root != b"/" or proc.mounts is not None:   # Python resolves for it
            flags |= lib.BP_THREAD_CHROOT
        if proc.parent is None:
            flags |= lib.BP_THREAD_TOPLEVEL
        if not proc.dumpable:
            flags |= lib.BP_THREAD_UNDUMPABLE
        if proc.uts is not None:
            flags |= lib.BP_THREAD_OWN_UTS
        pids = self.sb.pids
        lib.bp_state_set_thread(self.state, tid, proc.tgid, pids.assign(tid),
                                pids.to_guest(proc.tgid) or pids.assign(proc.tgid), flags)
        if lib.bp_state_set_program(self.state, tid, proc.exe or ffi.NULL, proc.comm,
                                    proc.kernel_comm) < 0:
            raise MemoryError("native engine: cannot allocate its copy of a program's path")

    def uts_changed(self) -> None:
        sb = self.sb
        lib.bp_state_set_uts(self.state, sb.hostname.encode(), sb.domainname.encode(),
                             sb.release.encode())

    def gone(self, tid: int) -> None:
        lib.bp_state_del_thread(self.state, tid)

    def pty(self, number: int, fd: int) -> None:
        if lib.bp_state_set_pty(self.state, number, fd) < 0:
            raise MemoryError("native engine: cannot allocate its view of /dev/pts")

    def mounts_changed(self, mounts: MountTable) -> None:
        lib.bp_state_clear_mounts(self.state)
        for m in mounts.mounts:
            # C walks from the same root descriptors (the table owns them);
            # it leaves /proc and the engine's files reopened at each use
            # to Python
            root, is_dir = -1, False
            try:
                if m.kind != "proc":
                    root, is_dir, owned = mounts.root_fd(m)
                    if owned:
                        os.close(root)
                        root = -1
            except OSError:
                pass
            rc = lib.bp_state_add_mount(self.state, m.guest, m.host, int(m.readonly),
                                        MOUNT_KINDS.get(m.kind, lib.BP_MOUNT_OTHER), root,
                                        int(is_dir))
            if rc < 0:
                raise OSError(-rc, f"native engine: mount table too large ({m.guest!r})")

    def add_listener(self, sock: int) -> None:
        """The socket a new process sends its seccomp listener over; the
        loop receives and serves it. Every process gets one
        (Container._spawn): while the chain has a listener the kernel
        refuses the container one of its own (EBUSY), which could let calls
        brandpy traps run untranslated (its USER_NOTIF outranks TRACE, and
        its answer may be "continue")."""
        rc = lib.bp_loop_add_listener_socket(self.loop, sock)
        if rc < 0:
            os.close(sock)
            raise OSError(-rc, "native engine: too many seccomp listeners")

    # -- running ------------------------------------------------------------------------

    def run(self) -> int:
        block_sigchld()
        _active.sup = self
        # a signal for a Python handler (brandpy run forwards SIGTERM) wakes
        # the loop, which runs Python for it (only the main thread may ask)
        main = threading.current_thread() is threading.main_thread()
        previous = signal.set_wakeup_fd(self.loop.wake_w, warn_on_full_buffer=False) \
            if main else -1
        try:
            if self.sb.mount_ns >= 0:   # C answers inside the container's (runtime/acting.py)
                rc = lib.bp_loop_set_walls(self.loop, self.sb.mount_ns, self.sb.home_ns)
                if rc < 0:
                    raise OSError(-rc, "native engine: cannot act in the container's "
                                  "mount namespace")
            rc = lib.bp_loop_run(self.loop)
            if rc < 0:
                raise OSError(-rc, "native engine: event loop failed")
            return self._finish()
        finally:
            if main:
                signal.set_wakeup_fd(previous)
            _active.sup = None
            self._collect_stats()
            self.sb.mirror = None
            lib.bp_loop_free(self.loop)
            lib.bp_state_free(self.state)

    def _wake(self) -> None:
        lib.bp_loop_wake(self.loop)

    def _collect_stats(self) -> None:
        stats = self.sb.stats
        for nr in range(512):
            answered = lib.bp_state_calls(self.state, nr)
            fallback = lib.bp_state_fallbacks(self.state, nr)
            if answered or fallback:
                stats.notified[nr] += answered + fallback
                stats.notified_python[nr] += fallback

    # -- signals -----------------------------------------------------------------------

    def _on_signal(self, tid: int, sig: int) -> None:
        self._restart_notified(tid)
        super()._on_signal(tid, sig)

    def _restart_notified(self, tid: int) -> None:
        """A signal that comes while a thread waits for its notification's
        answer ends the wait with ERESTARTSYS, which a handler without
        SA_RESTART turns into EINTR: getpid() would return -4 (then kill()
        of that gets ESRCH), a stat or open of a regular file EINTR, where
        Linux never fails them so. The call was not answered, so it is
        restarted whatever the handler's flags. A fifo open still blocking
        in the supervisor is interruptible natively too: it keeps EINTR."""
        try:
            regs = ptrace_getregs(tid)
        except Exception:
            return
        nr = regs.orig_rax
        if regs.rax != ERESTARTSYS or not 0 <= nr < len(self.effective.decisions) or \
                self.effective.decisions[nr].notify is None or deferred.waiting(tid):
            return
        regs.rax = ERESTARTNOINTR
        try:
            ptrace_setregs(tid, regs)
        except Exception:
            pass   # gone meanwhile

    # -- notifications the C handlers left to Python -------------------------------------

    def notify(self, n: Any) -> None:    # cffi's struct bp_notif *
        tid = n.pid
        proc = self.sb.threads.get(tid)
        if proc is None:
            return   # not (yet) a container thread: it is gone or racing its birth
        call = NotifCall(self.sb, proc, tid, n.nr, tuple(n.args), n.id, n.listener)
        if n.nr == SYS_openat and n.args[4] == HANDOFF and tid in self.handoffs:
            fd = self.handoffs[tid]
            if answer(call, fd, keep=True) is not None:
                del self.handoffs[tid]     # else interrupted: kept for the restart
                os.close(fd.fd)
            return
        shown = None
        workload = _workload(call)
        if self.tracer is not None and workload:
            name = self.effective.names.get(call.nr, str(call.nr))
            if self.tracer.wants(name, self.sb.pids.to_guest(proc.tgid)):
                shown = (format_call(call, name), time.time())
        injection = self.injector.decide(call.nr, self.sb.pids.to_guest(tid)) \
            if self.injector is not None and workload else None
        if injection is not None and injection.rule.delay is not None:
            # the tracee waits for its answer; the supervisor goes on
            timer = threading.Timer(injection.rule.delay, self.call_soon,
                                    args=(lambda: self._notified(call, workload, shown, None),))
            timer.daemon = True
            timer.start()
            return
        self._notified(call, workload, shown, injection)

    def _notified(self, call: NotifCall, workload: bool, shown: tuple[str, float] | None,
                  injection: Injection | None) -> None:
        started = time.perf_counter()
        if injection is not None:
            result: int | Inject | None = injection.result
            how = "injected"
            self.sb.stats.injected[call.nr] += 1
        else:
            result, how = self._perform(call), "performed"
        if workload:
            self.sb.stats.seconds[call.nr] += time.perf_counter() - started
            self.sb.stats.handled[how] += 1
        if result is None:
            return                  # answered later (a fifo's open)
        delivered = answer(call, result)
        if delivered is None and isinstance(result, Inject):
            os.close(result.fd)
        if shown is not None and self.tracer is not None:
            shown_result = delivered if delivered is not None else \
                result if isinstance(result, int) else 0
            self.tracer.record(call, shown[0], shown_result, how, shown[1])

    def _perform(self, call: NotifCall) -> int | Inject | None:
        try:
            return self.effective.notify(call)
        except Errno as exc:
            return -exc.errno
        except Exception:
            if self.debug:
                raise
            warn(f"brandpy: internal error in the notified {call.nr} handler (the call "
                 f"returns EIO; please report it):\n{traceback.format_exc()}")
            return -errno.EIO


def answer(call: Call, result: int | Inject, keep: bool = False) -> int | None:
    """Send a notified call's result (or install the fd it opened): what the
    call returned (the tracee's new fd for an Inject), None when the tracee
    is gone or was interrupted by a signal meanwhile (an Inject's fd is then
    kept open for the caller to retry with). keep: the caller closes an
    Inject's fd."""
    if not isinstance(call, NotifCall):
        raise TypeError(f"syscall {call.nr} was not notified: it has no answer to send")
    try:
        if isinstance(result, Inject):
            add = bytearray(struct.pack("<QIIII", call.id, ADDFD_FLAG_SEND, result.fd, 0,
                                        os.O_CLOEXEC if result.cloexec else 0))
            fd = int(fcntl.ioctl(call.listener, NOTIF_ADDFD, add, True))
            if not keep:
                os.close(result.fd)
            return fd
        value, error = (0, result) if result < 0 else (result, 0)
        fcntl.ioctl(call.listener, NOTIF_SEND, struct.pack("<QqiI", call.id, value, error, 0))
        return result
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            if isinstance(result, Inject) and not keep:
                os.close(result.fd)
            raise
        return None


deferred.answer = answer


@ffi.def_extern()
def bp_py_wait(tid: int, status: int) -> int:
    sup = _active.sup
    try:
        sup.handle(tid, status)
        return 0
    except BaseException:   # never unwind through C: stop the loop cleanly
        warn(traceback.format_exc())
        return -1


@ffi.def_extern()
def bp_py_notify(n: Any) -> None:
    try:
        _active.sup.notify(n)
    except BaseException:
        warn(traceback.format_exc())


@ffi.def_extern()
def bp_py_dumpable(tid: int, dumpable: int) -> None:
    """C answered PR_SET_DUMPABLE (and set its copy for the whole process)."""
    try:
        proc = _active.sup.sb.threads.get(tid)
        if proc is not None:
            proc.dumpable = bool(dumpable)
    except BaseException:
        warn(traceback.format_exc())


@ffi.def_extern()
def bp_py_wake() -> None:
    try:
        _active.sup._drain_requests()
    except BaseException:
        warn(traceback.format_exc())
