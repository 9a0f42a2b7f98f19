"""Handlers for notified calls (the native engine's user-notification tier)
that the C fast path handed back: the supervisor performs the call for the
tracee, as the C handlers do, with the Python resolver's full semantics
(/proc views, chroot, copy-up, terminals, fifos).

Performed calls use the supervisor's credentials. Unprivileged they are the
tracee's own (the same host user); as root, a container process that is not
root has its filesystem IDs and groups borrowed for the call
(setfsuid/setfsgid/setgroups are per thread at the syscall level).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from brandpy.runtime.call import Call, Inject
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_SYMLINK_NOFOLLOW, libc

from . import fakefs, fs
from .paths import exists, private, resolve

SYS_setgroups, SYS_setfsuid, SYS_setfsgid = 116, 122, 123
O_ACCMODE = 0o3
TTY_MAJOR, PTS_MAJORS = 5, range(136, 144)

# Notified opens that must block (a fifo waiting for its other end) finish
# on a thread of their own; this is how they answer (False: the tracee was
# interrupted meanwhile, the result was not delivered).
Answer = Callable[[Call, "int | Inject"], bool]
deferred_answer: Answer | None = None


def root_like(call: Call) -> bool:
    """Passes permission checks as root does (the kernel would let it)."""
    c = call.proc.cred
    return c.fsuid == 0 and c.capable("CAP_DAC_OVERRIDE")


@contextmanager
def as_tracee(call: Call) -> Iterator[None]:
    """The supervisor thread takes the tracee's filesystem IDs and groups
    (real mode): its permission checks, and the owner of what it creates."""
    c = call.proc.cred
    if call.sb.fake_ids or (root_like(call) and c.fsgid == 0):
        yield
        return
    old_groups = os.getgroups()
    groups = (ctypes.c_uint * max(1, len(c.groups)))(*c.groups)
    libc.syscall(SYS_setgroups, len(c.groups), groups)
    libc.syscall(SYS_setfsgid, c.fsgid)
    libc.syscall(SYS_setfsuid, c.fsuid)
    try:
        yield
    finally:
        libc.syscall(SYS_setfsuid, 0)
        libc.syscall(SYS_setfsgid, 0)
        saved = (ctypes.c_uint * max(1, len(old_groups)))(*old_groups)
        libc.syscall(SYS_setgroups, len(old_groups), saved)


def _performed(handler: Callable[[Call], int | None]) -> Callable[[Call], int | None]:
    def perform(call: Call) -> int | None:
        with as_tracee(call):
            return handler(call)
    perform.__name__ = handler.__name__
    return perform


stat_ = _performed(fakefs.stat_)
lstat = _performed(fakefs.lstat)
fstat = _performed(fakefs.fstat)
newfstatat = _performed(fakefs.newfstatat)
statx = _performed(fakefs.statx)
readlink = _performed(fs.readlink)
readlinkat = _performed(fs.readlinkat)
getcwd = fs.getcwd


def _access(call: Call, dirfd_i: int | None, path_i: int, mode: int, flags: int) -> int:
    follow = not flags & AT_SYMLINK_NOFOLLOW
    r = resolve(call, path_i, dirfd_i, follow=follow)
    if root_like(call) or call.sb.fake_ids and call.proc.cred.fsuid == 0:
        return fakefs.root_access(r.host, r.readonly, mode, follow)
    with as_tracee(call):
        if not os.access(r.host, mode, effective_ids=True, follow_symlinks=follow):
            raise Errno(errno.EACCES if os.path.lexists(r.host) else errno.ENOENT)
    return 0


def access(call: Call) -> int:
    return _access(call, None, 0, call.iarg(1), 0)


def faccessat(call: Call) -> int:
    return _access(call, 0, 1, call.iarg(2), 0)


def faccessat2(call: Call) -> int:
    return _access(call, 0, 1, call.iarg(2), call.iarg(3))


# -- open -------------------------------------------------------------------------

def _terminal(call: Call, host: bytes) -> bytes:
    """/dev/tty is the opener's controlling terminal, not the supervisor's."""
    if host not in (b"/dev/tty",):
        return host
    with open(b"/proc/%d/stat" % call.tid, "rb") as f:
        tty_nr = int(f.read().rsplit(b")", 1)[1].split()[4])
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if major in PTS_MAJORS:
        return b"/dev/pts/%d" % ((major - PTS_MAJORS.start) * 256 + minor)
    raise Errno(errno.ENXIO)


def _open(call: Call, dirfd_i: int | None, path_i: int, flags: int, mode: int) -> int | Inject | None:
    follow = not (flags & fs.O_NOFOLLOW) and not (flags & fs.O_CREAT and flags & fs.O_EXCL)
    r = resolve(call, path_i, dirfd_i, follow=follow)
    if fs._open_writes(flags, r.host):
        if r.readonly:
            raise Errno(errno.EROFS)
        private(r.host)
    if r.mount.kind == "proc" and flags & O_ACCMODE == os.O_RDONLY:
        r = fs._proc_view(call, r)
    host = _terminal(call, r.host)
    umask = fakefs.process_umask(call.tid) if flags & (fs.O_CREAT | fs.O_TMPFILE) else 0
    cloexec = bool(flags & os.O_CLOEXEC)
    real_flags = flags | os.O_CLOEXEC | os.O_NOCTTY

    def do_open() -> Inject:
        with as_tracee(call):
            old = os.umask(0)
            try:
                return Inject(os.open(host, real_flags, mode & 0o7777 & ~umask), cloexec)
            finally:
                os.umask(old)

    try:
        is_fifo = stat.S_ISFIFO(os.stat(host).st_mode)
    except OSError:
        is_fifo = False
    if is_fifo and not flags & os.O_NONBLOCK and deferred_answer is not None:
        return _open_fifo(call, (call.tid, host, real_flags), do_open, deferred_answer)
    new = bool(flags & fs.O_CREAT) and fakefs.creator(call) and not exists(host)
    try:
        opened = do_open()
    except OSError as exc:
        raise Errno(exc.errno or errno.EIO) from None
    if new:
        fakefs.own_new(call, host)
    return opened


class _FifoOpen:
    """One tracee's blocking fifo open, performed on a thread. A signal can
    interrupt the tracee's wait and the kernel restarts its open as a new
    notification: the restart joins the open in flight (the latest call is
    the one answered), and a result that found the tracee interrupted is
    kept for its restart, as the kernel's own completed open would be."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.result: int | Inject | None = None


