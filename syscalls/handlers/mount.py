"""mount, umount2, unshare and setns for privileged containers (Docker's
profile allows them with CAP_SYS_ADMIN): emulated by the supervisor, as
gVisor's sentry keeps a sandbox's mounts, so nothing of it reaches the
host's mount table. A mount is an entry of the caller's mount table
(brandpy/runtime/mounts.py), which the path layer resolves through: a
tmpfs is a private directory in the container's state, proc and sysfs
are the container's own views again, a bind mount is the directory or
file its source resolved to. A process that unshares its mount namespace
gets a copy of its table, its UTS namespace a copy of the names
(brandpy/runtime/namespaces.py); its children share them."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from dataclasses import replace

from brandpy import fsmeta
from brandpy.fsmeta import Override
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.ids import process_in
from brandpy.runtime.mounts import Mount, MountTable
from brandpy.runtime.process import Process

from .ident import capable
from .paths import find, find_path, is_image_file, read_path, writable

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 32, 4096, 8192, 16384
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
PROPAGATION = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED
MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 1, 2, 4, 8

CLONE_NEWTIME, CLONE_FS, CLONE_FILES = 0x80, 0x200, 0x400
CLONE_NEWNS, CLONE_SYSVSEM, CLONE_NEWCGROUP = 0x20000, 0x40000, 0x02000000
CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER = 0x04000000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
EMULATED = CLONE_NEWNS | CLONE_NEWUTS
# made by the kernel for a root supervisor's container (its caller really
# holds CAP_SYS_ADMIN there); not emulated unprivileged
KERNEL_NS = CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME
NAMESPACES = EMULATED | KERNEL_NS | CLONE_NEWUSER | CLONE_NEWPID
UNSHARE_FLAGS = NAMESPACES | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM

# the container's walls: unmounting them would uncover what they hide
FIXED = ("rootfs", "proc", "sys", "dev", "device", "masked")
FS_KINDS = {b"tmpfs": "tmpfs", b"proc": "proc", b"sysfs": "sys"}
# brandpy's views of proc and sysfs answer at their own mount points only
VIEWS = {"proc": b"/proc", "sys": b"/sys"}
# what a bind mount's source may be on: files, not brandpy's views (a bind
# of /proc would be the host's whole procfs, untranslated)
BINDABLE = ("rootfs", "bind", "volume", "tmpfs")


def _admin(call: Call) -> None:
    if not capable(call, "CAP_SYS_ADMIN"):
        raise Errno(errno.EPERM)


def _string(call: Call, i: int) -> bytes:
    ptr = call.arg(i)
    return call.read_str(ptr) if ptr else b""


def _at(table: MountTable, guest: bytes) -> Mount | None:
    """The topmost mount at exactly `guest`."""
    found = [m for m in table.mounts if m.guest == guest]
    return found[-1] if found else None


def mount(call: Call) -> int:
    flags = call.arg(3) & 0xFFFFFFFF
    with find(call, 1) as target:
        _admin(call)
        assert target.r is not None
        guest = target.r.guest
        is_dir = stat.S_ISDIR(target.st.st_mode)
    table = call.sb.mounts_of(call.proc)
    if flags & PROPAGATION and not flags & (MS_REMOUNT | MS_BIND | MS_MOVE):
        # shared/private/slave: nothing propagates between brandpy's tables
        if _at(table, guest) is None:
            raise Errno(errno.EINVAL)
        return 0
    if flags & MS_REMOUNT:
        old = _at(table, guest)
        if old is None:
            raise Errno(errno.EINVAL)
        if old.readonly and not flags & MS_RDONLY and not (old.made and old.kind == "tmpfs"):
            # what the operator or a bind's source made read-only stays so
            raise Errno(errno.EPERM, "a read-only mount stays read-only")
        table.replace(old, replace(old, readonly=bool(flags & MS_RDONLY)))
    elif flags & MS_MOVE:
        with find_path(call, read_path(call, 0)) as moved:
            assert moved.r is not None
            old = _at(table, moved.r.guest)
        # a view of proc or sysfs stays at /proc or /sys, under the
        # read-only and masked paths brandpy mounted there
        if old is None or old.kind in VIEWS or old.kind in FIXED and not old.made:
            raise Errno(errno.EINVAL)
        table.replace(old, replace(old, guest=guest))
    elif flags & MS_BIND:
        _bind(call, table, guest, is_dir, flags)
    else:
        fstype = _string(call, 2)
        kind = FS_KINDS.get(fstype)
        if kind is None:
            raise Errno(errno.ENODEV)
        if not is_dir:
            raise Errno(errno.ENOTDIR)
        name = _string(call, 0) or fstype
        if kind == "tmpfs":
            host = _tmpfs_dir(call, _string(call, 4))
        elif guest != VIEWS[kind]:
            raise Errno(errno.EINVAL, f"brandpy's {fstype.decode()} answers at "
                        f"{VIEWS[kind].decode()} only")
        else:
            mine = _at(table, guest)
            if mine is None:
                raise Errno(errno.ENODEV)
            host = mine.host
        table.stack(Mount(guest, host, readonly=bool(flags & MS_RDONLY) or kind == "sys",
                          kind=kind, source=name, made=True))
    call.sb.mounted(table)
    return 0


def _bind(call: Call, table: MountTable, guest: bytes, is_dir: bool, flags: int) -> None:
    """The source as the caller resolves it, held by its descriptor (never
    reopened by host path); with MS_REC the mounts below it come along."""
    obj = find_path(call, read_path(call, 0))
    try:
        assert obj.r is not None
        src_guest, src_is_dir = obj.r.guest, stat.S_ISDIR(obj.st.st_mode)
        if src_is_dir != is_dir:
            raise Errno(errno.ENOTDIR if is_dir else errno.EISDIR)
        under = obj.mount
        if under is None or under.kind not in BINDABLE or obj.r.proc is not None:
            raise Errno(errno.EPERM, "only files and directories can be bind-mounted, not "
                        "brandpy's views of /proc, /sys and /dev")
        if not under.readonly and is_image_file(obj):
            obj = writable(call, obj)    # the bind shares the container's own copy
        host = os.readlink(b"/proc/self/fd/%d" % obj.fd)
        fd = os.open(b"/proc/self/fd/%d" % obj.fd, os.O_PATH | os.O_CLOEXEC)
    finally:
        obj.close()
    readonly = under is not None and under.readonly
    table.stack(Mount(guest, host, readonly=readonly, kind="bind", made=True,
                      source=under.source if under is not None else b""), fd, src_is_dir)
    if flags & MS_REC:
        # the mounts below come along as a bind of each would: never
        # brandpy's views of /proc, /sys and /dev, which would come without
        # their read-only and masked paths, or with copies of them the
        # container could unmount
        prefix = src_guest.rstrip(b"/") + b"/"
        for m in list(table.mounts):
            if m.guest.startswith(prefix) and m.kind in BINDABLE:
                table.stack(replace(m, guest=guest.rstrip(b"/") + b"/" + m.guest[len(prefix):],
                                    made=True))


def _tmpfs_dir(call: Call, data: bytes) -> bytes:
    """A new empty directory standing for a tmpfs, with its mode, uid and
    gid options (1777, root, as the kernel's defaults)."""
    base = call.sb.tmpfs_base
    os.makedirs(base, mode=0o711, exist_ok=True)
    host = os.fsencode(tempfile.mkdtemp(dir=base))
    opts = dict(o.partition(b"=")[::2] for o in data.split(b",") if o)
    try:
        mode = int(opts.get(b"mode", b"1777"), 8) & 0o7777
        uid, gid = int(opts.get(b"uid", b"0")), int(opts.get(b"gid", b"0"))
    except ValueError:
        os.rmdir(host)
        raise Errno(errno.EINVAL) from None
    os.chmod(host, mode)
    if call.sb.fake_ids:     # the emulated owner and mode (syscalls/handlers/fakefs.py)
        fsmeta.write(host, Override(uid, gid, mode, "dir"))
    else:
        os.chown(host, uid, gid)
    return host


def umount2(call: Call) -> int:
    flags = call.iarg(1)
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) or \
            flags & MNT_EXPIRE and flags & (MNT_FORCE | MNT_DETACH):
        raise Errno(errno.EINVAL)
    with find(call, 0, follow=not flags & UMOUNT_NOFOLLOW) as target:
        _admin(call)
        assert target.r is not None
        guest = target.r.guest
    table = call.sb.mounts_of(call.proc)
    m = _at(table, guest)
    if m is None:
        raise Errno(errno.EINVAL)
    if m.kind in FIXED and not m.made:
        raise Errno(errno.EBUSY, "brandpy's own mounts (the root, /proc, /sys, /dev, masked "
                    "paths) stay")
    table.unstack(m)
    call.sb.mounted(table)
    return 0


