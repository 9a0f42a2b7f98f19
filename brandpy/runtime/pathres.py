"""Guest path resolution on file descriptors: a guest path, as a tracee
wrote it, to the directory that holds it (an O_PATH descriptor) and the
name inside it.

The walk is done here, one component at a time, the way the kernel's path
walk does it, but inside the guest: `..` stops at the process's root and is
taken lexically on the canonical guest path (never by the kernel, which
could climb out of a mount's host directory), absolute symlink targets
restart at that root, brandpy's mount points switch to the mount's own root
descriptor (mounts.MountTable.root_fd), and /proc's magic links (self, cwd,
root, exe, fd/N) are read from the supervisor's side and mapped back into
the guest.

Every step is taken on a descriptor: `openat(dir, name, O_PATH|O_NOFOLLOW)`
and `readlinkat(dir, name)`, or `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)`
from a mount's root for a prefix already known to be a plain directory
path. No host path string is ever walked again by the kernel, so a
directory renamed or a symlink swapped in meanwhile cannot lead a walk out
of the container: at worst the walk sees the new state, inside. The caller
acts on the result with the *at calls on (dirfd, name), never following
the last name (see syscalls/handlers/pathops.py), and resolves again if it
became a symlink.

Inside the proc mount the walk is on host path strings: procfs is the
kernel's, the container can neither create nor rename anything there, and
PIDs must be translated on the way.

Search permission is checked on each directory a name is looked up in
(dac.py): with emulated identities for every step, with real credentials
for a lexical `..` (the kernel checks its own lookups).

Errors in the middle of a path (a missing directory, a file used as a
directory, a symlink loop) are raised here with the errno Linux gives; a
missing or special last component is left to the call, so creation and
its error cases behave as on Linux.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from typing import TYPE_CHECKING, Protocol

from . import dac
from .errors import Errno
from .linux import (
    AT_FDCWD,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_PATH,
    RESOLVE_BENEATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
    RESOLVE_NO_XDEV,
    openat2,
)
from .mounts import Mount, MountTable, join, split
from .process import Process
from .racepause import race_pause

if TYPE_CHECKING:
    from .pids import PidMap

PATH_MAX = 4096
MAXSYMLINKS = 40
REMOVED = b" (deleted)"     # how /proc's links end for a directory removed since
SCOPED = RESOLVE_BENEATH | RESOLVE_IN_ROOT
STEP = O_PATH | O_NOFOLLOW | os.O_CLOEXEC
PLAIN = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

# /proc/PID/{cwd,root,exe}, /proc/PID/fd/N and their /task/TID/ variants.
_MAGIC = re.compile(rb"^(\d+)(?:/task/(\d+))?/(cwd|root|exe|fd/\d+)$")


class View(Protocol):
    """What the resolver reads of a Sandbox (the daemon's FsView is one too)."""
    mounts: MountTable

    def process_of(self, host_pid: int) -> Process | None: ...

    @property
    def pids(self) -> PidMap: ...


class Resolved:
    """Where a guest path leads: `name` inside the directory `dirfd` (an
    O_PATH descriptor), or, with name b"", the mount root `dirfd` itself.
    Inside /proc, `proc` is the host path instead (dirfd -1). Close it (or
    use it as a context manager): dirfd may be the resolver's own."""

    __slots__ = ("guest", "mount", "dirfd", "name", "proc", "magic", "must_dir", "_owned",
                 "_table")

    def __init__(self, guest: bytes, mount: Mount, dirfd: int = -1, name: bytes = b"",
                 proc: bytes | None = None, magic: bool = False, must_dir: bool = False,
                 owned: bool = False, table: MountTable | None = None) -> None:
        self.guest = guest          # canonical guest path (full guest coordinates)
        self.mount = mount
        self.dirfd = dirfd
        self.name = name            # no "/" in it; b"." when the path ended in "." or ".."
        self.proc = proc            # a host path in procfs
        self.magic = magic          # a /proc magic link only the kernel can follow
        self.must_dir = must_dir    # the path ended in "/"
        self._owned = owned
        self._table = table

    @property
    def readonly(self) -> bool:
        return self.mount.readonly

    @property
    def is_mount_root(self) -> bool:
        return self.proc is None and not self.name

    @property
    def host(self) -> bytes:
        """The host path as a string, for what still hands the kernel a path
        to walk itself: execve (confined by the Landlock walls), setting up
        the entrypoint's working directory, and procfs."""
        if self.proc is not None:
            return self.proc
        assert self._table is not None
        host, _ = self._table.to_host(split(self.guest))
        return host + (b"/." if self.name == b"." else b"")

    def lstat(self) -> os.stat_result | None:
        """What the path names, not followed; None when it does not exist."""
        try:
            if self.proc is not None:
                return os.lstat(self.proc)
            return os.stat(self.name or b".", dir_fd=self.dirfd, follow_symlinks=False)
        except OSError:
            return None

    def access(self, mode: int) -> bool:
        """access(2) of what the path names, not followed."""
        if self.proc is not None:
            return os.access(self.proc, mode)
        if not self.name:
            return os.access(b"/proc/self/fd/%d" % self.dirfd, mode)
        return os.access(self.name, mode, dir_fd=self.dirfd, follow_symlinks=False)

    def close(self) -> None:
        if self._owned:
            self._owned = False
            os.close(self.dirfd)

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class _Walk:
    """The walk's position: canonical guest components and, made on demand,
    an O_PATH descriptor of the directory they name."""

    def __init__(self, mounts: MountTable, cur: list[bytes]) -> None:
        self.mounts = mounts
        self.cur = cur
        self.fd = -1
        self.owned = False

    def drop(self) -> None:
        if self.owned:
            os.close(self.fd)
        self.fd, self.owned = -1, False

    def set(self, fd: int, owned: bool) -> None:
        self.drop()
        self.fd, self.owned = fd, owned

    def dirfd(self) -> int:
        """The descriptor of cur: from its mount's root, one openat2 over
        the rest, which is canonical (walked already, symlinks resolved): a
        symlink there now means it changed meanwhile, and the walk fails
        rather than follow it in the kernel."""
        if self.fd < 0:
            mount, depth = self.mounts.lookup(self.cur)
            root, is_dir, owned = self.mounts.root_fd(mount)
            if not is_dir:
                if owned:
                    os.close(root)
                raise Errno(errno.ENOTDIR)
            rest = self.cur[depth:]
            if not rest:
                self.fd, self.owned = root, False
            else:
                try:
                    self.fd = openat2(root, b"/".join(rest), O_PATH | O_DIRECTORY | os.O_CLOEXEC,
                                      PLAIN)
                except OSError as exc:
                    raise Errno(errno.ENOENT if exc.errno in (errno.ELOOP, errno.EXDEV,
                                                              errno.EAGAIN)
                                else exc.errno or errno.EIO) from None
                self.owned = True
        return self.fd

    def take(self) -> tuple[int, bool]:
        """Hand the descriptor over to a Resolved."""
        fd, owned = self.dirfd(), self.owned
        self.fd, self.owned = -1, False
        return fd, owned


class Resolver:
    def __init__(self, view: View, mounts: MountTable | None = None) -> None:
        self.sb = view
        self.mounts: MountTable = view.mounts if mounts is None else mounts

    def of(self, proc: Process) -> Resolver:
        """The resolver of the process's mount namespace: this one, or
        one over the table the process unshared (runtime/namespaces.py)."""
        table = proc.mounts
        if table is None or table is self.mounts:
            return self
        if table.resolver is None:
            table.resolver = Resolver(self.sb, table)
        resolver: Resolver = table.resolver
        return resolver

    # -- entry points -----------------------------------------------------

    def resolve(self, proc: Process, tid: int, path: bytes, dirfd: int = AT_FDCWD,
                follow: bool = True, resolve_flags: int = 0) -> Resolved:
        """Resolve `path` as `tid` would see it (relative to `dirfd` when
        it is not absolute). `resolve_flags` are openat2's RESOLVE_* (checked
        by the caller; RESOLVE_CACHED is only a hint). Raises Errno."""
        own = self.of(proc)
        if own is not self:
            return own.resolve(proc, tid, path, dirfd, follow, resolve_flags)
        if not path:
            raise Errno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Errno(errno.ENAMETOOLONG)
        floor = split(proc.root)
        absolute = path.startswith(b"/")
        base_fd = -1
        if resolve_flags & SCOPED:
            if absolute and resolve_flags & RESOLVE_BENEATH:
                raise Errno(errno.EXDEV)
            start, base_fd = self._base(proc, tid, dirfd)
            floor = start
        elif absolute:
            start = floor
        else:
            start, base_fd = self._base(proc, tid, dirfd)
        resolved = self._walk(proc, tid, list(start), len(floor), path, follow, resolve_flags,
                              base_fd)
        race_pause()
        return resolved

    def _base(self, proc: Process, tid: int, dirfd: int) -> tuple[tuple[bytes, ...], int]:
        """The guest components of the directory a relative path starts
        from and, when that directory was removed since (no name leads to
        it, yet Linux still walks from it: ".", and ENOENT for new names),
        an O_PATH fd of it to start from (else -1)."""
        if dirfd == AT_FDCWD:
            comps = self.cwd_components(proc, tid)
            link = b"/proc/%d/cwd" % tid
        else:
            comps = self.dirfd_components(proc, tid, dirfd)
            link = b"/proc/%d/fd/%d" % (tid, dirfd)
        if comps and comps[-1].endswith(REMOVED):
            try:
                fd = os.open(link, O_PATH | O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return comps, -1
            if os.fstat(fd).st_nlink == 0:
                return (*comps[:-1], comps[-1][:-len(REMOVED)]), fd
            os.close(fd)
        return comps, -1

    def guest_of_host(self, proc: Process, host: bytes) -> bytes | None:
        """A host path as the guest names it, relative to the process's root."""
        guest = self.of(proc).mounts.to_guest(host)
        if guest is None:
            return None
        return self.relative_to_root(proc, guest)

    @staticmethod
    def relative_to_root(proc: Process, guest: bytes) -> bytes:
        if proc.root == b"/":
            return guest
        root = proc.root.rstrip(b"/")
        if guest == root:
            return b"/"
        if guest.startswith(root + b"/"):
            return guest[len(root):]
        return guest   # outside a chroot: Linux shows the path from the real root

    def cwd_components(self, proc: Process, tid: int) -> tuple[bytes, ...]:
        """The cwd's guest path. It is walked again from the root, so a
        directory renamed since only changes which container directory the
        walk starts from."""
        try:
            host = os.readlink(b"/proc/%d/cwd" % tid)
        except OSError as exc:
            raise Errno(exc.errno or errno.ESRCH) from None
        guest = self.of(proc).mounts.to_guest(host)
        # A cwd outside every mount can only be inherited; treat it as the root.
        return split(guest) if guest is not None else split(proc.root)

    def dirfd_components(self, proc: Process, tid: int, fd: int) -> tuple[bytes, ...]:
        if fd < 0:
            raise Errno(errno.EBADF)
        link = b"/proc/%d/fd/%d" % (tid, fd)
        try:
            host = os.readlink(link)
            st = os.stat(link)
        except OSError:
            raise Errno(errno.EBADF) from None
        if not stat.S_ISDIR(st.st_mode):
            raise Errno(errno.ENOTDIR)
        guest = self.of(proc).mounts.to_guest(host)
        if guest is None:
            raise Errno(errno.EACCES, "directory fd outside the container")
        return split(guest)

    # -- the walk ---------------------------------------------------------

    def _walk(self, proc: Process, tid: int, cur: list[bytes], floor: int,
              path: bytes, follow: bool, resolve_flags: int = 0, base_fd: int = -1) -> Resolved:
        trailing_slash = path.endswith(b"/")
        pending = deque(c for c in path.split(b"/") if c and c != b".")
        stripped = path.rstrip(b"/")
        last_is_dot = stripped.endswith((b"/.", b"/..")) or stripped in (b".", b"..")
        links = 0
        w = _Walk(self.mounts, cur)
        if base_fd >= 0:
            w.set(base_fd, owned=True)     # a removed directory (_base)
        # RESOLVE_NO_XDEV: every step (.., a mount point, a jump) stays on this mount
        home = self.mounts.lookup(cur)[0] if resolve_flags & RESOLVE_NO_XDEV else None
        try:
            while pending:
                if home is not None and self.mounts.lookup(cur)[0] is not home:
                    raise Errno(errno.EXDEV)
                comp = pending.popleft()
                self._search(w, comp == b"..")
                if comp == b"..":
                    if len(cur) > floor:
                        cur.pop()
                        w.drop()
                    elif resolve_flags & RESOLVE_BENEATH:
                        raise Errno(errno.EXDEV)
                    continue
                # with "x/." or "x/.." every component is a directory to enter
                last = not pending and not last_is_dot
                examine = not last or follow or trailing_slash
                cur.append(comp)
                mount, depth = self.mounts.lookup(cur)
                if home is not None and mount is not home:
                    raise Errno(errno.EXDEV)
                if mount.kind == "proc":
                    w.drop()
                    if not examine:
                        return self._proc_result(cur)
                    magic = self._proc_step(proc, tid, cur, mount, pending,
                                            resolve_flags & RESOLVE_NO_MAGICLINKS != 0)
                    if magic is not None:
                        return magic
                    mount, depth = self.mounts.lookup(cur)
                    if mount.kind != "proc":      # a magic link into the container
                        if last:
                            return self._object(w, trailing_slash)
                        continue
                    target = self._proc_examine(cur, last)
                    if target is None:
                        continue
                elif depth == len(cur):          # a mount point: its own root
                    fd, is_dir, owned = self.mounts.root_fd(mount)
                    w.set(fd, owned)
                    if not last and not is_dir:
                        raise Errno(errno.ENOTDIR)
                    continue
                else:
                    cur.pop()
                    if not examine:
                        return self._result(w, comp, False)
                    target = self._step(w, comp, last)
                    if target is None:
                        if last:
                            return self._result(w, comp, trailing_slash)
                        cur.append(comp)
                        continue
                    dac.may_follow_link(w.dirfd(), comp)
                links = self._link(target, cur, pending, floor, links, resolve_flags)
                w.drop()
            if home is not None and self.mounts.lookup(cur)[0] is not home:
                raise Errno(errno.EXDEV)
            if stripped == b"." or stripped.endswith(b"/."):
                self._search(w, False)           # "." is looked up in it too
            return self._at_cur(w, last_is_dot, trailing_slash)
        finally:
            w.drop()

    def _search(self, w: _Walk, lexical: bool) -> None:
        """Search permission on the walk's directory before a name is looked
        up in it (procfs checks its own)."""
        if dac.search_checked(lexical) and self.mounts.lookup(w.cur)[0].kind != "proc":
            dac.search(w.dirfd())

    def _step(self, w: _Walk, comp: bytes, last: bool) -> bytes | None:
        """One component below w: descend into a directory (w moves), or
        return a symlink's target. The last component is only examined:
        None when it is missing or not a symlink."""
        parent = w.dirfd()
        if not last:
            try:
                w.set(os.open(comp, STEP | O_DIRECTORY, dir_fd=parent), owned=True)
                return None
            except NotADirectoryError:
                pass                              # a symlink, or really not a directory
            except OSError as exc:
                raise Errno(exc.errno or errno.EIO) from None
        try:
            return os.readlink(comp, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.EINVAL:         # there, and not a symlink
                if last:
                    return None
                raise Errno(errno.ENOTDIR) from None
            if exc.errno == errno.ENOENT and last:
                return None
            raise Errno(exc.errno or errno.EIO) from None

    @staticmethod
    def _link(target: bytes, cur: list[bytes], pending: deque[bytes], floor: int, links: int,
              resolve_flags: int) -> int:
        """Continue the walk through a symlink's target (cur is the link's
        directory): its components go first; an absolute one restarts at the
        root."""
        if resolve_flags & RESOLVE_NO_SYMLINKS:
            raise Errno(errno.ELOOP)
        links += 1
        if links > MAXSYMLINKS:
            raise Errno(errno.ELOOP)
        if target.startswith(b"/"):
            if resolve_flags & RESOLVE_BENEATH:
                raise Errno(errno.EXDEV)
            del cur[floor:]
        pending.extendleft(reversed([c for c in target.split(b"/") if c and c != b"."]))
        return links

    def _result(self, w: _Walk, name: bytes, must_dir: bool) -> Resolved:
        """name inside the walk's directory."""
        mount, _ = self.mounts.lookup(w.cur)
        fd, owned = w.take()
        return Resolved(join([*w.cur, name]), mount, fd, name, must_dir=must_dir,
                        owned=owned, table=self.mounts)

    def _object(self, w: _Walk, must_dir: bool) -> Resolved:
        """The walk's position itself, as a name in its directory (a mount
        root as its own descriptor)."""
        cur = w.cur
        mount, depth = self.mounts.lookup(cur)
        if mount.kind == "proc":
            return self._proc_result(cur, b"/" if must_dir and cur else b"")
        if depth == len(cur):
            fd, _, owned = self.mounts.root_fd(mount)
            return Resolved(join(cur), mount, fd, b"", must_dir=must_dir, owned=owned,
                            table=self.mounts)
        name = cur.pop()
        w.drop()
        return self._result(w, name, must_dir)

    def _at_cur(self, w: _Walk, last_is_dot: bool, trailing_slash: bool) -> Resolved:
        """The path names the walk's own position. After "." or ".." it is
        a directory acted on relative to itself (name b"."), so the kernel
        answers as for "x/." (EEXIST for mkdir, EINVAL for rmdir...)."""
        if not last_is_dot:
            return self._object(w, trailing_slash)
        mount, _ = self.mounts.lookup(w.cur)
        if mount.kind == "proc":
            return self._proc_result(w.cur, b"/.")
        fd, owned = w.take()
        return Resolved(join(w.cur), mount, fd, b".", owned=owned, table=self.mounts)

    def _proc_result(self, cur: list[bytes], suffix: bytes = b"") -> Resolved:
        host, mount = self.host_of(cur)
        return Resolved(join(cur), mount, proc=host + suffix)

    def _proc_examine(self, cur: list[bytes], last: bool) -> bytes | None:
        """A component walked inside procfs (on its host path): a symlink's
        target (cur then back at the link's directory), else None."""
        host, _ = self.host_of(cur)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            if last:
                return None
            raise Errno(errno.ENOENT) from None
        except OSError as exc:
            raise Errno(exc.errno or errno.EIO) from None
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(host)
            except OSError as exc:
                raise Errno(exc.errno or errno.EIO) from None
            cur.pop()
            return target
        if not last and not stat.S_ISDIR(st.st_mode):
            raise Errno(errno.ENOTDIR)
        return None

    def host_of(self, cur: list[bytes] | tuple[bytes, ...]) -> tuple[bytes, Mount]:
        """The host path of a canonical guest path; inside the proc mount the
        guest's PIDs are translated to host PIDs."""
        host, mount = self.mounts.to_host(cur)
        if mount.kind != "proc":
            return host, mount
        rel = list(cur[len(mount.components):])
        for i in (0, 2):
            if len(rel) > i and rel[i].isdigit() and (i == 0 or rel[1] == b"task"):
                host_pid = self.sb.pids.to_host(int(rel[i]))
                if host_pid is None:
                    raise Errno(errno.ENOENT)
                rel[i] = b"%d" % host_pid
        return mount.host.rstrip(b"/") + (b"/" + b"/".join(rel) if rel else b""), mount

    # -- /proc ------------------------------------------------------------

    def _proc_step(self, proc: Process, tid: int, cur: list[bytes], mount: Mount,
                   pending: deque[bytes], no_magic: bool) -> Resolved | None:
        """Maps /proc/self and /proc/thread-self to the caller's PID and
        follows magic links from the supervisor's side (ELOOP when
        `no_magic`). Rewrites `cur` in place, or returns the final result
        for a link only the kernel can follow."""
        depth = len(mount.components)
        rel = cur[depth:]
        if len(rel) == 1 and rel[0] in (b"self", b"thread-self"):
            vpid = self.sb.pids.to_guest(proc.tgid)
            cur[depth:] = [b"%d" % vpid] if rel[0] == b"self" else \
                [b"%d" % vpid, b"task", b"%d" % self.sb.pids.to_guest(tid)]
            return None
        match = _MAGIC.match(b"/".join(rel))
        if match is None:
            return None
        if no_magic:
            raise Errno(errno.ELOOP)
        host_pid = self.sb.pids.to_host(int(match.group(2) or match.group(1)))
        if host_pid is None:
            raise Errno(errno.ENOENT)
        guest_target = self.magic_target(host_pid, match.group(3))
        if guest_target is None:
            # only the kernel can follow it, and only as the last component
            if pending:
                raise Errno(errno.ENOTDIR)
            host = b"/proc/%d/%s" % (host_pid, match.group(3))
            return Resolved(join(cur), mount, proc=host, magic=True)
        cur[:] = list(split(guest_target))
        return None

    def magic_target(self, host_pid: int, what: bytes) -> bytes | None:
        """The guest path a /proc/PID/{cwd,root,exe,fd/N} link names, or None
        when only the kernel can follow it: a pipe, socket, anonymous inode,
        deleted file, or a file outside the container the process holds
        (inherited stdio). Followed as the last component only, that reopens
        the process's own object (see perform.reopen_check for the limit)."""
        owner = self.sb.process_of(host_pid)
        if what == b"root":
            return owner.root if owner is not None else b"/"
        if what == b"exe" and owner is not None and owner.exe is not None:
            return owner.exe
        try:
            target = os.readlink(b"/proc/%d/%s" % (host_pid, what))
        except OSError as exc:
            raise Errno(exc.errno or errno.ENOENT) from None
        if not target.startswith(b"/") or target.endswith(b" (deleted)"):
            return None
        return self.mounts.to_guest(target)
