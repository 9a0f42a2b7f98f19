"""Who a supervisor thread is while it performs a call for a container
process.

A performed call (an open, a mkdir, a chmod... made by the supervisor on
the container's behalf, see syscalls/handlers/) must meet the kernel's
permission checks as the container process would. With real credentials
(the supervisor runs as root) the performing thread takes the process's
filesystem IDs, supplementary groups and effective capabilities for the
duration: setfsuid, setfsgid, setgroups and capset are per thread at the
syscall level (glibc's setgroups wrapper is not: it is called raw here).
Unprivileged, the supervisor is the container's host user already and the
container's identity is emulated (syscalls/handlers/fakefs.py): nothing to
switch; the credentials are noted for the checks the kernel cannot make
between emulated users (dac.py).

The supervisor's own bookkeeping inside a performed call (copying an image
file up, recording fake ownership) runs as itself again (`as_supervisor`).

As root the performing thread also acts inside the container's mount
namespace (`Walls.mount_ns`, the spawner's, pivoted into a root that holds
only the container's paths at their host names): a performed call that
went wrong (a path left untranslated, a walk that climbed out) finds
nothing of the host's, as the container's own calls would not. setns is
per thread once the thread has a root and working directory of its own
(unshare(CLONE_FS)). Unprivileged, the container's mount namespace belongs
to a user namespace a threaded supervisor cannot join: its walls there are
Landlock's and the namespaces' around the tracee alone (README, Security).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from .identity import Cred
from .linux import CLONE_FS, CLONE_NEWNS, check, libc
from .policy import cap_mask

SYS_capget, SYS_capset, SYS_setgroups, SYS_setfsuid, SYS_setfsgid = 125, 126, 116, 122, 123
_CAP_V3 = 0x20080522
_NS_CAPS = 1 << 18 | 1 << 21      # CAP_SYS_CHROOT, CAP_SYS_ADMIN: setns
R = TypeVar("R")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of this thread."""
    hdr, data = _CapHeader(_CAP_V3, 0), (_CapData * 2)()
    libc.syscall(SYS_capget, ctypes.byref(hdr), data)
    lo, hi = data[0], data[1]
    return (lo.effective | hi.effective << 32, lo.permitted | hi.permitted << 32,
            lo.inheritable | hi.inheritable << 32)


def _capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)(_CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF,
                                   inheritable & 0xFFFFFFFF),
                          _CapData(effective >> 32, permitted >> 32, inheritable >> 32))
    libc.syscall(SYS_capset, ctypes.byref(hdr), data)


def _groups(groups: tuple[int, ...]) -> None:
    arr = (ctypes.c_uint * max(1, len(groups)))(*groups)
    libc.syscall(SYS_setgroups, len(groups), arr)


class Walls(Protocol):
    """What a performed call needs of its container (runtime.sandbox.Sandbox)."""
    fake_ids: bool
    mount_ns: int       # its mount namespace (fd) to act in; -1: none (unprivileged)
    home_ns: int        # the supervisor's own, to come back to


class _State(threading.local):
    acting: Cred | None = None      # real credentials taken by this thread
    emulated: Cred | None = None    # emulated credentials performed for
    walled: Walls | None = None     # in this container's mount namespace


_state = _State()


def _enter(ns: int) -> None:
    """setns wants a thread whose root and working directory are its own:
    unshare(CLONE_FS) again each time, as a thread this one started shares
    them (a no-op while nothing does); and CAP_SYS_ADMIN and CAP_SYS_CHROOT,
    which the caller's identity (taken by this thread, or by the one that
    started it: a deferred call's) may lack: raised for the moment."""
    effective = _capget()[0]
    raise_ = effective & _NS_CAPS != _NS_CAPS
    if raise_:
        _capset(effective | _NS_CAPS, _OWN_CAPS[1], _OWN_CAPS[2])
    try:
        check(libc.unshare(CLONE_FS))
        check(libc.setns(ns, CLONE_NEWNS))
    finally:
        if raise_:
            _capset(effective, _OWN_CAPS[1], _OWN_CAPS[2])


@contextmanager
def _inside(walls: Walls) -> Iterator[None]:
    """This thread in the container's mount namespace for the duration;
    then back in the supervisor's, in its working directory. A thread
    started meanwhile (a deferred call's) starts there too, and leaves
    at the end of its own performed call."""
    if walls.mount_ns < 0 or _state.walled is not None:
        yield
        return
    cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        _enter(walls.mount_ns)
        _state.walled = walls
        try:
            yield
        finally:
            _state.walled = None
            # a failure to come back raises (the call fails): the thread's next
            # performed call tries again, and until then it finds no host path
            _enter(walls.home_ns)
            os.fchdir(cwd)
    finally:
        os.close(cwd)


def at_home(op: Callable[[], R]) -> R:
    """op in the supervisor's own mount namespace, also while this thread
    acts in a container's: opening the host path of a mount the container
    was given (mounts.MountTable.root_fd), whose descriptors all belong to
    the supervisor's namespace, so that two of them are one mount (link
    and rename across them would be EXDEV)."""
    walls = _state.walled
    if walls is None:
        return op()
    _enter(walls.home_ns)
    try:
        return op()
    finally:
        _enter(walls.mount_ns)


