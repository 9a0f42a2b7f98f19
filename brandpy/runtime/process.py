"""Per-process and per-thread state the kernel does not keep for us.

The kernel already tracks cwd, fds, credentials and memory of each tracee;
the supervisor only keeps what the guest sees differently: its root (chroot
inside the container), the program /proc/self/exe should name (the kernel
sees ld.so when a dynamic program is started through its interpreter), the
identity the guest believes it has, and the mount and UTS namespaces it
unshared (brandpy emulates them: runtime/namespaces.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .identity import Cred
from .mounts import MountTable
from .namespaces import Uts

COMM_LEN = 15    # TASK_COMM_LEN - 1: a process name's longest
SUID_DUMPABLE = "/proc/sys/fs/suid_dumpable"


def dumpable_after_exec(cred: Cred) -> bool:
    """What PR_GET_DUMPABLE says after an exec, by Linux's rule
    (begin_new_exec): 1, but fs.suid_dumpable for a program that leaves
    the effective IDs other than the real ones (setuid, setgid). Not
    followed: the kernel's suid_dumpable for a program the caller may run
    but not read."""
    return cred.euid == cred.ruid and cred.egid == cred.rgid or _suid_dumpable()


def dumpable_after_change(before: Cred, after: Cred, dumpable: bool) -> bool:
    """What PR_GET_DUMPABLE says after a credential change, by Linux's rule
    (commit_creds): fs.suid_dumpable once the effective or filesystem IDs
    change or permitted capabilities grow, else what it said."""
    if (before.euid, before.egid, before.fsuid, before.fsgid) == \
            (after.euid, after.egid, after.fsuid, after.fsgid) and \
            after.permitted <= before.permitted:
        return dumpable
    return _suid_dumpable()


def _suid_dumpable() -> bool:
    """fs.suid_dumpable (its 2, "root-readable dumps", reads as 1 here)."""
    with open(SUID_DUMPABLE) as f:
        return int(f.read()) != 0


@dataclass(frozen=True)
class ExecImage:
    """What a successful execve makes the process: its guest program, and
    how the host path and ELF loader prefix show in what the kernel reports."""
    exe: bytes
    comm: bytes = b""            # its name, as the kernel would give it in the container
    kernel_comm: bytes = b""     # the name the kernel gave it (the host file's, or ld.so's)
    loader_args: int = 0         # argv entries exec prepended: 4 (--argv0 form), 1, or 0
    cred: Cred | None = None     # emulated credentials the exec gives (setuid, capabilities)
    program: tuple[int, int] | None = None   # (st_dev, st_ino) of what the loader maps


@dataclass
class Process:
    """A thread group (what the guest calls a process)."""

    tgid: int
    root: bytes = b"/"              # guest path of this process's root (chroot)
    exe: bytes | None = None        # guest path of the running program
    image: ExecImage | None = None
    parent: int | None = None       # host tgid of the creating process
    threads: set[int] = field(default_factory=set)
    exec_pending: ExecImage | None = None   # committed at PTRACE_EVENT_EXEC
    pidfd: int | None = None            # opened on first use, for pidfd_getfd
    dumpable: bool = True               # what prctl(PR_GET_DUMPABLE) should say
    cred: Cred = field(default_factory=Cred)   # emulated credentials (unprivileged mode)
    # namespaces it unshared (None: the container's own), shared with its children
    mounts: MountTable | None = None
    uts: Uts | None = None

    def fork(self, tgid: int) -> Process:
        return Process(tgid=tgid, root=self.root, exe=self.exe, image=self.image,
                       parent=self.tgid, dumpable=self.dumpable, cred=self.cred.copy(),
                       mounts=self.mounts, uts=self.uts)

    @property
    def comm(self) -> bytes:
        return self.image.comm if self.image else b""

    @property
    def kernel_comm(self) -> bytes:
        return self.image.kernel_comm if self.image else b""

    @property
    def loader_args(self) -> int:
        return self.image.loader_args if self.image else 0
