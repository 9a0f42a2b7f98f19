"""Credentials, emulated when the supervisor is unprivileged: the
container's processes see the configured user (root by default) and may
change it by Linux's rules (brandpy/runtime/identity.py).

While the container user is root, getuid & co are answered by BPF
(RET_ERRNO with data 0 returns 0, no stop). A thread that drops root gets a
second filter stacked on its own chain, turning those calls into SECCOMP_RET_TRAP
(which outranks RET_ERRNO): the supervisor answers the SIGSYS stop with the
emulated value and suppresses the signal, so the answer stays one stop.
The filter is installed by rewriting the thread's own set*id call into
seccomp(2): no extra stop either.
"""

from __future__ import annotations

import errno
import functools
import struct
from collections.abc import Callable

from brandpy.runtime import acting
from brandpy.runtime.call import Call
from brandpy.runtime.errors import Errno
from brandpy.runtime.identity import Cred
from brandpy.runtime.ids import pid_in, process_in
from brandpy.runtime.policy import CAP_NUMBERS, cap_mask
from brandpy.runtime.process import dumpable_after_change
from brandpy.runtime.seccomp import compile_filter, ret_allow, ret_trace

TRAP_DATA = 0xB7
SECCOMP_RET_TRAP = 0x00030000
SYS_seccomp = 317
SECCOMP_SET_MODE_FILTER = 1
GETID_NRS = (102, 104, 107, 108)   # getuid getgid geteuid getegid
SYS_fchdir = 81
NGROUPS_MAX = 65536
LINUX_CAPABILITY_VERSION_1 = 0x19980330
LINUX_CAPABILITY_VERSION_2 = 0x20071026
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def cred(call: Call) -> Cred:
    return call.proc.cred


def capable(call: Call, *caps: str) -> bool:
    """Whether the calling thread holds one of `caps` (CAP_* names):
    emulated ones unprivileged, the kernel's (CapEff) as root."""
    if call.sb.fake_ids:
        return any(call.proc.cred.capable(c) for c in caps)
    try:
        with open(b"/proc/%d/status" % call.tid, "rb") as f:
            held = next(int(line.split()[1], 16) for line in f if line.startswith(b"CapEff:"))
    except (OSError, StopIteration):
        return False
    return any(held >> CAP_NUMBERS[c] & 1 for c in caps)


def _u32(call: Call, i: int) -> int:
    """A uid/gid argument: -1 (0xffffffff) means "unchanged"."""
    v = call.arg(i) & 0xFFFFFFFF
    return -1 if v == 0xFFFFFFFF else v


def getuid(call: Call) -> int:
    return cred(call).ruid


def geteuid(call: Call) -> int:
    return cred(call).euid


def getgid(call: Call) -> int:
    return cred(call).rgid


def getegid(call: Call) -> int:
    return cred(call).egid


GETTERS = {102: getuid, 104: getgid, 107: geteuid, 108: getegid}


def getresuid(call: Call) -> int:
    c = cred(call)
    for i, v in enumerate((c.ruid, c.euid, c.suid)):
        call.write(call.arg(i), struct.pack("<I", v))
    return 0


def getresgid(call: Call) -> int:
    c = cred(call)
    for i, v in enumerate((c.rgid, c.egid, c.sgid)):
        call.write(call.arg(i), struct.pack("<I", v))
    return 0


