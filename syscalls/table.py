"""brandpy's syscall table: one row for every x86_64 syscall number.

This is the single source of truth. The seccomp-BPF filter, the Python
dispatch, the coverage report and the README's table are all derived from
it. Each row joins Linux's facts (linux_x86_64.tsv: name, argument kinds,
the release that introduced it) with brandpy's decision:

  allow        runs natively (BPF ALLOW)                         ~native
  const V      answered by BPF without running (RET_ERRNO|0)     ~native, no stop
  deny E       fails with errno E in BPF (policy)                ~native, no stop
  trace H      one ptrace stop, handler H emulates or rewrites   one round trip
  perform H    user notification: the supervisor performs the    microseconds
               call on descriptors (C, or handler H in Python)
  nosys        no such syscall (gap or removed): ENOSYS in BPF

`when` makes a trace row conditional on its arguments (trap sendto only
with a destination address...). Support levels, as in gVisor's and LX's
tables: full (behaves as on Linux), partial (works, with the noted
differences), unimplemented (fails where Linux would act), none (Linux
itself has no such call).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, replace

from brandpy.runtime.call import Inject
from brandpy.runtime.seccomp import Action, ArgTest, ret_allow, ret_notify, ret_trace

from . import linux
from .handlers import exec as exec_
from .handlers import (
    fs,
    guest_ptrace,
    ident,
    inodeflags,
    opath,
    owners,
    pids,
    prio,
    process,
    sendmsg,
    signals,
    sock,
    sockcreds,
    sysv,
    tty,
    uts,
)
from .handlers import mount as mount_
from .handlers import perform as perform_

Handler = Callable[..., "int | Inject | None"]   # an Inject: see Supervisor._hand_off
# a user-notification handler may also answer with an fd to install in the caller
NotifyHandler = Callable[..., "int | Inject | None"]

FULL, PARTIAL, UNIMPLEMENTED, NONE = "full", "partial", "unimplemented", "none"


@dataclass(frozen=True)
class Spec:
    disposition: str                    # allow | const | deny | trace | perform | nosys | identity
    support: str
    note: str = ""
    value: int = 0                      # const value or deny errno
    handler: Handler | None = None
    when: Callable[[Action, Action], Action] | None = None   # (trap, otherwise) -> action
    fake: Spec | None = None            # used instead when identity is emulated (unprivileged)
    fake_root: Spec | None = None       # identity rows: container user root / not root
    fake_user: Spec | None = None
    notify: NotifyHandler | None = None   # performs the call in the user-notification tier
    real_tracked: Spec | None = None    # real credentials, native engine: learn changes
    pidns: Spec | None = None           # used instead in a PID namespace of the kernel's


def allow(note: str = "", support: str = FULL) -> Spec:
    return Spec("allow", support, note)


def deny(err: int, note: str, support: str = UNIMPLEMENTED) -> Spec:
    return Spec("deny", support, note, value=err)


def trace(handler: Handler, note: str = "", support: str = FULL,
          when: Callable[[Action, Action], Action] | None = None) -> Spec:
    return Spec("trace", support, note, handler=handler, when=when)


def nosys(note: str) -> Spec:
    return Spec("nosys", NONE, note, value=errno.ENOSYS)


def const(value: int, note: str = "") -> Spec:
    """Answered by BPF (SECCOMP_RET_ERRNO with data 0 returns 0; only 0 is
    possible: larger data would read as an error)."""
    assert value == 0
    return Spec("const", FULL, note, value=0)


FAKE = "unprivileged: "


def real_or_fake(real: Spec, handler: Handler, fake_note: str, performed: bool = False) -> Spec:
    """`real` when the supervisor is root and the identity is real;
    unprivileged, emulated by `handler` at a ptrace stop (performed: through
    user notification)."""
    fake = perform(handler, fake_note, real.support) if performed else \
        Spec("trace", real.support, fake_note, handler=handler)
    return replace(real, note=f"{real.note}; {FAKE}{fake_note}".lstrip("; "), fake=fake)


def perform(handler: NotifyHandler, note: str, support: str = FULL, ptrace: Handler | None = None,
            ptrace_when: Callable[[Action, Action], Action] | None = None,
            only_when: Callable[[Action, Action], Action] | None = None) -> Spec:
    """Performed by the supervisor for the caller (brandpy/runtime/pathres.py,
    syscalls/handlers/), reached through seccomp user notification in every
    engine: answered in C (native/notify.c) where it can, else by `handler`.
    `ptrace_when` sends some argument values to the `ptrace` handler instead;
    `only_when` lets the others (those ptrace_when does not take) run
    natively. The row's `when` is then (trap, notify) -> action (routed())."""
    return Spec("perform", support, note, handler=ptrace, notify=handler,
                when=_split(ptrace_when, only_when))


def _split(ptrace_when: Callable[[Action, Action], Action] | None,
           only_when: Callable[[Action, Action], Action] | None
           ) -> Callable[[Action, Action], Action] | None:
    if only_when is None:
        return ptrace_when
    notified = only_when

    def when(trap: Action, notify: Action) -> Action:
        rest = notified(notify, ret_allow())
        return rest if ptrace_when is None else ptrace_when(trap, rest)
    return when


