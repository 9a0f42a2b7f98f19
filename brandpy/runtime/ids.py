"""IDs crossing the container's boundary, in registers, structures and
side channels: host <-> container PIDs (the PID map) and, when identity is
emulated, UIDs and GIDs.

One place decides what the container sees of a host ID:
- a PID of one of its processes is its container PID; any other is 0, as
  a PID namespace shows processes outside it; 0 and negative values (none,
  the caller, -1 for "no process") pass unchanged;
- with emulated identity (an unprivileged supervisor), a UID or GID that
  a container process reports is that process's emulated credential; one
  of no container process is the supervisor's own (shown as root, as stat
  shows its files) or another host ID (the overflow ID 65534, as a user
  namespace shows unmapped IDs). With real identity (root) IDs are the host's.

A `Layout` says where the IDs sit in a structure; `to_guest`/`to_host`
translate a structure's bytes by it.

In a PID namespace of the kernel's (as root, brandpy/runtime/pids.py) what
a container process's own calls give and take are its namespace's PIDs,
the container's already: only PIDs the supervisor met itself (its /proc,
its own calls on a container's descriptor) are translated.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import Errno, Unborn

if TYPE_CHECKING:
    from .identity import Cred
    from .process import Process
    from .sandbox import Sandbox

OVERFLOW_ID = 65534
NO_ID = 0xFFFFFFFF        # (uid_t)-1: no user, passes unchanged


@dataclass(frozen=True)
class Layout:
    """4-byte ID fields of a structure. `uids`/`gids` name the credential
    (a Cred attribute) they report of the process at `pids[0]`, unless
    that process is not their owner (`owned` False)."""
    size: int
    pids: tuple[int, ...] = ()
    uids: tuple[tuple[int, str], ...] = ()
    gids: tuple[tuple[int, str], ...] = ()
    owned: bool = True


def pid_out(sb: Sandbox, host: int) -> int:
    """A PID the supervisor met (host PIDs), as the container sees it."""
    return sb.pids.to_guest(host) if host > 0 else host


def pid_in(sb: Sandbox, guest: int, err: int = errno.ESRCH) -> int:
    """A container PID for the container's own call; `err` when the
    container has none."""
    if guest <= 0 or sb.pids.kernel:
        return guest
    host = sb.pids.to_host(guest)
    if host is None:
        raise Errno(err)
    return host


def process_in(sb: Sandbox, host: int) -> Process:
    """The record of the container's task `host` (a PID a call names,
    translated) for a handler that reads it. Unborn when brandpy has not
    registered it: one just made (a fork's child named the moment fork
    returns) holds the call until its first stop; another is ESRCH."""
    proc = sb.process_of(host)
    if proc is None:
        raise Unborn(host)
    return proc


def parent_out(sb: Sandbox, host: int, host_ppid: int) -> int:
    """The parent of process `host` as getppid() shows it: 0 for a process
    started from outside (the entrypoint, exec'd processes), 1 for an
    orphan (reparented, as in a PID namespace, to its init)."""
    guest = sb.pids.to_guest(host_ppid)
    if guest:
        return guest
    proc = sb.process_of(host)
    return 0 if proc is None or proc.parent is None else 1


def cred_of(sb: Sandbox, host_pid: int) -> Cred | None:
    """The emulated credentials of a container process, also for a while
    after it exits (SIGCHLD and waitid report them)."""
    proc = sb.process_of(host_pid)
    return proc.cred if proc is not None else sb.pids.zombie_cred(host_pid)


def _id_out(host: int, own: int, value: int | None) -> int:
    if host == NO_ID:
        return host
    if value is not None:
        return value
    return 0 if host == own else OVERFLOW_ID


def uid_out(sb: Sandbox, host: int, cred: Cred | None = None, attr: str = "euid") -> int:
    if not sb.fake_ids:
        return host
    return _id_out(host, os.geteuid(), getattr(cred, attr) if cred is not None else None)


def gid_out(sb: Sandbox, host: int, cred: Cred | None = None, attr: str = "egid") -> int:
    if not sb.fake_ids:
        return host
    return _id_out(host, os.getegid(), getattr(cred, attr) if cred is not None else None)


def _field(data: bytes | bytearray, off: int) -> int | None:
    """A signed 4-byte field, None past a short buffer's end."""
    return struct.unpack_from("<i", data, off)[0] if off + 4 <= len(data) else None


def _put(data: bytearray, off: int, value: int) -> None:
    struct.pack_into("<I", data, off, value & 0xFFFFFFFF)


def to_guest(sb: Sandbox, data: bytes, layout: Layout, host: bool = False) -> bytes:
    """The structure as the container must see it (a short buffer keeps
    the fields it holds): one its own call got, or (host) one the
    supervisor got on its behalf."""
    out = bytearray(data)
    first = _field(out, layout.pids[0]) if layout.pids and layout.owned else None
    if first is not None and first > 0 and sb.pids.kernel and not host:
        first = sb.pids.to_host(first)     # the kernel wrote the container's PID
    owner = cred_of(sb, first) if first is not None and first > 0 else None
    for off in () if sb.pids.kernel and not host else layout.pids:
        value = _field(out, off)
        if value is not None:
            _put(out, off, pid_out(sb, value))
    for fields, out_fn in ((layout.uids, uid_out), (layout.gids, gid_out)):
        for off, attr in fields:
            value = _field(out, off)
            if value is not None:
                _put(out, off, out_fn(sb, value & 0xFFFFFFFF, owner, attr))
    return bytes(out)


# -- siginfo -----------------------------------------------------------------------

SI_USER, SI_MESGQ, SI_TKILL = 0, -3, -6
SIGCHLD = 17
CLD_LAST = 6                       # CLD_EXITED .. CLD_CONTINUED
SIGINFO = Layout(128, pids=(16,), uids=((20, "ruid"),))
SIGNALFD_SIGINFO = Layout(128, pids=(12,), uids=((16, "ruid"),))


def kernel_filled(sig: int, code: int) -> bool:
    """Whether si_pid/si_uid were filled in by the kernel (host IDs: kill,
    tkill, a message queue's notification, SIGCHLD) rather than by the
    sender of rt_sigqueueinfo (SI_QUEUE...: the container's own values,
    which reach the receiver unchanged, as on Linux)."""
    return code in (SI_USER, SI_TKILL, SI_MESGQ) or (sig == SIGCHLD and 0 < code <= CLD_LAST)


def siginfo_out(sb: Sandbox, info: bytes, layout: Layout = SIGINFO) -> bytes:
    """A siginfo on its way to the container."""
    sig, code = struct.unpack_from("<I4xi", info)    # the same offsets in both layouts
    return to_guest(sb, info, layout) if kernel_filled(sig, code) else info


def siginfo_in(sb: Sandbox, info: bytes, sig: int) -> bytes:
    """A siginfo the container sends (rt_sigqueueinfo & co): one with a
    kernel's code (allowed to the sender itself) gets its si_pid as the
    kernel would have written it, so that the receiving side shows it as
    sent. Other codes travel unchanged."""
    code = struct.unpack_from("<i", info, 8)[0]
    if len(info) < 24 or not kernel_filled(sig, code) or sb.pids.kernel:
        return info
    pid = struct.unpack_from("<i", info, 16)[0]
    host = sb.pids.to_host(pid) if pid > 0 else None
    if host is None:
        return info
    return info[:16] + struct.pack("<i", host) + info[20:]
