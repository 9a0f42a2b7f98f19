"""The container's /dev/pts: only its own ptys, never another session's
terminal.

The supervisor makes each container a devpts instance of its own, as
Docker mounts one, but attached nowhere (fsopen, fsconfig, fsmount: a
detached mount only the supervisor holds, with Docker's options
ptmxmode=0666, mode=0620, gid=5): the container's /dev/ptmx and
/dev/pts/ptmx are that instance's ptmx, so every pty it makes is the
instance's, numbered from 0 whatever the host has open, and no number of
the host's is one of its names. fsopen("devpts") needs CAP_SYS_ADMIN
over the user namespace owning the caller's mount namespace: root has
it; unprivileged, a child in a user and mount namespace of its own makes
the instance (without gid=5, a group it does not map). Where the host
forbids user namespaces, or the kernel refuses, the container's ptys are
the host's: made with the host's /dev/ptmx and numbered by the host,
shared with other sessions.

Either way /dev/pts is one entry of the container's mount table, a view
whose names are resolved against the container's set of ptys
(MountTable.lookup asks PtyView.mount), whatever their number:

- its consoles: the pty `brandpy run -t`, the daemon's shim or an OCI
  caller gives it as stdio, a host pty. With a private instance the view
  names it by a number it reserves there (a pty of the instance whose
  master the view holds while the console lives), so that it is
  /dev/pts/0 for a container's first terminal, as in Docker, and no pty
  of the container's takes that name;
- each pty it makes with /dev/ptmx, learned when it asks the master's
  number (TIOCGPTN, as ptsname() and openpty() do) or its slave
  (TIOCGPTPEER): the supervisor takes the master itself (pidfd_getfd) and
  asks it, so the number is the pty's whatever the container's memory says.

What the view holds of a pty is an O_PATH descriptor of its slave's devpts
dentry, which does not keep the pty open: a master the container closes
hangs up the slave as on Linux, and once both sides are closed the kernel
frees the pty and may give its number to another pty. The kernel marks
the freed pty's dentry (no link left, and opening it is EIO: the tty is
looked up from the dentry, never by number), so the view drops a number
whose dentry is dead the moment it looks at it, and every open of a name
in the view goes through the held dentry: a number reused between the
look and the open still opens nothing else. The host directory behind
the view (a placeholder file per number) only serves listings; it is
pruned when the container opens /dev/pts, and as the set grows.

The kernel looks a pty slave up from its devpts dentry alone: a node made
with mknod (c 136:N) anywhere else opens nothing (EIO, checked on 6.18).
A private instance's numbers are the same device numbers as the host's
ptys (c 136:0 is the host's /dev/pts/0 and the container's), so the
devices cgroup (root's) cannot tell them apart: with one, it allows no pty at all
(the container's processes never open one themselves, the supervisor
opens them all, outside the container's cgroup, and the instance is in
no mount namespace of the container's, nor the host's /dev/pts in its
pivoted root). Without one, it allows each of the container's ptys
while the view holds it (Sandbox._pty_changed).
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
from .linux import MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, O_PATH, detached_mount
from .mounts import Mount

PTS = b"/dev/pts"
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441
PTY_SLAVE_MAJORS = range(136, 144)     # UNIX98_PTY_SLAVE_MAJOR and its 7 successors
PTMX = os.makedev(5, 2)                # /dev/ptmx, and each devpts' own ptmx
PRUNE_AT = 64                          # ptys held before the view looks for freed ones
# Docker's devpts options (gid 5: the tty group)
DEVPTS_OPTIONS = {b"ptmxmode": b"0666", b"mode": b"0620", b"gid": b"5"}
# Test-only: the host's devpts (the fallback where there is no instance, for control cases)
TEST_OFF = "BRANDPY_TEST_HOST_DEVPTS"


def private_devpts() -> int:
    """An O_PATH fd of the root of a new devpts instance attached nowhere,
    or -1 where the kernel will not make one. Unprivileged, a child in a
    user and mount namespace of its own makes it (native/devpts.c), where
    the host allows user namespaces."""
    if os.environ.get(TEST_OFF) == "1":
        return -1
    if os.geteuid() != 0:
        from brandpy._native import lib
        fd: int = lib.bp_devpts_in_userns()
        return max(fd, -1)
    try:
        return detached_mount(b"devpts", DEVPTS_OPTIONS, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)
    except OSError:
        return -1


def slave_number(rdev: int) -> int:
    return (os.major(rdev) - PTY_SLAVE_MAJORS[0]) * 256 + os.minor(rdev)


def device_rule(number: int) -> DeviceRule:
    """The devices cgroup's rule for pty `number`'s slave."""
    return DeviceRule("c", PTY_SLAVE_MAJORS[0] + number // 256, number % 256, "rwm")


def _master_number(fd: int) -> int:
    (number,) = struct.unpack("I", fcntl.ioctl(fd, TIOCGPTN, b"\0" * 4))
    return int(number)


def _slave_dentry(fd: int, masters_only: bool) -> int | None:
    """An O_PATH fd of the devpts dentry of the pty `fd` is a side of,
    found from the fd itself (never by a name, which could be another
    instance's pty of that number); None for anything else, and with
    masters_only for a slave."""
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode):
        return None
    if os.major(st.st_rdev) in PTY_SLAVE_MAJORS and not masters_only:
        dentry = os.open(b"/proc/self/fd/%d" % fd, O_PATH | os.O_CLOEXEC)
    elif st.st_rdev == PTMX:     # the master's own peer (Linux 4.13)
        dentry = fcntl.ioctl(fd, TIOCGPTPEER, O_PATH | os.O_CLOEXEC)
    else:
        return None
    st = os.fstat(dentry)
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) not in PTY_SLAVE_MAJORS:
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
    listing. `dev` is the host directory of the container's /dev;
    `instance` the root of its private devpts (private_devpts: the view's
    own, closed with it), or -1 for the host's."""

    def __init__(self, dev: bytes, changed: Callable[[int, int], None],
                 instance: int = -1) -> None:
        """changed(number, fd) is told each pty taken in (its dentry fd)
        and each forgotten (fd -1, before the fd is closed)."""
        self.changed = changed
        self.dir = os.path.join(dev, b"pts")
        os.makedirs(self.dir, exist_ok=True)
        self._dirfd = os.open(self.dir, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        _empty(self.dir)    # what a former run of the container left: its ptys are gone
        self.instance = instance
        # where the container's own ptys live (st_dev), and its consoles (the host's)
        try:
            self._host_dev = os.stat(PTS).st_dev
        except OSError:
            self._host_dev = -1      # a host without /dev/pts: no pty is one of its
        self._own_dev = os.fstat(instance).st_dev if instance >= 0 else self._host_dev
        # a devpts' own ptmx (Docker's /dev/ptmx links to it): the private
        # instance's, as /dev/ptmx is then (ptmx_root), else the host's /dev/ptmx
        self._ptmx = Mount(PTS + b"/ptmx", b"/dev/ptmx", kind="device")
        self._ptmx_fd = os.open(b"ptmx", O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
                                dir_fd=instance) if instance >= 0 else -1
        self._name(b"ptmx")
        self.held: dict[int, tuple[int, Mount]] = {}    # number -> (dentry fd, its mount)
        # with a private instance: a console's number -> the master of the
        # instance's pty that reserves it, and its host number
        self._reserved: dict[int, tuple[int, int]] = {}
        self._next_prune = PRUNE_AT

    @property
    def private(self) -> bool:
        """The container's ptys are a devpts instance of its own."""
        return self.instance >= 0

    def adopt(self, fd: int, masters_only: bool = False) -> None:
        """Take the pty `fd` is a side of (fd: ours, closed here) into the
        view; anything else is ignored, and with masters_only a slave too
        (a pty the container made is named from its master: a slave it
        holds came from elsewhere, a caller's terminal, not its own)."""
        try:
            dentry = _slave_dentry(fd, masters_only)
        except OSError:
            dentry = None
        finally:
            os.close(fd)
        if dentry is None:
            return
        st = os.fstat(dentry)
        if st.st_dev == self._own_dev:
            number = slave_number(st.st_rdev)
            if number in self.held and self._alive(number):    # the same pty (one per number)
                os.close(dentry)
                return
        elif st.st_dev == self._host_dev:
            found = self._console(dentry, st)
            if found is None:
                os.close(dentry)
                return
            number = found
        else:
            os.close(dentry)     # another devpts instance's: not the container's
            return
        if len(self.held) >= self._next_prune:    # amortized: each pty looked at O(1) times
            self.prune()
            self._next_prune = max(PRUNE_AT, 2 * len(self.held))
        name = b"%d" % number
        self.held[number] = (dentry, Mount(PTS + b"/" + name, PTS + b"/" + name, kind="pty"))
        self.changed(number, dentry)
        self._name(name)

    def _console(self, dentry: int, st: os.stat_result) -> int | None:
        """The number a host pty given to the container (its console) is
        named by in the private instance's view: one reserved for it there
        (None: named already, or no pty left to reserve)."""
        for number, (_, host) in list(self._reserved.items()):
            if host == slave_number(st.st_rdev) and self._alive(number) and \
                    os.fstat(self.held[number][0]).st_ino == st.st_ino:
                return None
        try:
            master = os.open(b"ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC,
                             dir_fd=self.instance)
        except OSError:
            return None      # the instance's max ptys reached: the console is not named
        number = _master_number(master)
        self._reserved[number] = (master, slave_number(st.st_rdev))
        return number

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

    def ptmx_root(self, mount: Mount) -> int:
        """With a private instance, its ptmx (the view's fd: not to be
        closed) for a device mount of the host's /dev/ptmx (/dev/ptmx,
        /dev/pts/ptmx), so that each pty the container makes is its own;
        else -1."""
        if self._ptmx_fd >= 0 and mount.kind == "device" and mount.host == b"/dev/ptmx":
            return self._ptmx_fd
        return -1

    def guest_of(self, host: bytes) -> bytes | None:
        """The path naming one of the container's live ptys in its
        /dev/pts, from the host path the kernel gives for an fd of it (a
        file descriptor's link): the host's /dev/pts/N for a console of
        the host's, and, the private instance being attached nowhere,
        /N and /ptmx for its ptys and its multiplexer."""
        head, _, name = host.rpartition(b"/")
        if not self.private:
            return host if head == PTS and self.mount(name) is not None else None
        if head == PTS and name.isdigit():     # a console: its reserved number's name
            host_number = int(name)
            for number, (_, of) in self._reserved.items():
                if of == host_number and self.mount(b"%d" % number) is not None:
                    return PTS + b"/%d" % number
            return None
        if head or not name:
            return None
        if name == b"ptmx":
            return b"/dev/ptmx"
        if self.mount(name) is None or int(name) in self._reserved:
            return None
        return PTS + b"/" + name

    def given(self, rdev: int) -> Mount | None:
        """The mount of the live pty with that rdev (a character device)."""
        if os.major(rdev) not in PTY_SLAVE_MAJORS:
            return None
        for number in list(self.held):
            if self._alive(number) and os.fstat(self.held[number][0]).st_rdev == rdev:
                return self.held[number][1]
        return None

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
        reserved = self._reserved.pop(number, None)
        if reserved is not None:
            os.close(reserved[0])     # frees the number
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
        for master, _ in self._reserved.values():
            os.close(master)
        self._reserved.clear()
        for fd in (self._dirfd, self._ptmx_fd, self.instance):
            if fd >= 0:
                os.close(fd)
        self._dirfd = self._ptmx_fd = self.instance = -1