def routed(spec: Spec) -> Action:
    """A perform row's action: notified, but for the arguments its `when`
    sends to ptrace (RET_TRACE) or lets run (RET_ALLOW)."""
    return ret_notify() if spec.when is None else spec.when(ret_trace(), ret_notify())


def o_path(i: int) -> Callable[[Action, Action], Action]:
    """An O_PATH fd cannot be installed by SECCOMP_IOCTL_NOTIF_ADDFD: such
    opens stop for ptrace (handlers/opath.py)."""
    return lambda trap, other: ArgTest(i, "set", O_PATH, then=trap, otherwise=other)


O_PATH = 0o10000000


def identity(handler: Handler) -> Spec:
    """get*id: native with a real identity; unprivileged, answered in BPF
    while the container user is root, else emulated."""
    note = "real as root; unprivileged: emulated, answered in BPF (0) while the user is root"
    return Spec("allow", FULL, note, fake=Spec(
        "identity", FULL, note, fake_root=const(0), fake_user=trace(handler)))


def user_checked(handler: Handler, note: str) -> Spec:
    """Native, but with emulated identities `handler` checks the calls of
    a user the kernel cannot tell from root: traced for a container user
    other than root, and for a thread of a root container that leaves root
    or its search capabilities, by the identity trap filter (ident.py)."""
    return Spec("allow", FULL, note, fake=Spec(
        "identity", FULL, note, fake_root=Spec("allow", FULL, note, handler=handler),
        fake_user=trace(handler, note)))


def arg_nonzero(i: int) -> Callable[[Action, Action], Action]:
    """Trap only when pointer argument i is not NULL."""
    return lambda trap, other: ArgTest(i, "eq64", 0, then=other, otherwise=trap)


def pid_given(i: int) -> Callable[[Action, Action], Action]:
    """Trap only when PID argument i names a process (0 means the caller)."""
    return lambda trap, other: ArgTest(i, "eq", 0, then=other, otherwise=trap)


def arg_negative(i: int) -> Callable[[Action, Action], Action]:
    """Trap only when int argument i is negative."""
    return lambda trap, other: ArgTest(i, "set", 0x80000000, then=trap, otherwise=other)


def arg_in(i: int, *values: int) -> Callable[[Action, Action], Action]:
    """Trap only when int argument i is one of `values`: a binary search
    over them (ioctl traps some thirty commands; a chain of compares would
    be the filter's longest path)."""
    def build(trap: Action, other: Action) -> Action:
        def search(vs: list[int]) -> Action:
            if len(vs) <= 3:
                action = other
                for v in reversed(vs):
                    action = ArgTest(i, "eq", v, then=trap, otherwise=action)
                return action
            mid = len(vs) // 2
            return ArgTest(i, "ge", vs[mid], then=search(vs[mid:]), otherwise=search(vs[:mid]))
        return search(sorted({v & 0xFFFFFFFF for v in values}))
    return build


PATH = "path resolved inside the container"
PERFORMED = "performed on descriptors inside the container"
PERFORMED_WRITE = PERFORMED + "; EROFS on read-only mounts"
FD_CHANGE = "EROFS on read-only mounts; an image file's copy is changed by the supervisor"
FD_XATTR = ("made by the supervisor on the fd's file (an image file's copy), the name read "
            "once; EROFS on read-only mounts; brandpy's own xattrs refused (EPERM)")
OWN_HIDDEN = "brandpy's own xattrs hidden (ENODATA, not listed)"
OWNED = "; " + "unprivileged: ownership recorded in an xattr and reported by stat"
PIDS = "PIDs limited to (and translated for) the container's processes"
PIDS_SELF = PIDS + "; pid 0 (the caller) runs natively"
NO_CHILD = " (exit stop for a reaped PID; ECHILD at entry, no exit stop, without children)"
OWNERSHIP = "ownership recorded in an xattr and reported by stat"
MODES = "modes recorded in an xattr (the host file keeps owner rw)"
ROOT_ACCESS = "the container's root passes checks as root does"
DEVICES = "device nodes recorded as files with their type in an xattr"
DOCKER = "denied (EPERM) as in Docker's default profile"
PRIVILEGED = "with CAP_SYS_ADMIN (Docker's profile allows it then, EPERM else): "
NEVER = "never implemented on x86_64 Linux (ENOSYS there too)"
SIGNALFD = ("native; the fd number a new signalfd gets has its reads trapped in the process "
            "(its records carry the sender's IDs)")
SIGINFO_SENT = "a siginfo with a kernel's code carries the sender's PID as the kernel would"
SCM_RECV = "in processes that turned SO_PASSCRED on, SCM_CREDENTIALS shows container IDs"
LOCAL = ("on the host's network (unprivileged), a local destination reaches only the "
         "container's own or its peers' ports, published ports translated")
SENT = (PERFORMED + ", every call (BPF cannot see msg_name in a msghdr; in C without a "
        "destination or control data); SCM_RIGHTS passed, an explicit SCM_CREDENTIALS refused "
        "(EPERM); a receiver with SO_PASSCRED sees the supervisor's credentials; " + LOCAL)
# the spawner's IPC namespace (native/spawner.c) where there are kernel walls
OWN_IPC = ("native, in the container's own IPC namespace (the host's where there are no kernel "
           "namespaces: unprivileged on a host that forbids user namespaces)")
IPC_STATUS = OWN_IPC + "; the PIDs and IDs of the status commands are the container's"


