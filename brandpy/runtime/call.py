"""One trapped system call, as a handler sees it.

A handler receives a `Call` at the syscall's seccomp stop and returns
either an int (the call is skipped and that value returned: emulation,
one stop) or None (the call runs, with whatever arguments the handler
rewrote: one stop). A handler that truly needs the kernel's result asks
for the exit stop with `call.after(fn)`; fn(call, result) may return a
replacement result.

Both engines hand handlers the same object: the registers are a
python-ptrace `user_regs_struct`, owned by Python in the Python engine and
by the C loop (wrapped in place) in the native engine.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .acting import tracee_memory
from .errors import Errno
from .linux import vm_read, vm_write
from .process import Process

if TYPE_CHECKING:
    from .sandbox import Sandbox

ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
RED_ZONE = 128
PAGE = 4096
PATH_MAX = 4096

# marks the openat a ptrace stop hands to user notification (Supervisor._hand_off)
HANDOFF = 0x2179706472616E62   # "brandpy!"

AfterFn = Callable[["Call", int], "int | CloseFd | None"]
# python-ptrace's user_regs_struct, a ctypes Structure it ships no types for.
Regs = Any


def args_of(regs: Regs) -> tuple[int, ...]:
    return tuple(getattr(regs, r) for r in ARG_REGS)


class Call:
    __slots__ = ("sb", "proc", "tid", "regs", "nr", "changed", "after_fn", "_scratch",
                 "tag")

    def __init__(self, sb: Sandbox, proc: Process, tid: int, regs: Regs) -> None:
        self.sb = sb
        self.proc = proc
        self.tid = tid
        self.regs = regs
        self.nr: int = regs.orig_rax
        self.changed = False
        self.after_fn: AfterFn | None = None
        self._scratch: int = regs.rsp - RED_ZONE
        self.tag: object = None   # what the handler did, for traces and the ledger

    # -- arguments --------------------------------------------------------

    def arg(self, i: int) -> int:
        value: int = getattr(self.regs, ARG_REGS[i])
        return value

    def iarg(self, i: int) -> int:
        """Argument i as a C int (the upper 32 bits of an int argument are
        unspecified in the ABI)."""
        v: int = getattr(self.regs, ARG_REGS[i]) & 0xFFFFFFFF
        return v - (1 << 32) if v & 0x80000000 else v

    def set_arg(self, i: int, value: int) -> None:
        setattr(self.regs, ARG_REGS[i], value & 0xFFFFFFFFFFFFFFFF)
        self.changed = True

    def set_nr(self, nr: int) -> None:
        self.regs.orig_rax = nr
        self.changed = True

    def after(self, fn: AfterFn) -> None:
        """Ask for the syscall-exit stop (a second stop: use only when the
        kernel's result must be rewritten)."""
        self.after_fn = fn

    # -- tracee memory ----------------------------------------------------

    def read(self, addr: int, size: int) -> bytes:
        if size == 0:
            return b""
        try:
            with tracee_memory():
                data = vm_read(self.tid, addr, size)
        except OSError:
            raise Errno(errno.EFAULT) from None
        if len(data) != size:
            raise Errno(errno.EFAULT)
        return data

    def read_str(self, addr: int, limit: int = PATH_MAX) -> bytes:
        """A NUL-terminated string; EFAULT if unreadable, ENAMETOOLONG past limit."""
        if addr == 0:
            raise Errno(errno.EFAULT)
        out = b""
        while len(out) < limit:
            chunk = min(PAGE - addr % PAGE, limit - len(out))
            try:
                with tracee_memory():
                    data = vm_read(self.tid, addr, chunk)
            except OSError:
                raise Errno(errno.EFAULT) from None
            if not data:
                raise Errno(errno.EFAULT)
            nul = data.find(b"\0")
            if nul >= 0:
                return out + data[:nul]
            out += data
            addr += len(data)
        raise Errno(errno.ENAMETOOLONG)

    def read_ptrs(self, addr: int, limit: int = 1 << 20) -> list[int]:
        """A NULL-terminated array of pointers (argv, envp)."""
        ptrs: list[int] = []
        while len(ptrs) < limit:
            chunk = min(PAGE - addr % PAGE, 512 * 8)
            data = self.read(addr, chunk - chunk % 8 or 8)
            for i in range(0, len(data), 8):
                p = int.from_bytes(data[i:i + 8], "little")
                if p == 0:
                    return ptrs
                ptrs.append(p)
            addr += len(data)
        raise Errno(errno.E2BIG)

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        try:
            with tracee_memory():
                n = vm_write(self.tid, addr, data)
        except OSError:
            raise Errno(errno.EFAULT) from None
        if n != len(data):
            raise Errno(errno.EFAULT)

    def push(self, data: bytes) -> int:
        """Copy data into scratch memory below the tracee's stack red zone
        and return its address. The kernel copies syscall arguments on entry,
        before the tracee can run again, so the area is free once we resume."""
        self._scratch = (self._scratch - len(data)) & ~15
        try:
            self.write(self._scratch, data)
        except Errno:
            raise Errno(errno.ENOMEM, "no scratch space below the tracee's stack") from None
        return self._scratch

    def push_str(self, s: bytes) -> int:
        return self.push(s + b"\0")


class NotifCall(Call):
    """A call answered through seccomp user notification: the tracee is
    blocked in the kernel, not stopped, so its registers cannot be
    rewritten; handlers perform the call and return its result (or an
    `Inject` of an fd opened for it)."""

    __slots__ = ("args", "id", "listener")

    def __init__(self, sb: Sandbox, proc: Process, tid: int, nr: int, args: tuple[int, ...],
                 notif_id: int, listener: int) -> None:
        self.sb = sb
        self.proc = proc
        self.tid = tid
        self.nr = nr
        self.args = args
        self.id = notif_id
        self.listener = listener
        self.changed = False
        self.after_fn = None
        self.tag = None

    def arg(self, i: int) -> int:
        return self.args[i]

    def iarg(self, i: int) -> int:
        v = self.args[i] & 0xFFFFFFFF
        return v - (1 << 32) if v & 0x80000000 else v

    @property
    def regs(self) -> Regs:
        """Registers as the trace's formatter reads them."""
        from ptrace.binding.linux_struct import user_regs_struct

        regs = user_regs_struct()
        regs.orig_rax = self.nr
        for name, value in zip(ARG_REGS, self.args, strict=True):
            setattr(regs, name, value)
        return regs


    # The tracee is in the kernel, not stopped: nothing of it can be rewritten.
    def set_arg(self, i: int, value: int) -> None:
        _cannot_rewrite()

    def set_nr(self, nr: int) -> None:
        _cannot_rewrite()

    def after(self, fn: AfterFn) -> None:
        _cannot_rewrite()

    def push(self, data: bytes) -> int:
        _cannot_rewrite()

    def push_str(self, s: bytes) -> int:
        _cannot_rewrite()


def _cannot_rewrite() -> NoReturn:
    raise RuntimeError("a notified call cannot be rewritten; use a performing handler")


class Inject:
    """An open's result: this supervisor fd becomes the tracee's (by
    SECCOMP_IOCTL_NOTIF_ADDFD; from a ptrace stop, see Supervisor._hand_off)."""

    def __init__(self, fd: int, cloexec: bool) -> None:
        self.fd = fd
        self.cloexec = cloexec


class CloseFd:
    """What an exit-stop function returns to take back an fd the kernel
    just gave the tracee: it is closed in the tracee (a close(2) made to run
    there) and the call returns `result` instead."""

    def __init__(self, fd: int, result: int) -> None:
        self.fd = fd
        self.result = result
