"""Per-process and per-thread state the kernel does not keep for us.

The kernel already tracks cwd, fds, credentials and memory of each tracee;
the supervisor only keeps what the guest sees differently: its root (chroot
inside the container), the program /proc/self/exe should name (the kernel
sees ld.so when a dynamic program is started through its interpreter), and
the identity the guest believes it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Errno(Exception):
    """Raised by handlers and the resolver: the syscall fails with -errno."""

    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(errno, why)
        self.errno = errno
        self.why = why


@dataclass
class Process:
    """A thread group (what the guest calls a process)."""

    tgid: int
    root: bytes = b"/"              # guest path of this process's root (chroot)
    exe: bytes | None = None        # guest path of the running program
    parent: int | None = None       # host tgid of the creating process
    threads: set[int] = field(default_factory=set)
    exec_pending: bytes | None = None   # exe to commit at PTRACE_EVENT_EXEC
    pidfd: int | None = None            # opened on first use, for pidfd_getfd
    dumpable: bool = True               # what prctl(PR_GET_DUMPABLE) should say

    def fork(self, tgid: int) -> Process:
        return Process(tgid=tgid, root=self.root, exe=self.exe, parent=self.tgid,
                       dumpable=self.dumpable)