def getgroups(call: Call) -> int:
    groups = cred(call).groups
    size = call.iarg(0)
    if size < 0:
        raise Errno(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise Errno(errno.EINVAL)
    call.write(call.arg(1), struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


def setgroups(call: Call) -> int:
    size = call.iarg(0)
    if not 0 <= size <= NGROUPS_MAX:
        raise Errno(errno.EINVAL)
    groups = struct.unpack(f"<{size}I", call.read(call.arg(1), 4 * size)) if size else ()
    cred(call).setgroups(tuple(groups))
    return 0


def _change(call: Call, change: Callable[[Cred], object]) -> int | None:
    """A set*id call: change the caller's credentials (Errno: none), then
    _changed."""
    before = cred(call).copy()
    change(cred(call))
    _commit(call, before)
    return _changed(call)


def _commit(call: Call, before: Cred) -> None:
    """Credentials changed from `before`: Linux's commit_creds also resets
    the dumpable flag (process.dumpable_after_change); the native engine's
    copy follows."""
    call.proc.dumpable = dumpable_after_change(before, cred(call), call.proc.dumpable)
    call.sb.changed(call.proc)


def _changed(call: Call) -> int | None:
    """After a successful change (committed): 0, or the set*id or capset
    call rewritten into seccomp() stacking the identity trap filter when
    this thread leaves root or its search capabilities."""
    c = cred(call)
    sb = call.sb
    if call.tid not in sb.id_trapped and sb.needs_id_trap(c):
        prog = trap_filter()
        insns = call.push(prog)
        fprog = call.push(struct.pack("<H6xQ", len(prog) // 8, insns))
        call.set_nr(SYS_seccomp)
        call.set_arg(0, SECCOMP_SET_MODE_FILTER)
        call.set_arg(1, 0)
        call.set_arg(2, fprog)
        sb.id_trapped.add(call.tid)
        return None
    return 0


# What the identity trap filter changes: the getters raise SIGSYS, and
# fchdir stops for its search check (fs.fchdir), which the host kernel
# cannot make between emulated users
TRAPPED: dict[int, int] = {**dict.fromkeys(GETID_NRS, SECCOMP_RET_TRAP | TRAP_DATA),
                           SYS_fchdir: ret_trace()}


@functools.cache
def trap_filter() -> bytes:
    return compile_filter(dict(TRAPPED), default=ret_allow(), foreign_arch=ret_allow())


def setuid(call: Call) -> int | None:
    return _change(call, lambda c: c.setuid(_u32(call, 0)))


def setgid(call: Call) -> int | None:
    return _change(call, lambda c: c.setgid(_u32(call, 0)))


def setreuid(call: Call) -> int | None:
    return _change(call, lambda c: c.setreuid(_u32(call, 0), _u32(call, 1)))


def setregid(call: Call) -> int | None:
    return _change(call, lambda c: c.setregid(_u32(call, 0), _u32(call, 1)))


def setresuid(call: Call) -> int | None:
    return _change(call, lambda c: c.setresuid(_u32(call, 0), _u32(call, 1), _u32(call, 2)))


def setresgid(call: Call) -> int | None:
    return _change(call, lambda c: c.setresgid(_u32(call, 0), _u32(call, 1), _u32(call, 2)))


def setfsuid(call: Call) -> int:
    before = cred(call).copy()
    old = cred(call).setfsuid(_u32(call, 0))
    _commit(call, before)
    return old


def setfsgid(call: Call) -> int:
    before = cred(call).copy()
    old = cred(call).setfsgid(_u32(call, 0))
    _commit(call, before)
    return old


CAP_VERSIONS = (LINUX_CAPABILITY_VERSION_1, LINUX_CAPABILITY_VERSION_2, LINUX_CAPABILITY_VERSION_3)


def _cap_header(call: Call) -> tuple[int, int]:
    """capget/capset's header: (version, pid)."""
    version, pid = struct.unpack("<Ii", call.read(call.arg(0), 8))
    return version, pid


def capget(call: Call) -> int:
    """Emulated, in Linux's order: an unknown version is answered with the
    preferred one (EINVAL, or 0 to a version probe with no data), then the
    pid: negative EINVAL, none ESRCH, a child not yet stopped once waited
    for (ids.process_in)."""
    version, pid = _cap_header(call)
    if version not in CAP_VERSIONS:
        call.write(call.arg(0), struct.pack("<I", LINUX_CAPABILITY_VERSION_3))
        if call.arg(1) == 0:
            return 0
        raise Errno(errno.EINVAL)
    if call.arg(1) == 0:
        return 0
    if pid < 0:
        raise Errno(errno.EINVAL)
    target = call.proc
    if pid:
        host = call.sb.pids.to_host(pid)
        if host is None:
            raise Errno(errno.ESRCH)
        target = process_in(call.sb, host)
    effective, permitted = cap_mask(target.cred.caps), cap_mask(target.cred.permitted)
    words = 1 if version == LINUX_CAPABILITY_VERSION_1 else 2
    data = b"".join(struct.pack("<III", (effective >> 32 * w) & 0xFFFFFFFF,
                                (permitted >> 32 * w) & 0xFFFFFFFF, 0) for w in range(words))
    call.write(call.arg(1), data)
    return 0


def capget_real(call: Call) -> None:
    """Real credentials: the kernel answers for the host task the
    header's container PID names (a copy of the header carries it)."""
    version, pid = _cap_header(call)
    if pid <= 0 or version not in CAP_VERSIONS or call.arg(1) == 0:
        return None       # answered before the pid is read, or the kernel's EINVAL
    call.set_arg(0, call.push(struct.pack("<Ii", version, pid_in(call.sb, pid))))
    return None


def capset_real(call: Call) -> int | None:
    """Real credentials: only the caller's own capabilities can be set,
    named by 0 or its own (container) TID."""
    version, pid = _cap_header(call)
    if pid == 0 or version not in CAP_VERSIONS:
        return None
    if pid != call.sb.pids.to_guest(call.tid):
        raise Errno(errno.EPERM)
    call.set_arg(0, call.push(struct.pack("<Ii", version, 0)))
    return None


def capset_tracked(call: Call) -> int | None:
    """capset_real, and the native engine learns the result."""
    capset_real(call)
    real_change(call)
    return None


def real_change(call: Call) -> None:
    """set*id with real credentials (supervisor root): run natively, then
    learn what the kernel did, for the calls the supervisor performs."""
    def learn(c: Call, result: int) -> None:
        if result >= 0:
            before = c.proc.cred.copy()
            acting.learn(c.tid, c.proc.cred)
            _commit(c, before)
    call.after(learn)


def capset(call: Call) -> int | None:
    """Linux's rules: permitted may only shrink, effective is any subset
    of the new permitted (so a dropped effective capability comes back)."""
    version, pid = _cap_header(call)
    if version not in CAP_VERSIONS:
        call.write(call.arg(0), struct.pack("<I", LINUX_CAPABILITY_VERSION_3))
        raise Errno(errno.EINVAL)
    if pid not in (0, call.sb.pids.to_guest(call.tid)):
        raise Errno(errno.EPERM)
    words = 1 if version == LINUX_CAPABILITY_VERSION_1 else 2
    raw = call.read(call.arg(1), 12 * words)
    effective = permitted = 0
    for w in range(words):
        e, p, _i = struct.unpack_from("<III", raw, 12 * w)
        effective |= e << 32 * w
        permitted |= p << 32 * w
    c = cred(call)
    if permitted & ~cap_mask(c.permitted) or effective & ~permitted:
        raise Errno(errno.EPERM)
    before = c.copy()
    c.caps = frozenset(name for name, bit in CAP_NUMBERS.items() if effective >> bit & 1)
    c.permitted = frozenset(name for name, bit in CAP_NUMBERS.items() if permitted >> bit & 1)
    _commit(call, before)
    return _changed(call)

