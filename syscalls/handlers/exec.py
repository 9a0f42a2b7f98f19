"""execve and execveat: run the guest's own interpreters.

The kernel would load `#!` interpreters and PT_INTERP from host paths, so
the chain is followed here (scripts up to the kernel's depth of 4) and the
kernel is asked to exec the final ELF: a static one directly, a dynamic one
through the guest's loader as `ld.so --argv0 ARGV0 PROG ARGS...`, with
PROG a guest path the loader opens through the performed open().

Every file of the chain is found on descriptors (paths.find_path) and read
through its own descriptor. Linux's checks on every file the kernel would
open for exec (the program, each `#!` interpreter, the loader) are made
here with the caller's credentials, as the container sees them: a regular
file the caller may execute (EACCES), that nobody has open for writing
(ETXTBSY: the kernel itself checks only what it execs, and ld.so opens
PROG for reading), then its format (ENOEXEC). The exec itself is the one call made by the
tracee on a host path string written into its memory, which the kernel
walks: a race there (another thread rewriting that string, a directory
swapped meanwhile) is confined by the Landlock walls, which allow
executing only files below the container's root and its binds.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from brandpy.fsmeta import Override
from brandpy.runtime import binfmt, dac
from brandpy.runtime.acting import as_supervisor, as_tracee
from brandpy.runtime.call import Call
from brandpy.runtime.devices import file_id
from brandpy.runtime.errors import Errno
from brandpy.runtime.identity import Cred
from brandpy.runtime.linux import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from brandpy.runtime.process import COMM_LEN, ExecImage

from . import fakefs, stacked
from .ident import trap_filter
from .paths import Obj, find_path, read_path, tracee_file

SYS_execve = 59


def execve(call: Call) -> None:
    _exec(call, AT_FDCWD, 0, 1, 2, 0)


def execveat(call: Call) -> None:
    if _exec(call, call.iarg(0), 1, 2, 3, call.iarg(4)):
        call.set_nr(SYS_execve)


def _program(call: Call, dirfd: int, path: bytes, flags: int) -> tuple[Obj, bytes, bytes]:
    """The file execve names: (it, its guest path, the name the kernel
    gives the process)."""
    if not path and flags & AT_EMPTY_PATH:
        # fexecve: the fd names the program (a memfd or a deleted file only
        # the kernel can reach through /proc; never a file outside the container)
        obj = tracee_file(call, dirfd)
        guest = call.sb.resolver.magic_target(call.tid, b"fd/%d" % dirfd)
        if guest is None:
            target = os.readlink(b"/proc/%d/fd/%d" % (call.tid, dirfd))
            if target.startswith(b"/") and not target.endswith(b" (deleted)"):
                obj.close()
                raise Errno(errno.EACCES, "fexecve of a file outside the container")
            return obj, b"/proc/self/fd/%d" % dirfd, b"/proc/self/fd/%d" % dirfd
        obj.close()
        return find_path(call, guest), guest, guest
    obj = find_path(call, path, dirfd, follow=not flags & AT_SYMLINK_NOFOLLOW)
    assert obj.r is not None
    return obj, obj.r.guest, path


def _host(call: Call, obj: Obj, guest: bytes) -> bytes:
    """The host path the kernel is given for obj."""
    if obj.r is None:
        return b"/proc/%d/fd/%d" % (call.tid, obj.tracee_fd or 0)
    return obj.r.proc if obj.r.proc is not None else obj.r.host


def _exec(call: Call, dirfd: int, path_i: int, argv_i: int, envp_i: int, flags: int) -> bool:
    """True when the call is now the exec; False when it was turned into
    a filter's installation first (it comes back)."""
    path = read_path(call, path_i)
    argv: list[bytes | int] = list(call.read_ptrs(call.arg(argv_i))) if call.arg(argv_i) else []
    with as_tracee(call.proc.cred, call.sb):
        host, guest, name, argv, interp, view = _chain(call, dirfd, path, flags, argv)
        cred = _exec_cred(call, view) if view is not None else None
        if cred is not None and not _ids_trapped(call, cred):
            return False
        if cred is not None and (cred.euid, cred.egid) != (cred.ruid, cred.rgid):
            _secure_env(call, envp_i)
        program = None
        if interp is not None:
            with as_supervisor():
                program = file_id(host)
            with find_path(call, interp) as loader:
                _check_executable(call, loader)
                prog = call.sb.resolver.relative_to_root(call.proc, guest)
                argv0 = argv[0] if argv else prog
                with as_supervisor():
                    takes_argv0 = binfmt.loader_takes_argv0(loader.path)
                head: list[bytes | int] = [interp, b"--argv0", argv0, prog] if takes_argv0 \
                    else [interp, prog]
                argv = head + argv[1:]
                host = _host(call, loader, interp)
    # the kernel names the process after the path as given (a symlink's own
    # name, busybox applets' included), even when a script's interpreter runs
    comm = os.path.basename(name)[:COMM_LEN]
    call.proc.exec_pending = ExecImage(
        exe=guest, comm=comm, kernel_comm=os.path.basename(host)[:COMM_LEN],
        loader_args=0 if interp is None else 4 if argv[1:2] == [b"--argv0"] else 1,
        cred=cred, program=program)

    ptrs = [item if isinstance(item, int) else call.push_str(item) for item in argv]
    array = b"".join(p.to_bytes(8, "little") for p in ptrs) + bytes(8)
    call.set_arg(argv_i, call.push(array))
    call.set_arg(path_i, call.push_str(host))
    if path_i == 1:   # execveat -> execve(path, argv, envp)
        call.set_arg(0, call.arg(1))
        call.set_arg(1, call.arg(2))
        call.set_arg(2, call.arg(3))
    return True


