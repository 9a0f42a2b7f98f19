"""The container's /dev/pts: only its own ptys, never another session's
terminal. Docker mounts a devpts instance of the container's own; brandpy
(which makes no mounts unprivileged) shows one entry of its mount table
there, a view whose names are resolved against the container's set of
ptys (MountTable.lookup asks PtyView.mount), whatever their number:

- its consoles: the pty `brandpy run -t`, the daemon's shim or an OCI
  caller gives it as stdio;
- each pty it makes with /dev/ptmx, learned when it asks the master's
  number (TIOCGPTN, as ptsname() and openpty() do): the supervisor takes
  the master itself (pidfd_getfd) and asks it, so the number is the pty's
  whatever the container's memory says.

What the view holds of a pty is an O_PATH descriptor of its slave's devpts
dentry, which does not keep the pty open: a master the container closes
hangs up the slave as on Linux, and once both sides are closed the kernel
frees the pty and may give its number to another session. The kernel
marks the freed pty's dentry (no link left, and opening it is EIO: the
tty is looked up from the dentry, never by number), so the view drops a
number whose dentry is dead the moment it looks at it, and every open of
a name in the view goes through the held dentry: a number reused by the
host between the look and the open still opens nothing of the host's.
The host directory behind the view (a placeholder file per number) only
serves listings; it is pruned when the container opens /dev/pts, and as
the set grows.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import struct
from collections.abc import Callable

from .cgroups import DeviceRule
from .errors import Errno
from .linux import O_PATH
from .mounts import Mount

PTS = b"/dev/pts"
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441
PTY_SLAVE_MAJORS = range(136, 144)     # UNIX98_PTY_SLAVE_MAJOR and its 7 successors
PTMX = os.makedev(5, 2)                # /dev/ptmx, and each devpts' own ptmx
PRUNE_AT = 64                          # ptys held before the view looks for freed ones


def pty_number(fd: int) -> int | None:
    """The number of the host's pty an fd is the master or the slave of
    (None for anything else)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISCHR(st.st_mode):
        return None
    if os.major(st.st_rdev) in PTY_SLAVE_MAJORS:
        return slave_number(st.st_rdev)
    if st.st_rdev != PTMX:
        return None
    try:
        (number,) = struct.unpack("I", fcntl.ioctl(fd, TIOCGPTN, b"\0" * 4))
    except OSError:
        return None      # not a pty master
    return int(number)


def slave_number(rdev: int) -> int:
    return (os.major(rdev) - PTY_SLAVE_MAJORS[0]) * 256 + os.minor(rdev)


