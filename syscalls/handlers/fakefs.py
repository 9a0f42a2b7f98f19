"""File ownership and modes when the supervisor is unprivileged
(fakeroot-style): chown, chmod of bits the host user cannot apply, and
device nodes are recorded in the file's `user.containers.override_stat`
xattr (brandpy/fsmeta.py) and reported back by every stat call, so tar,
dpkg and `ls -l` see what they set. The host user's own files appear owned
by the container's root; other host IDs appear as nobody.

Only the container's root may change other people's files (CAP_CHOWN,
CAP_FOWNER), as on Linux; permission checks between the container's users,
which the host kernel cannot make (they are all one host user), are
brandpy/runtime/dac.py's.

Everything here acts on a file held open (paths.Obj), never on a path.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import replace

from brandpy import fsmeta
from brandpy.fsmeta import Override
from brandpy.runtime import dac, devices
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.pathres import Resolved

from .paths import OBJ, Obj, oserror

OWNER_BITS_FILE = 0o600     # kept on the real file so the host user can still use it
OWNER_BITS_DIR = 0o700


def view(obj: Obj) -> Override:
    """What the container sees of a file."""
    return dac.view(obj.fd, obj.st)


# -- chown and chmod ----------------------------------------------------------------

def chown(call: Call, obj: Obj, uid: int, gid: int) -> int:
    old = view(obj)
    c = call.proc.cred
    # setattr_prepare's chown_ok and chgrp_ok: an ID left as it is (-1) is not checked
    if not c.capable("CAP_CHOWN") and (
            (uid != -1 and (c.fsuid != old.uid or uid != old.uid)) or
            (gid != -1 and (c.fsuid != old.uid or gid != old.gid and not dac.in_group(c, gid)))):
        raise Errno(errno.EPERM)
    new_uid = old.uid if uid == -1 else uid
    new_gid = old.gid if gid == -1 else gid
    mode = old.mode
    if not stat.S_ISDIR(obj.st.st_mode) and (uid != -1 or gid != -1):
        mode &= ~0o4000                     # chown clears set-user-ID
        if mode & 0o010:
            mode &= ~0o2000                 # and set-group-ID on group-executable files
    if obj.is_link:
        return 0   # symlinks cannot carry the xattr: their ownership is not recorded
    record(obj, Override(new_uid, new_gid, mode, old.kind, old.rdev))
    return 0


def chmod(call: Call, obj: Obj, mode: int) -> int:
    if obj.is_link:
        raise Errno(errno.EOPNOTSUPP)       # as fchmodat(AT_SYMLINK_NOFOLLOW) on Linux
    old = view(obj)
    c = call.proc.cred
    if not c.capable("CAP_FOWNER") and c.fsuid != old.uid:
        raise Errno(errno.EPERM)
    mode &= 0o7777
    if (not c.capable("CAP_FSETID") and old.gid != c.fsgid and old.gid not in c.groups):
        mode &= ~0o2000
    keep = OWNER_BITS_DIR if stat.S_ISDIR(obj.st.st_mode) else OWNER_BITS_FILE
    try:
        os.chmod(obj.path, (mode | keep) & 0o777 | mode & 0o1000)
        obj.st = os.fstat(obj.fd)
    except OSError as exc:
        raise oserror(exc, errno.EPERM) from None
    record(obj, Override(old.uid, old.gid, mode, old.kind, old.rdev))
    return 0


def record(obj: Obj, ov: Override) -> None:
    """Store an override, or drop it when the default view says the same.
    user.* xattrs need write permission, which a file created with mode 0
    (dpkg does that) lacks even for its owner: lend it owner-write for the
    moment."""
    st = obj.st
    lend = not st.st_mode & 0o200 and not stat.S_ISLNK(st.st_mode)
    try:
        if lend:
            os.chmod(obj.path, stat.S_IMODE(st.st_mode) | 0o200)
        try:
            if ov == fsmeta.default_view(st):
                if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                    os.removexattr(obj.path, fsmeta.XATTR)   # (other kinds take none)
            else:
                os.setxattr(obj.path, fsmeta.XATTR, ov.encode())
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
        finally:
            if lend:
                os.chmod(obj.path, stat.S_IMODE(st.st_mode))
    except OSError as exc:
        raise oserror(exc, errno.EPERM) from None


def creator(call: Call) -> bool:
    """Whether what this caller creates needs its owner recorded: the
    container's root creates files as the host user, which the default view
    already shows as root; anyone else's must say who they are."""
    c = call.proc.cred
    return call.sb.fake_ids and (c.fsuid, c.fsgid) != (0, 0)


def own_new(call: Call, r: Resolved, fd: int = -1) -> None:
    """Record the caller as the owner of what it just created at r (or of
    the file it opened, fd)."""
    try:
        own = os.open(r.name, OBJ | os.O_NOFOLLOW, dir_fd=r.dirfd) if fd < 0 else os.dup(fd)
    except OSError:
        return   # gone already
    with Obj(own, os.fstat(own), r.mount) as obj:
        # symlinks, fifos and sockets take no user.* xattr: their owner is not recorded
        if stat.S_ISREG(obj.st.st_mode) or stat.S_ISDIR(obj.st.st_mode):
            c = call.proc.cred
            record(obj, replace(Override.from_stat(obj.st), uid=c.fsuid, gid=c.fsgid))


# -- device nodes ------------------------------------------------------------------

def mknod_device(call: Call, r: Resolved, kind: int, perm: int, dev: int) -> int:
    """A character or block device becomes an empty file whose override
    names it (opening one opens the device if given: device_record)."""
    if not call.proc.cred.capable("CAP_MKNOD"):
        raise Errno(errno.EPERM)
    try:
        fd = os.open(r.name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600, dir_fd=r.dirfd)
    except OSError as exc:
        raise oserror(exc, errno.EPERM) from None
    try:
        c = call.proc.cred
        fsmeta.write(fd, Override(c.fsuid, c.fsgid, perm,
                                  "char" if kind == stat.S_IFCHR else "block", dev))
    finally:
        os.close(fd)
    return 0


def device_record(call: Call, obj: int, flags: int) -> int:
    """An empty file (an O_PATH fd) that mknod_device made a device: opening
    it opens that device if the container was given it (the returned
    O_PATH fd of its node), else EPERM, as under Docker's device cgroup;
    -1 for any other file. The recorded mode was checked as any file's
    (dac.may_open)."""
    try:
        ov = Override.decode(os.getxattr(b"/proc/self/fd/%d" % obj, fsmeta.XATTR))
    except (OSError, ValueError):
        return -1
    if ov.kind not in ("block", "char"):
        return -1
    kind = stat.S_IFBLK if ov.kind == "block" else stat.S_IFCHR
    m = devices.gate(call.sb.mounts, None, kind, ov.rdev, flags, call.proc.cred)
    fd, _, owned = call.sb.mounts.root_fd(m)
    return fd if owned else os.dup(fd)