def _chain(call: Call, dirfd: int, path: bytes, flags: int, argv: list[bytes | int]
           ) -> tuple[bytes, bytes, bytes, list[bytes | int], bytes | None, Override | None]:
    """Follow `#!` interpreters to the ELF that runs: (its host path, its
    guest path, the process's name, argv, its PT_INTERP, and unprivileged
    how the container sees it)."""
    obj, guest, name = _program(call, dirfd, path, flags)
    comm_name = name
    try:
        for _depth in range(binfmt.MAX_INTERP_DEPTH + 1):
            _check_executable(call, obj)
            kind = _inspect(obj)
            if isinstance(kind, binfmt.Elf):
                view = fakefs.view(obj) if call.sb.fake_ids else None
                return _host(call, obj, guest), guest, comm_name, argv, kind.interp, view
            # `#!interp [arg]`: argv becomes interp [arg] NAME ARGV[1:]
            tail = argv[1:]
            script: list[bytes | int] = [kind.interpreter] if kind.arg is None else \
                [kind.interpreter, kind.arg]
            argv = script + [name] + tail
            name = kind.interpreter
            obj.close()
            obj = find_path(call, kind.interpreter)
            assert obj.r is not None
            guest = obj.r.guest
        raise Errno(errno.ELOOP)
    finally:
        obj.close()


def _exec_cred(call: Call, view: Override) -> Cred:
    """Emulated identity: the credentials this exec gives the caller. The
    setuid and setgid bits count as the container sees the file (fake
    ownership included); --security-opt no-new-privileges stops them, and
    so does a tracer without CAP_SYS_PTRACE (Linux's LSM_UNSAFE_PTRACE: it
    could take the elevated program over)."""
    owner = view.uid if view.mode & stat.S_ISUID else None
    group = view.gid if view.mode & stat.S_ISGID and view.mode & stat.S_IXGRP else None
    return call.proc.cred.after_exec(owner, group, call.sb.caps,
                                     call.sb.config.no_new_privileges or _traced_unsafely(call))


def _traced_unsafely(call: Call) -> bool:
    traced = call.sb.ptraced.tracees.get(call.tid)
    if traced is None:
        return False
    tracer = call.sb.procs.get(traced.tracer)
    return tracer is None or not tracer.cred.capable("CAP_SYS_PTRACE")


def _ids_trapped(call: Call, cred: Cred) -> bool:
    """Whether getuid & co will answer `cred` after the exec: while the
    container's user is root they are BPF's 0 until the thread has the
    trap filter (ident.py), which a setuid exec must stack first."""
    sb = call.sb
    if call.tid in sb.id_trapped or not sb.needs_id_trap(cred):
        return True
    if not stacked.ready(call, "ids", trap_filter()):
        return False
    sb.id_trapped.add(call.tid)
    return True


# glibc's unsecure_envvars: what ld.so drops in secure mode (AT_SECURE),
# which the kernel sets for a setuid exec; here the exec is of ld.so itself
SECURE_DROPPED = frozenset(b"""GCONV_PATH GETCONF_DIR GLIBC_TUNABLES HOSTALIASES LD_AUDIT
    LD_DEBUG LD_DEBUG_OUTPUT LD_DYNAMIC_WEAK LD_HWCAP_MASK LD_LIBRARY_PATH LD_ORIGIN_PATH
    LD_PRELOAD LD_PROFILE LD_SHOW_AUXV LOCALDOMAIN LOCPATH MALLOC_ARENA_MAX
    MALLOC_ARENA_TEST MALLOC_CHECK_ MALLOC_MMAP_MAX_ MALLOC_MMAP_THRESHOLD_ MALLOC_PERTURB_
    MALLOC_TCACHE_COUNT MALLOC_TCACHE_MAX MALLOC_TCACHE_UNSORTED_LIMIT MALLOC_TOP_PAD_
    MALLOC_TRACE NIS_PATH NLSPATH RESOLV_HOST_CONF RES_OPTIONS TMPDIR TZDIR""".split())


def _secure_env(call: Call, envp_i: int) -> None:
    """An elevating exec: the environment without what secure mode drops,
    so the caller cannot steer the elevated program's loader."""
    if not call.arg(envp_i):
        return
    kept = [p for p in call.read_ptrs(call.arg(envp_i))
            if call.read_str(p, 1 << 17).partition(b"=")[0] not in SECURE_DROPPED]
    call.set_arg(envp_i, call.push(b"".join(p.to_bytes(8, "little") for p in kept) + bytes(8)))


def _check_executable(call: Call, obj: Obj) -> None:
    """open_exec()'s checks, in the kernel's order (with the caller's
    credentials, real or emulated: see as_tracee in _exec)."""
    if not stat.S_ISREG(obj.st.st_mode) or not dac.allowed(obj.fd, dac.MAY_EXEC, obj.st):
        raise Errno(errno.EACCES)
    if _open_for_writing(obj):
        raise Errno(errno.ETXTBSY)


def _open_for_writing(obj: Obj) -> bool:
    """Whether any process has the file open for writing: a read lease is
    refused (EAGAIN) exactly then, and is released at once, so a writer
    opening meanwhile waits microseconds, not the lease-break time. Without
    the right to a lease (not the file's owner, no CAP_LEASE) or on a file
    system without leases, nothing is known and the exec goes on."""
    with as_supervisor():
        try:
            fd = os.open(obj.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    finally:
        os.close(fd)
    return False


def _inspect(obj: Obj) -> binfmt.Shebang | binfmt.Elf:
    """Read by the supervisor: execve needs execute permission, not read."""
    with as_supervisor():
        return binfmt.inspect(obj.path)
