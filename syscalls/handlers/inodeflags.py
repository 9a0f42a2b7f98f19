"""The ioctls that change an inode's attributes through any open fd, a
read-only one too: chattr's FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR (xflags,
extent size, project), FS_IOC_SETVERSION (ext4's generation).

Every file of a container's rootfs is a hard link of its image's inode
(brandpy/images/rootfs.py), shared with the image store and every other
container of the image: made natively on a read-only fd of one, these
changed the image (and a read-only volume's files). They are made here
instead, EROFS on a read-only mount, on the file the fd names
when it is looked at (never handed back to the kernel, which would look
the fd up again after another thread's dup2): an image file is copied up
first and its copy changed, as overlayfs copies up before a chattr. The
kernel checks ownership and CAP_LINUX_IMMUTABLE (for the immutable and
append-only flags) against the caller's exact capabilities. The command
is a register: BPF traps exactly these.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno

from .paths import image_inode, mount_of_host, tracee_file, writable

# command: how many bytes of the argument the kernel reads
ARG_SIZES = {
    0x40086602: 4,     # FS_IOC_SETFLAGS (an int, whatever its size says)
    0x40046602: 4,     # FS_IOC32_SETFLAGS
    0x401C5820: 28,    # FS_IOC_FSSETXATTR: struct fsxattr
    0x40087602: 4,     # FS_IOC_SETVERSION (an int)
    0x40047602: 4,     # FS_IOC32_SETVERSION
}
COMMANDS = tuple(ARG_SIZES)


def ioctl(call: Call) -> int:
    cmd = call.arg(1) & 0xFFFFFFFF
    fd = call.iarg(0)
    own = call.sb.grab_fd(call.proc, fd)        # EBADF if none
    try:
        mount = mount_of_host(call, os.readlink(b"/proc/self/fd/%d" % own))
        if mount is not None and mount.readonly:
            raise Errno(errno.EROFS)
        arg = bytearray(call.read(call.arg(2), ARG_SIZES[cmd]))
        if stat.S_ISREG(os.fstat(own).st_mode) and image_inode(b"/proc/self/fd/%d" % own):
            os.close(own)
            own = -1
            with writable(call, tracee_file(call, fd)) as copy:
                if not stat.S_ISREG(copy.st.st_mode):   # the fd another file meanwhile
                    raise Errno(errno.EBADF)
                own = _reopen(copy.path)
        with as_tracee(call.proc.cred, call.sb, exact=True):
            try:
                return int(fcntl.ioctl(own, cmd, arg, True))
            except OSError as exc:
                raise Errno(exc.errno or errno.EIO) from None
    finally:
        if own >= 0:
            os.close(own)


def _reopen(path: bytes) -> int:
    """An fd the ioctl takes (not O_PATH) of the container's copy."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise Errno(exc.errno or errno.EACCES) from None
