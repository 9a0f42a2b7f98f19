"""Container PIDs: the entrypoint is PID 1 and every later process and
thread gets the next number, as in a fresh PID namespace. Host PIDs never
reach the guest; guest PIDs are translated wherever a syscall takes one.

As root the container's processes are in a PID namespace of the kernel's
(native/spawner.c): then each one's number is the kernel's, asked once
when it is created (follow()), so every translation answers what the
kernel itself answers inside."""

from __future__ import annotations

import errno
import fcntl
import os
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .identity import Cred

ZOMBIES_KEPT = 4096
REAPED_KEPT = 16
NS_GET_PID_IN_PIDNS = 0x8004B708    # <linux/nsfs.h> _IOR(0xb7, 0x8, int), Linux 6.11


def pid_in(ns: int, host: int) -> int:
    """Task `host`'s PID in the PID namespace `ns` (an fd), or raises
    OSError (ESRCH: not in it)."""
    try:
        return fcntl.ioctl(ns, NS_GET_PID_IN_PIDNS, host)
    except OSError as exc:
        if exc.errno != errno.ENOTTY:
            raise
    # before Linux 6.11: the last of NSpid (the namespace is the innermost)
    with open(f"/proc/{host}/status", "rb") as f:
        for line in f:
            if line.startswith(b"NSpid:"):
                return int(line.split()[-1])
    raise OSError(errno.ESRCH, f"task {host} has no NSpid")


class PidMap:
    def __init__(self) -> None:
        self._next = 1
        self._h2g: dict[int, int] = {}
        self._g2h: dict[int, int] = {}
        # Exited but not yet reaped: its parent's wait4() still names it (in
        # the kernel's PID namespace, forgotten only beyond ZOMBIES_KEPT:
        # waits take no exit stop there).
        self._zombies: OrderedDict[int, int] = OrderedDict()    # host -> guest
        self._zombie_hosts: dict[int, int] = {}                   # guest -> host
        self._zombie_creds: dict[int, Cred] = {}                  # host -> its last identity
        self._requests: dict[int, int] = {}                       # creating tid -> wanted PID
        # Reaped lately: a SIGCHLD delivered after its wait4 still names it.
        self._reaped: OrderedDict[int, int] = OrderedDict()     # host -> guest
        self._ns = -1          # the kernel's PID namespace of the container (follow)

    def follow(self, ns: int) -> None:
        """From now on each task's PID is the kernel's in this PID
        namespace (an fd, which the map now owns)."""
        self._ns = ns

    @property
    def kernel(self) -> bool:
        """The kernel numbers the container's tasks (a PID namespace)."""
        return self._ns >= 0

    def close(self) -> None:
        if self._ns >= 0:
            os.close(self._ns)
            self._ns = -1

    def assign(self, host: int, wanted: int | None = None) -> int:
        """The container PID of a task, given now if it has none: the
        kernel's, or else the next free one or `wanted` (clone3's set_tid)."""
        guest = self._h2g.get(host)
        if guest is None:
            self._forget(host)
            self._reaped.pop(host, None)
            if self._ns >= 0:
                wanted = pid_in(self._ns, host)
                self._next = max(self._next, wanted + 1)
            elif wanted is None:
                while self.taken(self._next):
                    self._next += 1
                wanted = self._next
                self._next += 1
            guest = wanted
            self._h2g[host] = guest
            self._g2h[guest] = host
        return guest

    def taken(self, guest: int) -> bool:
        return guest in self._g2h or guest in self._zombie_hosts

    def request(self, tid: int, guest: int | None) -> None:
        """The next task `tid` creates gets container PID `guest` (None: the
        next free one)."""
        if guest is None:
            self._requests.pop(tid, None)
        else:
            self._requests[tid] = guest

    def requested(self, tid: int) -> int | None:
        """What `request` asked for the task `tid` creates now (once)."""
        return self._requests.pop(tid, None)

    def exited(self, host: int, cred: Cred | None = None) -> None:
        self._requests.pop(host, None)
        guest = self._h2g.pop(host, None)
        if guest is None:
            return
        self._g2h.pop(guest, None)
        self._zombies[host] = guest
        self._zombie_hosts[guest] = host
        if cred is not None:
            self._zombie_creds[host] = cred
        while len(self._zombies) > ZOMBIES_KEPT:
            self._forget(next(iter(self._zombies)))

    def _forget(self, host: int) -> None:
        guest = self._zombies.pop(host, None)
        self._zombie_creds.pop(host, None)
        if guest is not None:
            self._zombie_hosts.pop(guest, None)

    def reaped(self, host: int) -> int:
        """The guest PID of a child its parent just reaped (0 if unknown)."""
        guest = self.to_guest(host)
        self._forget(host)
        if guest:
            self._reaped[host] = guest
            while len(self._reaped) > REAPED_KEPT:
                self._reaped.popitem(last=False)
        return guest

    def to_guest(self, host: int) -> int:
        """0 for processes outside the container, as a PID namespace shows them."""
        guest = self._h2g.get(host)
        if guest is None:
            guest = self._zombies.get(host) or self._reaped.get(host, 0)
        return guest

    def to_host(self, guest: int) -> int | None:
        host = self._g2h.get(guest)
        return host if host is not None else self._zombie_hosts.get(guest)

    def zombie_cred(self, host: int) -> Cred | None:
        """The identity an exited, not yet reaped task had (SIGCHLD's si_uid)."""
        return self._zombie_creds.get(host)

    def last(self) -> int:
        """The container PID given last (the PID namespace's ns_last_pid;
        the highest one the kernel gave, in its namespace)."""
        return self._next - 1

    def guests(self) -> list[int]:
        return sorted(self._g2h)
