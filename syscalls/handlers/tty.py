"""Terminal ioctls that reach beyond the container's own terminals.

- TIOCSTI pushes bytes into a terminal's input as if typed: into the
  caller's controlling terminal, or any terminal it holds with
  CAP_SYS_ADMIN (dev.tty.legacy_tiocsti is on on many hosts). It is
  refused with EIO, as a host with dev.tty.legacy_tiocsti=0 refuses it.
- TIOCLINUX (a virtual console's selection: pasting it types too) and
  TIOCCONS (redirecting the host's console output) are refused (EPERM).
- TIOCGPTN, the number of a pty the container made (ptsname, openpty),
  and TIOCGPTPEER, its slave opened from the master (openpty), put that
  pty in the container's /dev/pts (brandpy/runtime/ptys.py): a pty of
  its own devpts instance, numbered from 0, where the kernel makes one
  (as root, or unprivileged in a user namespace).
  TIOCGPTPEER is performed by the supervisor, as every open is (the
  kernel would open the slave in the container's Landlock domain, which
  then would have to allow that devpts, the host's whole one without an
  instance): its fd is installed in the caller, never its controlling
  terminal (O_NOCTTY, as for every performed open; TIOCSCTTY makes it so).

The command is a register: BPF traps exactly these, and no other thread
can change it before the kernel sees it.
"""

from __future__ import annotations

import errno
import fcntl
import os

from brandpy.runtime.call import Call, Inject
from brandpy.runtime.errors import Errno

from . import inodeflags, owners

TIOCSTI, TIOCLINUX, TIOCCONS = 0x5412, 0x541C, 0x541D
TIOCGPTN, TIOCGPTPEER = 0x80045430, 0x5441
COMMANDS = (TIOCSTI, TIOCLINUX, TIOCCONS, TIOCGPTN, TIOCGPTPEER)


def ioctl(call: Call) -> int | Inject | None:
    cmd = call.arg(1) & 0xFFFFFFFF
    if cmd == TIOCSTI:
        raise Errno(errno.EIO, "TIOCSTI types into a terminal: refused, as with "
                    "dev.tty.legacy_tiocsti=0")
    if cmd in (TIOCLINUX, TIOCCONS):
        raise Errno(errno.EPERM, "TIOCLINUX and TIOCCONS reach the host's consoles: refused")
    if cmd == TIOCGPTPEER:
        return _peer(call)
    if cmd in inodeflags.ARG_SIZES:
        return inodeflags.ioctl(call)
    if cmd == TIOCGPTN:
        try:   # the pty whose master the fd is now, whatever fd the kernel then asks
            call.sb.adopt_pty(call.sb.grab_fd(call.proc, call.iarg(0)), masters_only=True)
        except Errno:
            pass   # no such fd: the kernel says so
        return None
    return owners.ioctl(call)


def _peer(call: Call) -> Inject:
    """TIOCGPTPEER on the caller's fd, by the supervisor: the slave of the
    pty whose master it is, for the caller."""
    flags = call.iarg(2)
    master = call.sb.grab_fd(call.proc, call.iarg(0))      # EBADF if none
    try:
        slave = fcntl.ioctl(master, TIOCGPTPEER, flags | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(master)
        raise Errno(exc.errno or errno.EIO) from None
    call.sb.adopt_pty(master, masters_only=True)
    return Inject(slave, bool(flags & os.O_CLOEXEC))