def beside_mounts(op: Callable[[], R]) -> R:
    """op (a rename, unlink or rmdir on resolved descriptors), made again
    in the supervisor's own mount namespace where the container's refuses
    it as a mount point (EBUSY: the kernel asks the caller's namespace).
    Every path the container was given is one there, at its host name, so
    a file bound inside a volume (-v vol:/d -v vol/f:/f) would be, where
    Docker's container may rename /d/f. Only the container's own paths
    can be mount points there: any other names nothing (ENOENT)."""
    try:
        return op()
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
    return at_home(op)


def _become(cred: Cred | None) -> None:
    """Take cred's identity on this thread (None: the supervisor's own)."""
    fsuid, fsgid, groups, caps = (0, 0, _OWN_GROUPS, _OWN_CAPS[0]) if cred is None else (
        cred.fsuid, cred.fsgid, cred.groups, cap_mask(cred.caps) & _OWN_CAPS[1])
    libc.syscall(SYS_setfsuid, fsuid)
    libc.syscall(SYS_setfsgid, fsgid)
    _groups(groups)
    # last: a change of fsuid lowers or raises the filesystem capabilities
    _capset(caps, _OWN_CAPS[1], _OWN_CAPS[2])


_OWN_CAPS = _capget() if os.geteuid() == 0 else (0, 0, 0)
_OWN_GROUPS = tuple(os.getgroups())


# the capabilities filesystem calls check: a root holding them all passes
# the same checks as the supervisor itself (native/notify.c relies on it too)
FS_CAPS = frozenset({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_MKNOD"})


def acts_as_supervisor(cred: Cred) -> bool:
    return cred.fsuid == 0 and cred.fsgid == 0 and cred.caps >= FS_CAPS


@contextmanager
def as_tracee(cred: Cred, walls: Walls, exact: bool = False) -> Iterator[None]:
    """Perform with cred's filesystem identity, inside walls' mount
    namespace: real credentials are taken by the thread, emulated ones
    noted for dac.py's checks. A root holding FS_CAPS performs as the
    supervisor itself, unless exact: for opens whose checks look at other
    capabilities (procfs's CAP_SYSLOG, CAP_SYS_RESOURCE, CAP_SYS_PTRACE;
    devices' CAP_SYS_RAWIO)."""
    with _inside(walls), _as(cred, walls.fake_ids, exact):
        yield


@contextmanager
def _as(cred: Cred, fake_ids: bool, exact: bool) -> Iterator[None]:
    if fake_ids:
        outer_emulated = _state.emulated
        _state.emulated = cred
        try:
            yield
        finally:
            _state.emulated = outer_emulated
        return
    if _state.acting is cred or (
            _state.acting is None and not exact and acts_as_supervisor(cred)):
        yield
        return
    outer = _state.acting
    _state.acting = cred
    _become(cred)
    try:
        yield
    finally:
        _state.acting = outer
        _become(outer)


@contextmanager
def as_supervisor() -> Iterator[None]:
    """Inside as_tracee: the supervisor's own identity for a moment."""
    outer, outer_emulated = _state.acting, _state.emulated
    if outer is None:
        _state.emulated = None
        try:
            yield
        finally:
            _state.emulated = outer_emulated
        return
    _state.acting = None
    _become(None)
    try:
        yield
    finally:
        _state.acting = outer
        _become(outer)


def acting_cred() -> Cred | None:
    """The real credentials this thread took (None: its own)."""
    return _state.acting


def emulated_cred() -> Cred | None:
    """The emulated credentials this thread performs for (None: none, or
    real credentials)."""
    return _state.emulated


CAP_SYS_PTRACE = 1 << 19


@contextmanager
def tracee_memory() -> Iterator[None]:
    """The supervisor reading or writing the tracee's memory while it acts
    as the tracee: process_vm_readv checks real IDs, and another user's
    process needs CAP_SYS_PTRACE, raised for the access alone (kept while
    the call is performed, it would let the container read other users'
    /proc/PID/mem)."""
    cred = _state.acting
    if cred is None or cap_mask(cred.caps) & CAP_SYS_PTRACE:
        yield
        return
    caps = cap_mask(cred.caps) & _OWN_CAPS[1]
    _capset(caps | CAP_SYS_PTRACE, _OWN_CAPS[1], _OWN_CAPS[2])
    try:
        yield
    finally:
        _capset(caps, _OWN_CAPS[1], _OWN_CAPS[2])


_STATUS_IDS = re.compile(rb"^(Uid|Gid):\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$|^Groups:(.*)$|"
                         rb"^Cap(Eff|Prm):\s+([0-9a-f]+)$", re.M)


def learn(tid: int, cred: Cred) -> None:
    """Real credentials: update cred from what the kernel says the thread
    has now (after set*id, capset or execve)."""
    from .policy import CAP_NUMBERS

    with open(b"/proc/%d/status" % tid, "rb") as f:
        text = f.read()
    for m in _STATUS_IDS.finditer(text):
        if m.group(1) == b"Uid":
            cred.ruid, cred.euid, cred.suid, cred.fsuid = map(int, m.group(2, 3, 4, 5))
        elif m.group(1) == b"Gid":
            cred.rgid, cred.egid, cred.sgid, cred.fsgid = map(int, m.group(2, 3, 4, 5))
        elif m.group(6) is not None:
            cred.groups = tuple(int(g) for g in m.group(6).split())
        elif m.group(7) is not None:
            mask = int(m.group(8), 16)
            held = frozenset(n for n, bit in CAP_NUMBERS.items() if mask >> bit & 1)
            if m.group(7) == b"Eff":
                cred.caps = held
            else:
                cred.permitted = held