def device_rule(number: int) -> DeviceRule:
    """The devices cgroup's rule for pty `number`'s slave."""
    return DeviceRule("c", PTY_SLAVE_MAJORS[0] + number // 256, number % 256, "rwm")


def _slave_dentry(fd: int, number: int) -> int | None:
    """An O_PATH fd of the devpts dentry of the pty `fd` is a side of,
    found from the fd itself (never by a name, which could be another
    instance's pty of that number); None unless it is in the host's
    /dev/pts, the devpts the container's /dev/ptmx allocates in."""
    if os.major(os.fstat(fd).st_rdev) in PTY_SLAVE_MAJORS:
        dentry = os.open(b"/proc/self/fd/%d" % fd, O_PATH | os.O_CLOEXEC)
    else:        # the master's own peer (Linux 4.13)
        dentry = fcntl.ioctl(fd, TIOCGPTPEER, O_PATH | os.O_CLOEXEC)
    st = os.fstat(dentry)
    if st.st_dev != os.stat(PTS).st_dev or not stat.S_ISCHR(st.st_mode) or \
            os.major(st.st_rdev) not in PTY_SLAVE_MAJORS or slave_number(st.st_rdev) != number:
        os.close(dentry)
        return None
    return dentry


def _empty(directory: bytes) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


class PtyView:
    """The container's ptys by number: the O_PATH fd of each one's devpts
    dentry, the device mount its name resolves to, and its name in the
    listing. `dev` is the host directory of the container's /dev."""

    def __init__(self, dev: bytes, changed: Callable[[int, int], None]) -> None:
        """changed(number, fd) is told each pty taken in (its dentry fd)
        and each forgotten (fd -1, before the fd is closed)."""
        self.changed = changed
        self.dir = os.path.join(dev, b"pts")
        os.makedirs(self.dir, exist_ok=True)
        self._dirfd = os.open(self.dir, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        _empty(self.dir)    # what a former run of the container left: its ptys are gone
        # a devpts' own ptmx (Docker's /dev/ptmx links to it): the host's, as /dev/ptmx is
        self._ptmx = Mount(PTS + b"/ptmx", b"/dev/ptmx", kind="device")
        self._name(b"ptmx")
        self.held: dict[int, tuple[int, Mount]] = {}    # number -> (dentry fd, its mount)
        self._next_prune = PRUNE_AT

    def adopt(self, fd: int, masters_only: bool = False) -> None:
        """Take the pty `fd` is a side of (fd: ours, closed here) into the
        view; anything else is ignored, and with masters_only a slave too
        (a pty the container made is named from its master: a slave it
        holds came from elsewhere, a caller's terminal, not its own)."""
        try:
            number = pty_number(fd)
            if masters_only and number is not None and os.fstat(fd).st_rdev != PTMX:
                number = None
            dentry = _slave_dentry(fd, number) if number is not None else None
        except OSError:
            dentry = None
        finally:
            os.close(fd)
        if number is None or dentry is None:
            return
        if number in self.held and self._alive(number):    # the same pty (one per number)
            os.close(dentry)
            return
        if len(self.held) >= self._next_prune:    # amortized: each pty looked at O(1) times
            self.prune()
            self._next_prune = max(PRUNE_AT, 2 * len(self.held))
        name = b"%d" % number
        self.held[number] = (dentry, Mount(PTS + b"/" + name, PTS + b"/" + name, kind="pty"))
        self.changed(number, dentry)
        self._name(name)

    def _name(self, name: bytes) -> None:
        """A name in listings; one the container made there is its own."""
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600, dir_fd=self._dirfd))
        except OSError:
            pass

    def mount(self, name: bytes) -> Mount | None:
        """The mount a name in /dev/pts resolves to: one of the container's
        live ptys or its ptmx, else None (the view's directory answers)."""
        if name == b"ptmx":
            return self._ptmx
        if not name.isdigit() or name != b"%d" % int(name):
            return None
        number = int(name)
        if number not in self.held or not self._alive(number):
            return None
        return self.held[number][1]

    def root(self, mount: Mount) -> int:
        """The dentry fd behind a pty's mount (the view's: not to be closed)."""
        held = self.held.get(int(mount.guest.rsplit(b"/", 1)[1]))
        if held is None:
            raise Errno(errno.ENOENT)      # freed since its name was looked up
        return held[0]

    def guest_of(self, host: bytes) -> bytes | None:
        """A host path naming one of the container's live ptys (a file
        descriptor's link) is that same name in its /dev/pts."""
        head, _, name = host.rpartition(b"/")
        return host if head == PTS and self.mount(name) is not None else None

    def given(self, rdev: int) -> Mount | None:
        """The mount of the live pty with that rdev (a character device)."""
        if os.major(rdev) not in PTY_SLAVE_MAJORS:
            return None
        return self.mount(b"%d" % slave_number(rdev))

    def prune(self) -> None:
        """Forget every pty the kernel freed (both sides closed)."""
        for number in list(self.held):
            self._alive(number)

    def _alive(self, number: int) -> bool:
        fd = self.held[number][0]
        if os.fstat(fd).st_nlink:
            return True
        self.changed(number, -1)
        os.close(fd)
        del self.held[number]
        try:
            os.unlink(b"%d" % number, dir_fd=self._dirfd)
        except OSError:
            pass
        return False

    def close(self) -> None:
        for number, (fd, _) in self.held.items():
            self.changed(number, -1)
            os.close(fd)
        self.held.clear()
        if self._dirfd >= 0:
            os.close(self._dirfd)
            self._dirfd = -1
