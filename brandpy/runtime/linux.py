"""Linux constants and the few libc calls Python's os module lacks.

ptrace register access and peek/poke come from python-ptrace
(`ptrace.binding`); this module adds what python-ptrace does not know:
PTRACE_SEIZE/LISTEN, the seccomp event, process_vm_readv/writev, seccomp(2)
and prctl(2).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# ptrace requests (include/uapi/linux/ptrace.h)
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SYSCALL = 24
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208

PTRACE_O_TRACESYSGOOD = 0x01
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

TRACE_OPTIONS = (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
                 | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP
                 | PTRACE_O_EXITKILL)

WALL = 0x40000000  # __WALL: wait for threads and non-SIGCHLD children too
WNOTHREAD = 0x20000000  # __WNOTHREAD: not for other threads' children

# seccomp (include/uapi/linux/seccomp.h)
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000

SYS_seccomp = 317
SYS_pidfd_open = 434
SYS_pidfd_getfd = 438

STOP_SIGNALS = frozenset({19, 20, 21, 22})  # SIGSTOP SIGTSTP SIGTTIN SIGTTOU


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_vm_readv = libc.process_vm_readv
_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                      ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
_vm_readv.restype = ctypes.c_ssize_t
_vm_writev = libc.process_vm_writev
_vm_writev.argtypes = _vm_readv.argtypes
_vm_writev.restype = ctypes.c_ssize_t

_ptrace = libc.ptrace
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_ptrace.restype = ctypes.c_long

_syscall = libc.syscall
_syscall.restype = ctypes.c_long


def check(ret: int) -> int:
    """A libc call's -1 as OSError (errno from ctypes)."""
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """Raw ptrace for the requests python-ptrace lacks; raises OSError."""
    return check(_ptrace(request, pid, addr, data))


def geteventmsg(pid: int) -> int:
    msg = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(msg))
    return msg.value


PTRACE_SETSIGINFO = 0x4203
SIGINFO_SIZE = 128


def getsiginfo(pid: int) -> bytes | None:
    """The siginfo of a signal-delivery-stop (None if the tracee is gone)."""
    buf = ctypes.create_string_buffer(SIGINFO_SIZE)
    if _ptrace(PTRACE_GETSIGINFO, pid, 0, ctypes.addressof(buf)) == -1:
        return None
    return buf.raw


def setsiginfo(pid: int, info: bytes) -> None:
    buf = ctypes.create_string_buffer(info, SIGINFO_SIZE)
    _ptrace(PTRACE_SETSIGINFO, pid, 0, ctypes.addressof(buf))


def siginfo_errno(info: bytes) -> int:
    return int.from_bytes(info[4:8], "little", signed=True)


def siginfo_code(info: bytes) -> int:
    return int.from_bytes(info[8:12], "little", signed=True)


def vm_read(pid: int, addr: int, size: int) -> bytes:
    """Read tracee memory; a short read means the rest is unmapped."""
    buf = ctypes.create_string_buffer(size)
    local = _IOVec(ctypes.addressof(buf), size)
    remote = _IOVec(addr, size)
    n = _vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return buf.raw[:n]


def vm_write(pid: int, addr: int, data: bytes) -> int:
    buf = ctypes.create_string_buffer(data, len(data))
    local = _IOVec(ctypes.addressof(buf), len(data))
    remote = _IOVec(addr, len(data))
    n: int = _vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return n


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                             ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)))


def pidfd_open(pid: int) -> int:
    return check(_syscall(SYS_pidfd_open, pid, 0))


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    return check(_syscall(SYS_pidfd_getfd, pidfd, targetfd, 0))


# the new mount API (Linux 5.2)
SYS_fsopen, SYS_fsconfig, SYS_fsmount = 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOEXEC = 0x2, 0x8


def detached_mount(fstype: bytes, options: dict[bytes, bytes], attrs: int) -> int:
    """A new instance of a filesystem, mounted nowhere: an O_PATH fd of
    its root (fsopen, fsconfig, fsmount). OSError where the kernel
    refuses (EPERM without CAP_SYS_ADMIN over the mount namespace's user
    namespace, ENOSYS before Linux 5.2)."""
    fs = check(_syscall(SYS_fsopen, fstype, FSOPEN_CLOEXEC))
    try:
        for key, value in options.items():
            check(_syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, key, value, 0))
        check(_syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, None, None, 0))
        return check(_syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs))
    finally:
        os.close(fs)


CLONE_NEWIPC = 0x08000000
CLONE_FS, CLONE_NEWNS = 0x200, 0x20000