def _ioctls(trap: Action, other: Action) -> Action:
    """The ioctls that carry IDs (PIDFD_GET_INFO of any size, the terminal
    and socket owner ones) and the terminal ones that reach beyond the
    container's own terminals (handlers/tty.py)."""
    rest = arg_in(1, *tty.COMMANDS, *inodeflags.COMMANDS, pids.TIOCGPGRP, pids.TIOCSPGRP,
                  pids.TIOCGSID, owners.NS_GET_OWNER_UID, *owners.SOCKET_OWNER_CMDS)(trap, other)
    return ArgTest(1, "eq", owners.PIDFD_GET_INFO, then=trap, otherwise=rest,
                   mask=owners.PIDFD_GET_INFO_MASK)


SPEC: dict[str, Spec] = {
    # -- files and descriptors: native ---------------------------------------
    **{name: allow() for name in (
        "write", "close", "poll", "lseek", "pread64", "pwrite64",
        "writev", "pipe", "select", "dup", "dup2", "dup3", "pipe2", "flock", "fsync",
        "fdatasync", "ftruncate", "getdents", "getdents64", "sendfile",
        "readahead", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "pselect6", "ppoll",
        "splice", "tee", "vmsplice", "sync_file_range", "fallocate", "preadv", "pwritev",
        "preadv2", "pwritev2", "copy_file_range", "sync", "syncfs", "inotify_init",
        "inotify_init1", "inotify_rm_watch", "eventfd", "eventfd2",
        "timerfd_create", "timerfd_settime", "timerfd_gettime", "memfd_create", "close_range",
        "io_setup", "io_destroy", "io_getevents", "io_submit", "io_cancel", "io_pgetevents",
        "fadvise64", "cachestat", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
        "mq_notify", "mq_getsetattr")},
    **{name: Spec("allow", FULL, "native; reads of a signalfd (trapped only in processes that "
                  "made one) show container IDs in its records", handler=signals.signalfd_read)
       for name in ("read", "readv")},
    "signalfd": trace(signals.signalfd, SIGNALFD),
    "signalfd4": trace(signals.signalfd, SIGNALFD),
    "fcntl": Spec("allow", FULL, "native; the IDs of F_GETLK/F_OFD_GETLK (l_pid), "
                  "F_[GS]ETOWN(_EX) and F_GETOWNER_UIDS are the container's", handler=owners.fcntl,
                  when=arg_in(1, *owners.FCNTL_CMDS)),
    "ioctl": Spec("allow", FULL, "native; terminal and device ioctls act on the real "
                  "device; FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR and FS_IOC_SETVERSION performed "
                  "(an image file copied up first); the IDs of TIOC[GS]PGRP, TIOCGSID, FIO[GS]ETOWN, SIOC[GS]PGRP, "
                  "PIDFD_GET_INFO and NS_GET_OWNER_UID are the container's; TIOCSTI EIO (as "
                  "dev.tty.legacy_tiocsti=0), TIOCLINUX and TIOCCONS EPERM; TIOCGPTN and "
                  "TIOCGPTPEER (performed by the supervisor) put the pty in the container's "
                  "/dev/pts", handler=tty.ioctl, when=_ioctls),
    # -- files: paths resolved and calls performed by the supervisor --------------------
    "open": perform(perform_.open_, PERFORMED_WRITE, ptrace=opath.open_, ptrace_when=o_path(1)),
    "openat": perform(perform_.openat, PERFORMED_WRITE, ptrace=opath.openat,
                      ptrace_when=o_path(2)),
    "creat": perform(perform_.creat, PERFORMED_WRITE),
    "openat2": trace(opath.openat2, PERFORMED + "; RESOLVE_IN_ROOT/BENEATH/NO_SYMLINKS "
                     "applied by the resolver; the fd is installed through user notification, "
                     "an O_PATH open as open's"),
    "stat": perform(fs.stat_, PERFORMED + OWNED),
    "lstat": perform(fs.lstat, PERFORMED + OWNED),
    "newfstatat": perform(fs.newfstatat, PERFORMED + OWNED),
    "statx": perform(fs.statx, PERFORMED + OWNED),
    "fstat": real_or_fake(allow(), fs.fstat, OWNERSHIP, performed=True),
    "statfs": perform(fs.statfs, PERFORMED + "; reports the host file system, read-only as "
                      "the container's mount is"),
    "fstatfs": allow("the host file system and its mount's flags (not the container's "
                     "read-only ones)"),
    "access": perform(perform_.access, PERFORMED + "; " + ROOT_ACCESS),
    "faccessat": perform(perform_.faccessat, PERFORMED + "; " + ROOT_ACCESS),
    "faccessat2": perform(perform_.faccessat2, PERFORMED + "; " + ROOT_ACCESS),
    "readlink": perform(fs.readlink, PERFORMED + "; /proc magic links name guest paths"),
    "readlinkat": perform(fs.readlinkat, PERFORMED + "; /proc magic links name guest paths"),
    "mkdir": perform(fs.mkdir, PERFORMED_WRITE),
    "mkdirat": perform(fs.mkdirat, PERFORMED_WRITE),
    "mknod": perform(fs.mknod, PERFORMED_WRITE + "; " + FAKE + DEVICES),
    "mknodat": perform(fs.mknodat, PERFORMED_WRITE + "; " + FAKE + DEVICES),
    "rmdir": perform(fs.rmdir, PERFORMED_WRITE),
    "unlink": perform(fs.unlink, PERFORMED_WRITE),
    "unlinkat": perform(fs.unlinkat, PERFORMED_WRITE),
    "symlink": perform(fs.symlink, PERFORMED_WRITE + "; the target is stored as guest text"),
    "symlinkat": perform(fs.symlinkat, PERFORMED_WRITE + "; the target is stored as guest text"),
    "rename": perform(fs.rename, PERFORMED_WRITE + "; EXDEV between mounts"),
    "renameat": perform(fs.renameat, PERFORMED_WRITE + "; EXDEV between mounts"),
    "renameat2": perform(fs.renameat2, PERFORMED_WRITE + "; EXDEV between mounts"),
    "link": perform(fs.link, PERFORMED_WRITE + "; EXDEV between mounts"),
    "linkat": perform(fs.linkat, PERFORMED_WRITE + "; EXDEV between mounts"),
    "chmod": perform(fs.chmod, PERFORMED_WRITE + "; " + FAKE + MODES),
    "fchmodat": perform(fs.fchmodat, PERFORMED_WRITE + "; " + FAKE + MODES),
    "fchmodat2": perform(fs.fchmodat2, PERFORMED_WRITE + "; " + FAKE + MODES),
    "chown": perform(fs.chown, PERFORMED_WRITE + "; " + FAKE + OWNERSHIP),
    "lchown": perform(fs.lchown, PERFORMED_WRITE + "; " + FAKE + OWNERSHIP
                      + " (not for symlinks)"),
    "fchownat": perform(fs.fchownat, PERFORMED_WRITE + "; " + FAKE + OWNERSHIP),
    "fchmod": real_or_fake(trace(fs.fd_metadata, FD_CHANGE), fs.fchmod, MODES, performed=True),
    "fchown": real_or_fake(trace(fs.fd_metadata, FD_CHANGE), fs.fchown, OWNERSHIP,
                           performed=True),
    "fsetxattr": trace(fs.fd_metadata, FD_XATTR),
    "fremovexattr": trace(fs.fd_metadata, FD_XATTR),
    "truncate": perform(fs.truncate, PERFORMED_WRITE),
    "utime": perform(fs.utime, PERFORMED_WRITE),
    "utimes": perform(fs.utimes, PERFORMED_WRITE),
    "futimesat": perform(fs.futimesat, PERFORMED_WRITE),
    "utimensat": perform(fs.utimensat, PERFORMED_WRITE),
    "setxattr": perform(fs.setxattr, PERFORMED_WRITE),
    "removexattr": perform(fs.removexattr, PERFORMED_WRITE),
    "lsetxattr": perform(fs.lsetxattr, PERFORMED_WRITE),
    "lremovexattr": perform(fs.lremovexattr, PERFORMED_WRITE),
    "fgetxattr": perform(fs.fgetxattr, PERFORMED + "; " + OWN_HIDDEN),
    "flistxattr": perform(fs.flistxattr, PERFORMED + "; " + OWN_HIDDEN),
    "getxattr": perform(fs.getxattr, PERFORMED + "; " + OWN_HIDDEN),
    "listxattr": perform(fs.listxattr, PERFORMED + "; " + OWN_HIDDEN),
    "lgetxattr": perform(fs.lgetxattr, PERFORMED + "; " + OWN_HIDDEN),
    "llistxattr": perform(fs.llistxattr, PERFORMED + "; " + OWN_HIDDEN),
    "setxattrat": perform(fs.setxattrat, PERFORMED_WRITE),
    "removexattrat": perform(fs.removexattrat, PERFORMED_WRITE),
    "getxattrat": perform(fs.getxattrat, PERFORMED + "; " + OWN_HIDDEN),
    "listxattrat": perform(fs.listxattrat, PERFORMED + "; " + OWN_HIDDEN),
    "file_getattr": perform(fs.file_getattr, PERFORMED),
    "file_setattr": perform(fs.file_setattr, PERFORMED_WRITE),
    "chdir": trace(fs.chdir, PATH + "; made by the process on the host path (the Landlock "
                   "walls confine it; later paths resolve from the cwd's guest path)"),
    "fchdir": user_checked(fs.fchdir, "native; unprivileged, a non-root user's call stops "
                           "for the directory's search check first"),
    "getcwd": perform(fs.getcwd, "emulated: the guest path of the cwd"),
    "chroot": perform(fs.chroot, "emulated per process: later paths resolve in the new root"),
    "inotify_add_watch": perform(fs.inotify_add_watch, PERFORMED),
    "fanotify_mark": perform(fs.fanotify_mark, PERFORMED),
    "name_to_handle_at": perform(fs.name_to_handle_at, PERFORMED),
    "execve": trace(exec_.execve, "guest #! interpreters and ELF loader (ld.so) run "
                    "from the container; made by the process on the host path (the Landlock "
                    "walls confine it)"),
    "execveat": trace(exec_.execveat, "as execve; fexecve of a dynamic memfd needs the "
                      "guest loader to open /proc/self/fd/N"),
    # -- sockets ------------------------------------------------------------------
    **{name: allow() for name in ("socketpair", "listen", "shutdown")},
    "socket": allow(),
    "getsockopt": Spec("allow", FULL, "native; SO_PEERCRED and SO_PEERGROUPS answered with the "
                       "peer's container IDs", handler=sockcreds.getsockopt,
                       when=arg_in(2, sockcreds.SO_PEERCRED, sockcreds.SO_PEERGROUPS)),
    "setsockopt": Spec("allow", FULL, "native; SO_PASSCRED first traps the process's "
                       "receives, for SCM_CREDENTIALS", handler=sockcreds.setsockopt,
                       when=arg_in(2, sockcreds.SO_PASSCRED)),
    "sendmsg": perform(sendmsg.sendmsg, SENT, support=PARTIAL),
    "sendmmsg": perform(sendmsg.sendmmsg, SENT + "; msg_len set for each message sent",
                        support=PARTIAL),
    "recvmsg": Spec("allow", PARTIAL, "native: an AF_UNIX source in msg_name is not "
                    "translated; " + SCM_RECV, handler=sockcreds.recvmsg),
    "recvmmsg": Spec("allow", FULL, "native; " + SCM_RECV, handler=sockcreds.recvmsg),
    "bind": perform(sock.bind, PERFORMED + " (AF_UNIX paths); ports translated"),
    "connect": perform(sock.connect, PERFORMED + " (AF_UNIX paths); " + LOCAL),
    "sendto": perform(sock.sendto, PERFORMED + " when it names a destination; " + LOCAL,
                      only_when=arg_nonzero(4)),
    "getsockname": trace(sock.getsockname, "AF_UNIX names shown as guest paths"),
    "getpeername": trace(sock.getpeername, "AF_UNIX names shown as guest paths"),
    "accept": trace(sock.accept, "AF_UNIX peer names shown as guest paths",
                    when=arg_nonzero(1)),
    "accept4": trace(sock.accept4, "AF_UNIX peer names shown as guest paths",
                     when=arg_nonzero(1)),
    "recvfrom": trace(sock.recvfrom, "AF_UNIX source names shown as guest paths",
                      when=arg_nonzero(4)),
    # -- memory -------------------------------------------------------------------
    **{name: allow() for name in (
        "mmap", "mprotect", "munmap", "brk", "mremap", "msync", "mincore", "madvise",
        "mlock", "munlock", "mlockall", "munlockall", "mlock2", "remap_file_pages",
        "pkey_mprotect", "pkey_alloc", "pkey_free", "membarrier", "memfd_secret",
        "map_shadow_stack", "mseal", "process_mrelease")},
    # the caller's own memory policy: Docker's default profile allows these with
    # CAP_SYS_NICE only, and the profile layer decides as it does there
    **{name: allow("native; Docker's default profile allows it only with CAP_SYS_NICE "
                   "(--cap-add SYS_NICE)")
       for name in ("mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node")},
    "migrate_pages": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "move_pages": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "userfaultfd": deny(errno.EPERM, DOCKER),
    # -- processes ------------------------------------------------------------------
    **{name: allow() for name in (
        "exit", "exit_group", "set_robust_list", "arch_prctl", "sched_yield",
        "restart_syscall", "rseq", "getcpu", "personality")},
    "seccomp": allow("filters of the container's own apply as on Linux, stacked on "
                     "brandpy's, which never trusts their data; a user-notification "
                     "listener of its own is refused (EBUSY): brandpy's holds the chain's one"),
    "pidfd_send_signal": trace(signals.pidfd_send_signal, PIDS + "; " + SIGINFO_SENT),
    "setsid": trace(pids.setsid, "returns the container's session ID (exit stop)"),
    "getpid": perform(pids.getpid, "the container PID (the entrypoint is 1)"),
    "gettid": perform(pids.gettid, "the container TID"),
    "getppid": perform(pids.getppid, "the container PID; 0 outside the container, 1 for "
                       "orphans"),
    "getpgrp": trace(pids.getpgrp, PIDS),
    "getpgid": trace(pids.getpgid, PIDS),
    "getsid": trace(pids.getsid, PIDS),
    "setpgid": trace(pids.setpgid, PIDS),
    "set_tid_address": trace(pids.set_tid_address, "returns the container TID (exit stop)"),
    "wait4": trace(pids.wait4, PIDS + NO_CHILD),
    "waitid": trace(pids.waitid, PIDS + NO_CHILD),
    "fork": allow("followed by the supervisor (PTRACE_EVENT_FORK)"),
    "vfork": allow("followed by the supervisor (PTRACE_EVENT_VFORK)"),
    "clone": Spec("allow", FULL, "followed by the supervisor; new namespaces denied (EPERM): "
                  "brandpy emulates them; CLONE_UNTRACED dropped, so every child is traced",
                  handler=process.clone,
                  when=lambda trap, other: ArgTest(
                      0, "set", process.CLONE_NAMESPACES | process.CLONE_UNTRACED,
                      then=trap, otherwise=other)),
    "clone3": trace(process.clone3, "made as clone from one read of its arguments (a sibling "
                    "thread cannot change them after the check); namespace flags denied "
                    "(EPERM), CLONE_UNTRACED dropped; set_tid gives the container PID asked "
                    "for; CLONE_INTO_CGROUP and CLONE_CLEAR_SIGHAND: ENOSYS (libc falls back)",
                    support=PARTIAL),
    "kill": trace(pids.kill, PIDS + "; kill(-1) signals only the container"),
    "tkill": trace(pids.tkill, PIDS),
    "tgkill": trace(pids.tgkill, PIDS),
    "rt_sigqueueinfo": trace(signals.sigqueueinfo, PIDS + "; " + SIGINFO_SENT),
    "rt_tgsigqueueinfo": trace(signals.tgsigqueueinfo, PIDS + "; " + SIGINFO_SENT),
    "pidfd_open": trace(pids.first_pid, PIDS),
    "process_vm_readv": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "process_vm_writev": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "get_robust_list": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "prlimit64": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_setaffinity": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_getaffinity": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_setparam": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_getparam": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_setscheduler": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_getscheduler": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_setattr": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_getattr": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    "sched_rr_get_interval": trace(pids.first_pid, PIDS_SELF, when=pid_given(0)),
    **{name: trace(prio.priority, PIDS + "; a user's processes are the container's")
       for name in ("getpriority", "setpriority", "ioprio_get", "ioprio_set")},
    "sched_get_priority_max": allow(),
    "sched_get_priority_min": allow(),
    "ptrace": trace(guest_ptrace.ptrace, "emulated (the supervisor is the real tracer): "
                    "TRACEME, ATTACH, SEIZE, INTERRUPT, CONT, SYSCALL, SINGLESTEP, LISTEN, "
                    "DETACH, KILL, PEEK/POKE text, data and user, GET/SETREGS, GET/SETFPREGS, "
                    "GET/SETREGSET, SETOPTIONS (not TRACESECCOMP's "
                    "events), GETEVENTMSG, GET/SETSIGINFO, GET/SETSIGMASK, GET_SYSCALL_INFO; "
                    "stops reported by wait4/waitid with container PIDs; only the "
                    "container's processes, by Linux's rules (no Yama)", support=PARTIAL),
    "prctl": perform(process.prctl, "native; PR_GET_NAME and PR_GET/SET_DUMPABLE performed: "
                     "the name is the container's for the program, dumpable recorded, not "
                     "applied (so the supervisor keeps access to /proc), and reset by exec and "
                     "ID changes as Linux does; PR_SET_PTRACER's PID translated", ptrace=process.set_ptracer,
                     ptrace_when=arg_in(0, process.PR_SET_PTRACER),
                     only_when=arg_in(0, *process.PERFORMED)),
    "kcmp": trace(pids.two_pids, PIDS),
    "pidfd_getfd": deny(errno.EPERM, DOCKER),
    "process_madvise": deny(errno.EPERM, DOCKER),
    "unshare": trace(mount_.unshare, PRIVILEGED + "mount and UTS namespaces emulated per "
                     "process; as root IPC, network, cgroup and time ones made by the kernel; "
                     "user and PID namespaces EPERM", PARTIAL),
    "setns": trace(mount_.setns, PRIVILEGED + "joins the mount and UTS namespaces of the process "
                   "a pidfd names, or with a namespace file the container's own", PARTIAL),
    # -- signals --------------------------------------------------------------------
    **{name: allow() for name in (
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigsuspend", "sigaltstack", "pause", "alarm", "getitimer", "setitimer")},
    "rt_sigtimedwait": trace(signals.sigtimedwait, "the siginfo shows the sender's container "
                             "IDs (exit stop)"),
    # -- credentials ----------------------------------------------------------------
    "getuid": identity(ident.getuid),
    "geteuid": identity(ident.geteuid),
    "getgid": identity(ident.getgid),
    "getegid": identity(ident.getegid),
    **{name: real_or_fake(allow("real as root"), getattr(ident, name),
                          "emulated credentials, Linux's rules") for name in (
        "getresuid", "getresgid", "getgroups")},
    "capget": real_or_fake(trace(ident.capget_real, "real as root, the header's PID "
                                 "translated"), ident.capget, "emulated credentials, Linux's rules"),
    **{name: replace(real_or_fake(allow("real as root"), getattr(ident, name),
                                  "emulated credentials, Linux's rules"),
                     real_tracked=trace(ident.real_change, "real: run, then learned"))
       for name in ("setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
                    "setgroups", "setfsuid", "setfsgid")},
    "capset": replace(real_or_fake(trace(ident.capset_real, "real as root, the header's PID "
                                         "translated"), ident.capset,
                                   "emulated credentials, Linux's rules"),
                      real_tracked=trace(ident.capset_tracked, "real: run, then learned")),
    "umask": allow("native; files the native engine's supervisor creates get the mask "
                   "/proc/PID/status shows"),
    # -- time -------------------------------------------------------------------------
    **{name: allow() for name in (
        "nanosleep", "gettimeofday", "time", "timer_settime", "timer_gettime", "timer_getoverrun",
        "timer_delete",
        "times", "getrusage", "getrlimit", "setrlimit", "sysinfo", "getrandom")},
    **{name: Spec("allow", FULL, "native; the CPU-time clock of a process or thread (a "
                  "negative clock ID) names its container PID, translated",
                  handler=pids.cpu_clock, when=arg_negative(0))
       for name in ("clock_gettime", "clock_getres", "clock_nanosleep")},
    "timer_create": trace(signals.timer_create, "a process or thread CPU-time clock and "
                          "SIGEV_THREAD_ID's thread are container IDs, translated"),
    # no namespace has its own wall clock: setting it sets the host's, as in Docker
    **{name: allow("native: setting the clock sets the host's and needs CAP_SYS_TIME "
                   "(--cap-add SYS_TIME; Docker's default profile allows settimeofday "
                   "and clock_settime only then)")
       for name in ("adjtimex", "clock_adjtime", "settimeofday", "clock_settime")},
    # -- system identity ----------------------------------------------------------------
    "uname": perform(uts.uname, "the container's hostname, domain name and --kernel-release"),
    "sethostname": trace(uts.sethostname, "the container's own; needs CAP_SYS_ADMIN"),
    "setdomainname": trace(uts.setdomainname, "the container's own; needs CAP_SYS_ADMIN"),
    # -- futexes and IPC (the container's IPC namespace: see README) ------------------------
    **{name: allow() for name in (
        "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue")},
    **{name: allow(OWN_IPC, support=PARTIAL)
       for name in ("shmget", "shmat", "shmdt", "semget", "semop", "semtimedop", "msgget",
                    "msgsnd", "msgrcv")},
    "shmctl": Spec("allow", PARTIAL, IPC_STATUS, handler=sysv.shmctl, when=arg_in(1, *sysv.SHM_CMDS)),
    "msgctl": Spec("allow", PARTIAL, IPC_STATUS, handler=sysv.msgctl, when=arg_in(1, *sysv.MSG_CMDS)),
    "semctl": Spec("allow", PARTIAL, IPC_STATUS + "; GETPID too", handler=sysv.semctl,
                   when=arg_in(2, *sysv.SEM_CMDS)),
    # -- security modules -----------------------------------------------------------------
    **{name: allow() for name in (
        "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self")},
    "lsm_get_self_attr": deny(errno.EPERM, DOCKER),
    "lsm_set_self_attr": deny(errno.EPERM, DOCKER),
    "lsm_list_modules": deny(errno.EPERM, DOCKER),
    # -- privileged system calls: denied ---------------------------------------------------
    "mount": trace(mount_.mount, PRIVILEGED + "emulated in the caller's mount table: tmpfs (a "
                   "private directory), proc, sysfs, bind (MS_REC too), remount, move, "
                   "propagation changes; other file systems ENODEV", PARTIAL),
    "umount2": trace(mount_.umount2, PRIVILEGED + "uncovers what the mount covered; brandpy's "
                     "own mounts (root, /proc, /sys, /dev, masked paths) EBUSY", PARTIAL),
    "pivot_root": deny(errno.EPERM, DOCKER),
    "open_tree": deny(errno.EPERM, DOCKER),
    "open_tree_attr": deny(errno.EPERM, DOCKER),
    "move_mount": deny(errno.EPERM, DOCKER),
    "fsopen": deny(errno.EPERM, DOCKER),
    "fsconfig": deny(errno.EPERM, DOCKER),
    "fsmount": deny(errno.EPERM, DOCKER),
    "fspick": deny(errno.EPERM, DOCKER),
    "mount_setattr": deny(errno.EPERM, DOCKER),
    "statmount": deny(errno.ENOSYS, "not emulated: it would show the host's mounts"),
    "listmount": deny(errno.ENOSYS, "not emulated: it would show the host's mounts"),
    "listns": deny(errno.EPERM, DOCKER),
    "swapon": deny(errno.EPERM, DOCKER),
    "swapoff": deny(errno.EPERM, DOCKER),
    "reboot": deny(errno.EPERM, DOCKER),
    "kexec_load": deny(errno.EPERM, DOCKER),
    "kexec_file_load": deny(errno.EPERM, DOCKER),
    "init_module": deny(errno.EPERM, DOCKER),
    "finit_module": deny(errno.EPERM, DOCKER),
    "delete_module": deny(errno.EPERM, DOCKER),
    "acct": deny(errno.EPERM, DOCKER),
    "quotactl": deny(errno.EPERM, DOCKER),
    "quotactl_fd": deny(errno.EPERM, DOCKER),
    "syslog": deny(errno.EPERM, DOCKER),
    "vhangup": deny(errno.EPERM, DOCKER),
    "iopl": deny(errno.EPERM, DOCKER),
    "ioperm": deny(errno.EPERM, DOCKER),
    "modify_ldt": allow(),
    "ustat": deny(errno.EPERM, DOCKER),
    "sysfs": deny(errno.EPERM, DOCKER),
    "open_by_handle_at": deny(errno.EPERM, DOCKER + "; file handles bypass path resolution"),
    "fanotify_init": deny(errno.EPERM, DOCKER),
    "perf_event_open": deny(errno.EPERM, DOCKER),
    "bpf": deny(errno.EPERM, DOCKER),
    "add_key": deny(errno.EPERM, DOCKER),
    "request_key": deny(errno.EPERM, DOCKER),
    "keyctl": deny(errno.EPERM, DOCKER),
    "io_uring_setup": deny(errno.EPERM, DOCKER + "; io_uring would bypass the filter"),
    "io_uring_enter": deny(errno.EPERM, DOCKER),
    "io_uring_register": deny(errno.EPERM, DOCKER),
    "uprobe": deny(errno.EPERM, DOCKER),
    "uretprobe": deny(errno.EPERM, "only valid from a kernel-installed uretprobe trampoline"),
    "rseq_slice_yield": deny(errno.EPERM, DOCKER),
    # -- gone from Linux ----------------------------------------------------------------------
    "uselib": nosys("removed from Linux (CONFIG_USELIB); ENOSYS"),
    "_sysctl": nosys("removed in Linux 5.5"),
    "create_module": nosys("removed in Linux 2.6"),
    "get_kernel_syms": nosys("removed in Linux 2.6"),
    "query_module": nosys("removed in Linux 2.6"),
    "nfsservctl": nosys("removed in Linux 3.1"),
    "lookup_dcookie": nosys("removed in Linux 5.12"),
    **{name: nosys(NEVER) for name in (
        "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "vserver",
        "epoll_ctl_old", "epoll_wait_old", "set_thread_area", "get_thread_area")},
}

# The container's processes are in a PID namespace of the kernel's, as root
# and unprivileged where user namespaces are allowed (brandpy/runtime/pids.py):
# there the kernel takes and gives the container's PIDs itself, so calls
# trapped only to translate PIDs run natively, and its own rules hold
# (kill(-1) and process groups reach the namespace alone, PID 1 ignores
# signals it has no handler for). wait4 and waitid too, but for an emulated
# tracer, whose waits report its tracees' stops (handlers/guest_ptrace.py):
# the supervisor stacks a filter trapping them on a process when it becomes
# a tracer (Supervisor._stack_wait_trap).
KERNEL_PIDS = "native in the container's PID namespace: the kernel's own PIDs"
for _name in ("getpid", "gettid", "getppid", "getpgrp", "getpgid", "getsid", "setpgid",
              "setsid", "set_tid_address", "kill", "tkill", "tgkill",
              "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal", "pidfd_open",
              "process_vm_readv", "process_vm_writev", "get_robust_list", "prlimit64",
              "sched_setaffinity", "sched_getaffinity", "sched_setparam", "sched_getparam",
              "sched_setscheduler", "sched_getscheduler", "sched_setattr", "sched_getattr",
              "sched_rr_get_interval", "migrate_pages", "move_pages", "kcmp", "getpriority",
              "setpriority", "ioprio_get", "ioprio_set", "clock_gettime", "clock_getres",
              "clock_nanosleep"):
    SPEC[_name] = replace(SPEC[_name], pidns=allow(KERNEL_PIDS))
# with emulated identities the kernel knows no user but ours: a user's
# processes (PRIO_USER, IOPRIO_WHO_USER) are still the emulated user's
for _name, _user in (("getpriority", 2), ("setpriority", 2), ("ioprio_get", 3),
                     ("ioprio_set", 3)):
    SPEC[_name] = replace(SPEC[_name], pidns=replace(allow(KERNEL_PIDS), fake=Spec(
        "allow", FULL, KERNEL_PIDS + "; unprivileged, a user's processes are emulated",
        handler=prio.priority, when=arg_in(0, _user))))
for _name in ("wait4", "waitid"):
    _waits = Spec("allow", FULL, f"{KERNEL_PIDS}; an emulated tracer's are trapped (a filter "
                  "stacked on it when it starts tracing)", handler=SPEC[_name].handler)
    if _name == "waitid":
        # with emulated identities waitid's si_uid is the kernel's view of
        # our uid: one with an infop is trapped, for its exit stop to show
        # the child's
        _waits = replace(_waits, fake=Spec(
            "allow", FULL, f"{KERNEL_PIDS}; unprivileged, with an infop trapped for its si_uid",
            handler=pids.waitid, when=arg_nonzero(2)))
    SPEC[_name] = replace(SPEC[_name], pidns=_waits)


@dataclass(frozen=True)
class Row:
    nr: int
    name: str
    since: tuple[int, ...]
    removed: str
    args: tuple[linux.Arg, ...]
    spec: Spec

    @property
    def disposition(self) -> str:
        return self.spec.disposition

    @property
    def support(self) -> str:
        return self.spec.support

    @property
    def note(self) -> str:
        return self.spec.note

    @property
    def value(self) -> int:
        return self.spec.value

    @property
    def handler(self) -> Handler | None:
        return self.spec.handler

    @property
    def when(self) -> Callable[[Action, Action], Action] | None:
        return self.spec.when

    @property
    def since_text(self) -> str:
        parts = list(self.since)
        while len(parts) > 2 and parts[-1] == 0:
            parts.pop()
        return ".".join(map(str, parts))


class Table:
    def __init__(self) -> None:
        facts = linux.load()
        unknown = set(SPEC) - {f.name for f in facts.values()}
        if unknown:
            raise ValueError(f"syscall table names unknown syscalls: {sorted(unknown)}")
        # numbers Linux never assigned on x86_64 (e.g. 387-423) are rows too
        gap = Spec("nosys", NONE, "no such syscall", value=errno.ENOSYS)
        self.rows: list[Row] = [Row(nr, "", (0, 0, 0), "", (), gap)
                                for nr in range(max(facts) + 1)]
        for nr, f in facts.items():
            spec = SPEC.get(f.name)
            if spec is None:
                raise ValueError(f"syscall table has no row for {f.name} ({nr}): add one to "
                                 "syscalls/table.py")
            self.rows[nr] = Row(nr, f.name, f.since, f.removed, f.args, spec)
        self.by_name = {r.name: r for r in self.rows if r.name}

    def names(self) -> dict[int, str]:
        return {r.nr: r.name for r in self.rows if r.name}


_TABLE: Table | None = None


def table() -> Table:
    global _TABLE
    if _TABLE is None:
        _TABLE = Table()
    return _TABLE
