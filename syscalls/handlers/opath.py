"""O_PATH opens, and openat2.

SECCOMP_IOCTL_NOTIF_ADDFD cannot install an O_PATH descriptor (the kernel's
fget() refuses them), so these opens are the one open the tracee still
makes itself: at its ptrace stop the supervisor resolves the path on
descriptors and holds the file found; the tracee opens its host path; at
the syscall exit the descriptor it got is compared with the file found
(device and inode, through /proc/TID/fd/N). A descriptor of anything else
(a directory swapped for a symlink meanwhile, or the path rewritten by
another thread) is closed in the tracee before it returns, and the open
fails: what the container keeps is what was checked. In the short window
before that check another thread could hold the wrong O_PATH descriptor,
which opens nothing: reading, writing or executing through it goes through
the supervisor again (the /proc/self/fd reopen check, perform.reopen_check,
the resolver's refusal of directory descriptors outside the container) or
the Landlock walls (execveat).

openat2 stops for ptrace too (its flags are in memory, where BPF cannot
look); but for O_PATH it is performed as an open and its descriptor
handed to the notification tier (supervisor.Supervisor._hand_off).
"""

from __future__ import annotations

import errno
import os
import stat

from brandpy.runtime.acting import as_tracee
from brandpy.runtime.call import Call, CloseFd, Inject
from brandpy.runtime.errors import Errno
from brandpy.runtime.linux import AT_FDCWD

from . import perform
from .paths import find_path, read_path

O_PATH = 0o10000000
O_NOFOLLOW = 0o400000
SYS_openat = 257
OPATH_FLAGS = O_PATH | os.O_CLOEXEC | os.O_DIRECTORY | O_NOFOLLOW


def _opath(call: Call, dirfd_i: int | None, path_i: int, flags: int,
           resolve_flags: int = 0, race_errno: int = errno.ENOENT) -> None:
    path = read_path(call, path_i)
    dirfd = call.iarg(dirfd_i) if dirfd_i is not None else AT_FDCWD
    follow = not flags & O_NOFOLLOW
    with as_tracee(call.proc.cred, call.sb), \
            find_path(call, path, dirfd, follow=follow, resolve_flags=resolve_flags) as obj:
        if flags & os.O_DIRECTORY and not stat.S_ISDIR(obj.st.st_mode):
            raise Errno(errno.ENOTDIR)
        expected = (obj.st.st_dev, obj.st.st_ino)
        assert obj.r is not None
        host = obj.r.proc if obj.r.proc is not None else obj.r.host
    tid = call.tid

    def verify(c: Call, result: int) -> int | CloseFd | None:
        if result < 0:
            return None
        try:
            st = os.stat(b"/proc/%d/fd/%d" % (tid, result))
            if (st.st_dev, st.st_ino) == expected:
                return None
        except OSError:
            pass
        return CloseFd(result, -race_errno)

    call.set_nr(SYS_openat)
    call.set_arg(0, AT_FDCWD)
    call.set_arg(1, call.push_str(host))
    call.set_arg(2, flags & OPATH_FLAGS | (O_NOFOLLOW if obj.r.proc is None else 0))
    call.after(verify)


def open_(call: Call) -> None:
    _opath(call, None, 0, call.iarg(1))


def openat(call: Call) -> None:
    _opath(call, 0, 1, call.iarg(2))


def openat2(call: Call) -> Inject | int | None:
    """O_PATH: made by the tracee and verified, as open's; otherwise
    performed, the descriptor installed through user notification."""
    flags, mode, resolve_flags = perform.openat2_how(call)
    if flags & O_PATH:
        _opath(call, 0, 1, flags, resolve_flags, errno.EAGAIN)
        return None
    return perform.open_how(call, 0, 1, flags, mode, resolve_flags)
