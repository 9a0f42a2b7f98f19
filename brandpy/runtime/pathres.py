"""Guest path resolution: a guest path, as a tracee wrote it, to the host
path the kernel should use.

The walk is done here, one component at a time, the way the kernel's
path walk does it, but inside the guest: `..` stops at the process's root,
absolute symlink targets restart at that root, and /proc's magic links
(self, cwd, root, exe, fd/N) are read from the supervisor's side and
mapped back into the guest. The host path handed to the kernel therefore
contains no symlink and no `..` before its last component, so the kernel's
own walk cannot leave the rootfs (up to races with a concurrently
renaming tracee: ptrace is not a security boundary, see README).

Errors in the middle of a path (a missing directory, a file used as a
directory, a symlink loop) are raised here with the errno Linux gives; a
missing or special last component is left to the kernel, so creation and
its error cases behave exactly as on Linux.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import Errno
from .linux import AT_FDCWD
from .mounts import Mount, MountTable, join, split
from .process import Process
from .racepause import race_pause

if TYPE_CHECKING:
    from .sandbox import Sandbox

PATH_MAX = 4096
MAXSYMLINKS = 40
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
SCOPED = RESOLVE_BENEATH | RESOLVE_IN_ROOT

# /proc/PID/{cwd,root,exe}, /proc/PID/fd/N and their /task/TID/ variants.
_MAGIC = re.compile(rb"^(\d+)(?:/task/(\d+))?/(cwd|root|exe|fd/\d+)$")


@dataclass(frozen=True)
class Resolved:
    host: bytes              # what the kernel should be given
    guest: bytes             # canonical guest path (full guest coordinates)
    mount: Mount
    magic: bool = False      # a /proc magic link the kernel must follow itself

    @property
    def readonly(self) -> bool:
        return self.mount.readonly


class Resolver:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.mounts: MountTable = sandbox.mounts

    # -- entry points -----------------------------------------------------

    def resolve(self, proc: Process, tid: int, path: bytes, dirfd: int = AT_FDCWD,
                follow: bool = True, resolve_flags: int = 0) -> Resolved:
        """Resolve `path` as `tid` would see it (relative to `dirfd` when
        it is not absolute). `resolve_flags` are openat2's RESOLVE_IN_ROOT,
        RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS. Raises Errno."""
        if not path:
            raise Errno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Errno(errno.ENAMETOOLONG)
        floor = split(proc.root)
        absolute = path.startswith(b"/")
        if resolve_flags & SCOPED:
            if absolute and resolve_flags & RESOLVE_BENEATH:
                raise Errno(errno.EXDEV)
            floor = start = self._base(proc, tid, dirfd)
        else:
            start = floor if absolute else self._base(proc, tid, dirfd)
        resolved = self._walk(proc, tid, list(start), len(floor), path, follow, resolve_flags)
        race_pause()
        return resolved

    def _base(self, proc: Process, tid: int, dirfd: int) -> tuple[bytes, ...]:
        if dirfd == AT_FDCWD:
            return self.cwd_components(proc, tid)
        return self.dirfd_components(proc, tid, dirfd)

    def guest_of_host(self, proc: Process, host: bytes) -> bytes | None:
        """A host path as the guest names it, relative to the process's root."""
        guest = self.mounts.to_guest(host)
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
        try:
            host = os.readlink(b"/proc/%d/cwd" % tid)
        except OSError as exc:
            raise Errno(exc.errno or errno.ESRCH) from None
        guest = self.mounts.to_guest(host)
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
        guest = self.mounts.to_guest(host)
        if guest is None:
            raise Errno(errno.EACCES, "directory fd outside the container")
        return split(guest)

    # -- the walk ---------------------------------------------------------

    def _walk(self, proc: Process, tid: int, cur: list[bytes], floor: int,
              path: bytes, follow: bool, resolve_flags: int = 0) -> Resolved:
        trailing_slash = path.endswith(b"/")
        pending = [c for c in path.split(b"/") if c and c != b"."]
        last_is_dot = path.rstrip(b"/").endswith((b"/.", b"/..")) or path in (b".", b"..")
        links = 0
        while pending:
            comp = pending.pop(0)
            if comp == b"..":
                if len(cur) > floor:
                    cur.pop()
                elif resolve_flags & RESOLVE_BENEATH:
                    raise Errno(errno.EXDEV)
                continue
            cur.append(comp)
            last = not pending
            if last and not follow and not trailing_slash:
                break
            host, mount = self.host_of(cur)
            if mount.kind == "proc":
                magic = self._proc_step(proc, tid, cur, mount, pending)
                if magic is not None:
                    return magic
                host, mount = self.host_of(cur)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if last:
                    break
                raise Errno(errno.ENOENT) from None
            except NotADirectoryError:
                raise Errno(errno.ENOTDIR) from None
            except PermissionError:
                raise Errno(errno.EACCES) from None
            except OSError as exc:
                raise Errno(exc.errno or errno.EIO) from None
            if stat.S_ISLNK(st.st_mode):
                if resolve_flags & RESOLVE_NO_SYMLINKS:
                    raise Errno(errno.ELOOP)
                links += 1
                if links > MAXSYMLINKS:
                    raise Errno(errno.ELOOP)
                try:
                    target = os.readlink(host)
                except OSError as exc:
                    raise Errno(exc.errno or errno.EIO) from None
                cur.pop()
                if target.startswith(b"/"):
                    if resolve_flags & RESOLVE_BENEATH:
                        raise Errno(errno.EXDEV)
                    del cur[floor:]
                pending[:0] = [c for c in target.split(b"/") if c and c != b"."]
                if not pending and target.endswith(b"/") and not cur[floor:]:
                    break
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                raise Errno(errno.ENOTDIR)
        host, mount = self.host_of(cur)
        if last_is_dot or (trailing_slash and cur):
            # Keep the kernel's view of "x/." and "x/" (EINVAL for rmdir,
            # ENOTDIR for a file) without ever handing it a "..".
            host += b"/." if last_is_dot else b"/"
        return Resolved(host=host, guest=join(cur), mount=mount)

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
                   pending: list[bytes]) -> Resolved | None:
        """Called for each component walked inside the proc mount: maps
        /proc/self and /proc/thread-self to the caller's PID and follows
        magic links from the supervisor's side. Rewrites `cur` in place, or
        returns the final result for a link only the kernel can follow."""
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
        host_pid = self.sb.pids.to_host(int(match.group(2) or match.group(1)))
        if host_pid is None:
            raise Errno(errno.ENOENT)
        guest_target = self.magic_target(host_pid, match.group(3))
        if guest_target is None:
            # A pipe, socket, anonymous inode, deleted file or a file outside
            # the container: only the kernel can follow it, and only as the
            # last component (it then reopens the tracee's own object).
            if pending:
                raise Errno(errno.ENOTDIR)
            host = b"/proc/%d/%s" % (host_pid, match.group(3))
            return Resolved(host=host, guest=join(cur), mount=mount, magic=True)
        cur[:] = list(split(guest_target))
        return None

    def magic_target(self, host_pid: int, what: bytes) -> bytes | None:
        """The guest path a /proc/PID/{cwd,root,exe,fd/N} link names, or None
        when it names nothing in the container."""
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