def read_in_ipc_ns(pid: int, path: bytes) -> bytes:
    """A file as a task in pid's IPC namespace reads it (/proc/sysvipc/*
    shows the reader's): on a thread of our own that joins it (setns is per
    thread, and the thread ends with the read), when it is not ours."""
    ns = b"/proc/%d/ns/ipc" % pid
    if os.stat(ns).st_ino == os.stat(b"/proc/self/ns/ipc").st_ino:
        with open(path, "rb") as f:
            return f.read()
    if os.stat(b"/proc/%d/ns/user" % pid).st_ino != os.stat(b"/proc/self/ns/user").st_ino:
        return _read_in_user_ns(pid, path)
    got: list[bytes | OSError] = []

    def read() -> None:
        try:
            fd = os.open(ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                check(libc.setns(fd, CLONE_NEWIPC))
            finally:
                os.close(fd)
            with open(path, "rb") as f:
                got.append(f.read())
        except OSError as exc:
            got.append(exc)

    reader = threading.Thread(target=read, name="brandpy-ipc-ns")
    reader.start()
    reader.join()
    if isinstance(got[0], OSError):
        raise got[0]
    return got[0]


def _read_in_user_ns(pid: int, path: bytes, size: int = 1 << 20) -> bytes:
    """read_in_ipc_ns where the IPC namespace's owner is the container's
    user namespace (unprivileged): joining it needs a process of one
    thread, so a forked child of the native library's reads."""
    from brandpy._native import ffi, lib
    buf = ffi.new("char[]", size)
    n = lib.bp_read_in_ipc_ns(pid, path, buf, size)
    if n < 0:
        raise OSError(-n, f"reading {os.fsdecode(path)} in the container's IPC namespace: "
                      f"{os.strerror(-n)}")
    return bytes(ffi.buffer(buf, n))


def kernel_release() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def receives(tid: int, sig: int, waiting: int = 0) -> bool:
    """Whether a PID namespace's init takes sig rather than ignoring it: it
    has a handler (SigCgt), or the signal is blocked (SigBlk, or `waiting`
    for it in sigtimedwait), which Linux queues whatever the handler."""
    bit = 1 << (sig - 1)
    if waiting & bit:
        return True
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith((b"SigBlk:", b"SigCgt:")) and int(line.split()[1], 16) & bit:
                    return True
    except OSError:
        pass
    return False


# -- the *at calls Python's os module lacks (path layer: brandpy/runtime/pathres.py) --

O_PATH = 0o10000000
O_CLOEXEC = 0o2000000
O_NOFOLLOW = 0o400000
O_DIRECTORY = 0o200000
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20
RESOLVE_ALL = 0x3f            # the bits openat2 knows (Linux 5.12+)
RENAME_NOREPLACE = 1
SYS_openat2 = 437
SYS_renameat2 = 316
SYS_fchmodat2 = 452


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); raises OSError."""
    how = _OpenHow(flags, mode, resolve)
    return check(_syscall(ctypes.c_long(SYS_openat2), ctypes.c_int(dirfd),
                           ctypes.c_char_p(path), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how))))


def renameat2(olddirfd: int, old: bytes, newdirfd: int, new: bytes, flags: int) -> None:
    check(_syscall(ctypes.c_long(SYS_renameat2), ctypes.c_int(olddirfd), ctypes.c_char_p(old),
                    ctypes.c_int(newdirfd), ctypes.c_char_p(new), ctypes.c_uint(flags)))


def fchmodat2(dirfd: int, path: bytes, mode: int, flags: int) -> None:
    """fchmodat2(2) (Linux 6.6): AT_SYMLINK_NOFOLLOW answers EOPNOTSUPP on a
    symlink, AT_EMPTY_PATH acts on an O_PATH fd."""
    check(_syscall(ctypes.c_long(SYS_fchmodat2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                    ctypes.c_uint(mode), ctypes.c_uint(flags)))


# -- AF_UNIX sockets (sock_diag) ---------------------------------------------------

NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLMSG_ERROR = 4, 20, 2
UDIAG_SHOW_PEER, UNIX_DIAG_PEER = 0x4, 2


def unix_peer_inode(fd: int) -> int | None:
    """The inode of the socket an AF_UNIX socket is connected to (its
    peer), asked of the kernel's sock_diag; None when it has none or the
    kernel cannot tell (no CONFIG_UNIX_DIAG)."""
    import socket

    req = struct.pack("<BBHIII2I", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, os.fstat(fd).st_ino,
                      UDIAG_SHOW_PEER, 0xFFFFFFFF, 0xFFFFFFFF)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.send(struct.pack("<IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, 1, 1, 0) + req)
            data = nl.recv(8192)
    except OSError:
        return None
    length, kind = struct.unpack_from("<IH", data)
    if kind == NLMSG_ERROR:
        return None
    off = 16 + 16                     # nlmsghdr, unix_diag_msg
    while off + 4 <= min(length, len(data)):
        alen, atype = struct.unpack_from("<HH", data, off)
        if atype == UNIX_DIAG_PEER:
            return int(struct.unpack_from("<I", data, off + 4)[0])
        off += max(4, (alen + 3) & ~3)
    return None


PTRACE_GET_SYSCALL_INFO = 0x420E
SYSCALL_INFO_ENTRY = 1
SYSCALL_INFO_SIZE = 88        # struct ptrace_syscall_info, its largest (seccomp) form


def syscall_info(pid: int, size: int = SYSCALL_INFO_SIZE) -> bytes:
    """PTRACE_GET_SYSCALL_INFO: what the stop is (op: entry, exit,
    seccomp) and the call's number and arguments or result."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, size, ctypes.addressof(buf))
    return buf.raw[:min(n, size)]


def tgkill(tgid: int, tid: int, sig: int) -> None:
    check(_syscall(234, tgid, tid, sig))   # SYS_tgkill
