"""The container's /dev/pts: only its own ptys, never another session's
terminal. Docker mounts a devpts instance of the container's own; brandpy
(which makes no mounts unprivileged) shows a directory of its own instead,
in which each pty of the container's is bound by name:

- its consoles: the pty `brandpy run -t`, the daemon's shim or an OCI
  caller gives it as stdio;
- each pty it makes with /dev/ptmx, learned when it asks the master's
  number (TIOCGPTN, as ptsname() and openpty() do): the supervisor takes
  the master itself (pidfd_getfd) and asks it, so the number is the pty's
  whatever the container's memory says.

A number stays the container's while it is in the view: the supervisor
holds an fd of each pty (the master of one the container made, the
slave of a console) until the container ends, so the host cannot give
that number to another session meanwhile. The cost: a master the
container closes does not hang up its slave side before then.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct

from .mounts import Mount

PTS = b"/dev/pts"
TIOCGPTN = 0x80045430
PTY_SLAVE_MAJORS = range(136, 144)     # UNIX98_PTY_SLAVE_MAJOR and its 7 successors
PTMX = os.makedev(5, 2)                # /dev/ptmx, and each devpts' own ptmx


def pty_number(fd: int) -> int | None:
    """The number of the host's pty an fd is the master or the slave of
    (None for anything else)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISCHR(st.st_mode):
        return None
    major = os.major(st.st_rdev)
    if major in PTY_SLAVE_MAJORS:
        return (major - PTY_SLAVE_MAJORS[0]) * 256 + os.minor(st.st_rdev)
    if st.st_rdev != PTMX:
        return None
    try:
        (number,) = struct.unpack("I", fcntl.ioctl(fd, TIOCGPTN, b"\0" * 4))
    except OSError:
        return None      # not a pty master
    return int(number)


class PtyView:
    """The names in the container's /dev/pts and the fds that keep them its
    own. `dev` is the host directory of its /dev."""

    def __init__(self, dev: bytes) -> None:
        self.dir = os.path.join(dev, b"pts")
        self.held: dict[int, int] = {}       # pty number -> an fd of it we hold
        os.makedirs(self.dir, exist_ok=True)

    def adopt(self, fd: int) -> Mount | None:
        """Take `fd` (ours now: closed here, or kept) of a host pty into the
        view; the bind to add to the mount table, if it is new."""
        number = pty_number(fd)
        host = b"%s/%d" % (PTS, number) if number is not None else b""
        if number is None or number in self.held or not os.path.exists(host):
            os.close(fd)
            return None
        self.held[number] = fd
        open(os.path.join(self.dir, b"%d" % number), "ab").close()   # its name in listings
        return Mount(b"%s/%d" % (PTS, number), host, kind="device")

    def close(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()
