"""The native engine: the supervisor loop in C (native/loop.c), with the hot
syscalls answered through seccomp user notification in C (native/notify.c).

Everything that is not hot stays Python: ptrace stops are handed to the
same Supervisor code the Python engine runs (one `handle()` per waitpid
result), and notifications the C handlers leave alone are performed by
syscalls/handlers/perform.py. The C side reads a mirror of the sandbox
(mounts, threads, credentials) that this class keeps current.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import threading
import traceback
from typing import TYPE_CHECKING, Any

from ptrace.binding.func import ptrace_getregs, ptrace_setregs

from brandpy._native import ffi, lib
from brandpy.runtime.call import Call, Inject, NotifCall
from brandpy.runtime.errors import Errno, warn
from brandpy.runtime.linux import kernel_release
from brandpy.runtime.process import Process
from syscalls.handlers import perform

from .supervisor import Supervisor

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
MOUNT_KINDS = {"rootfs": lib.BP_MOUNT_ROOTFS, "proc": lib.BP_MOUNT_PROC}

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
    def __init__(self, sandbox: Sandbox, effective: Effective, debug: bool = False) -> None:
        super().__init__(sandbox, effective, debug)
        self.state = lib.bp_state_new()
        self.loop = lib.bp_loop_new(self.state)
        if self.state == ffi.NULL or self.loop == ffi.NULL:
            raise MemoryError("native engine: cannot allocate its state")
        self.mounts_changed(sandbox.mounts)
        lib.bp_state_set_identity(self.state, int(sandbox.fake_ids), os.geteuid(),
                                  os.getegid())
        sandbox.mirror = self

    # -- the mirror the C handlers read ----------------------------------------------

    def thread(self, tid: int, proc: Process) -> None:
        c = proc.cred
        flags = 0
        if c.fsuid == 0 and c.capable("CAP_DAC_OVERRIDE"):
            flags |= lib.BP_THREAD_ROOT
        if proc.root != b"/":
            flags |= lib.BP_THREAD_CHROOT
        if proc.parent is None:
            flags |= lib.BP_THREAD_TOPLEVEL
        pids = self.sb.pids
        lib.bp_state_set_thread(self.state, tid, proc.tgid, pids.assign(tid),
                                pids.to_guest(proc.tgid) or pids.assign(proc.tgid), flags,
                                c.fsuid, c.fsgid)

    def gone(self, tid: int) -> None:
        lib.bp_state_del_thread(self.state, tid)

    def mounts_changed(self, mounts: MountTable) -> None:
        lib.bp_state_clear_mounts(self.state)
        for m in mounts.mounts:
            rc = lib.bp_state_add_mount(self.state, m.guest, m.host, int(m.readonly),
                                        MOUNT_KINDS.get(m.kind, lib.BP_MOUNT_OTHER))
            if rc < 0:
                raise OSError(-rc, f"native engine: mount table too large ({m.guest!r})")

    def add_listener(self, sock: int) -> None:
        """The loop receives the listener and serves it (trace mode makes
        no notification, but the listener still keeps the container from
        adding its own: see Supervisor.add_listener)."""
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
                self.effective.decisions[nr].notify is None or perform.blocking_open(tid):
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
        try:
            result = self.effective.notify(call)
        except Errno as exc:
            result = -exc.errno
        except Exception:
            if self.debug:
                raise
            warn(f"brandpy: internal error in the notified {call.nr} handler (the call "
                 f"returns EIO; please report it):\n{traceback.format_exc()}")
            result = -errno.EIO
        if result is not None and not answer(call, result) and isinstance(result, Inject):
            os.close(result.fd)


def answer(call: Call, result: int | Inject) -> bool:
    """Send a notified call's result (or install the fd it opened). False
    when the tracee is gone or was interrupted by a signal meanwhile (an
    Inject's fd is then kept open for the caller to retry with)."""
    if not isinstance(call, NotifCall):
        raise TypeError(f"syscall {call.nr} was not notified: it has no answer to send")
    try:
        if isinstance(result, Inject):
            fcntl.ioctl(call.listener, NOTIF_ADDFD, struct.pack(
                "<QIIII", call.id, ADDFD_FLAG_SEND, result.fd, 0,
                os.O_CLOEXEC if result.cloexec else 0))
            os.close(result.fd)
            return True
        value, error = (0, result) if result < 0 else (result, 0)
        fcntl.ioctl(call.listener, NOTIF_SEND, struct.pack("<QqiI", call.id, value, error, 0))
        return True
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            if isinstance(result, Inject):
                os.close(result.fd)
            raise
        return False


perform.deferred_answer = answer


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
def bp_py_wake() -> None:
    try:
        _active.sup._drain_requests()
    except BaseException:
        warn(traceback.format_exc())