def unshare(call: Call) -> int | None:
    flags = call.arg(0) & 0xFFFFFFFF
    if flags & ~UNSHARE_FLAGS:
        return None                      # the kernel's EINVAL
    if flags & NAMESPACES:
        _admin(call)
    if flags & (CLONE_NEWUSER | CLONE_NEWPID) or (flags & KERNEL_NS and call.sb.fake_ids):
        raise Errno(errno.EPERM, "brandpy emulates mount and UTS namespaces; user and PID "
                    "namespaces (and, unprivileged, the others) cannot be made in a container")
    proc = call.proc
    if flags & CLONE_NEWNS:
        proc.mounts = call.sb.mounts_of(proc).copy()
    if flags & CLONE_NEWUTS:
        proc.uts = call.sb.uts_of(proc).copy()
    if flags & EMULATED:
        call.sb.changed(proc)
    rest = flags & ~EMULATED
    if not rest:
        return 0
    call.set_arg(0, rest)
    return None


def setns(call: Call) -> int:
    """Joins the mount and UTS namespaces of the process a pidfd names, or,
    for a namespace file, the container's own when no process has
    unshared (brandpy cannot tell its emulated namespaces apart by file)."""
    fd, nstype = call.iarg(0), call.iarg(1)
    try:
        link = os.readlink(b"/proc/%d/fd/%d" % (call.tid, fd))
    except OSError:
        raise Errno(errno.EBADF) from None
    _admin(call)
    if link == b"anon_inode:[pidfd]":
        target = _pidfd_process(call, fd)
        wanted = nstype or EMULATED
        if wanted & ~EMULATED:
            raise Errno(errno.EINVAL)
        if wanted & CLONE_NEWNS:
            call.proc.mounts = target.mounts
        if wanted & CLONE_NEWUTS:
            call.proc.uts = target.uts
    else:
        kind = link.split(b":", 1)[0]
        types = {b"mnt": CLONE_NEWNS, b"uts": CLONE_NEWUTS}
        if kind not in types or nstype not in (0, types[kind]):
            raise Errno(errno.EINVAL)
        if any(p.mounts is not None or p.uts is not None for p in call.sb.procs.values()
               if p is not call.proc):
            raise Errno(errno.EINVAL, "a namespace file is ambiguous once a process of the "
                        "container has unshared: use a pidfd")
        if kind == b"mnt":
            call.proc.mounts = None
        else:
            call.proc.uts = None
    call.sb.changed(call.proc)
    return 0


def _pidfd_process(call: Call, fd: int) -> Process:
    try:
        with open(b"/proc/%d/fdinfo/%d" % (call.tid, fd), "rb") as f:
            host = next(int(line.split()[1]) for line in f if line.startswith(b"Pid:"))
    except (OSError, StopIteration, ValueError):
        raise Errno(errno.EBADF) from None
    # (a process whose leader has exited is still in procs; a child named
    # the moment it exists is waited for)
    return call.sb.procs.get(host) or process_in(call.sb, host)