_fifo_lock = threading.Lock()
_fifo_opens: dict[tuple[int, bytes, int], _FifoOpen] = {}


def blocking_open(tid: int) -> bool:
    """Whether tid waits on a fifo open in flight."""
    with _fifo_lock:
        return any(key[0] == tid and pending.result is None
                   for key, pending in _fifo_opens.items())


def _open_fifo(call: Call, key: tuple[int, bytes, int], do_open: Callable[[], Inject],
               answer: Answer) -> int | Inject | None:
    with _fifo_lock:
        pending = _fifo_opens.get(key)
        if pending is not None:
            if pending.result is None:
                pending.call = call      # still opening: answer this notification
                return None
            del _fifo_opens[key]
            return pending.result        # opened while the tracee was interrupted
        pending = _fifo_opens[key] = _FifoOpen(call)
    threading.Thread(target=_fifo_thread, args=(key, pending, do_open, answer), daemon=True,
                     name="brandpy-fifo-open").start()
    return None


def _fifo_thread(key: tuple[int, bytes, int], pending: _FifoOpen,
                 do_open: Callable[[], Inject], answer: Answer) -> None:
    try:
        result: int | Inject = do_open()
    except OSError as exc:
        result = -(exc.errno or errno.EIO)
    with _fifo_lock:
        call = pending.call
        if not answer(call, result):
            pending.result = result      # interrupted: keep it for the restart
            return
        _fifo_opens.pop(key, None)


def open_(call: Call) -> int | Inject | None:
    return _open(call, None, 0, call.iarg(1), call.arg(2))


def creat(call: Call) -> int | Inject | None:
    return _open(call, None, 0, fs.O_CREAT | os.O_WRONLY | fs.O_TRUNC, call.arg(1))


def openat(call: Call) -> int | Inject | None:
    return _open(call, 0, 1, call.iarg(2), call.arg(3))

