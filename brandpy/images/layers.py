"""Unpacking a layer tar (plain, gzip, zstd, xz, bzip2) into a directory.

Each layer is unpacked on its own, whiteout files (`.wh.NAME`,
`.wh..wh..opq`) kept as empty files, and the image tree is assembled from
layer directories later (tree.py), as overlay2 does.

Every path is resolved one component at a time with O_NOFOLLOW relative to
directory fds, so no entry can write through a symlink or outside the
target; absolute names, `..` and hard links to outside the layer are refused.

Unprivileged, files are owned by the current user and kept u+rw (dirs
u+rwx) so later writes and removal work; the layer's uid/gid/mode and the
real type of device nodes and fifos (stored as empty regular files) are
recorded through fsmeta. As root, real chown/chmod/mknod are used.
Regular files get the image marker xattr (rootfs.MARKER) so that container
filesystems made of hard links to them know to copy them up before a write.
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from brandpy import fsmeta
from brandpy.images.compression import STREAM_ERRORS, HashingReader, decompressed

MARKER = "user.brandpy.image"
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20


class LayerError(Exception):
    """A layer tar that cannot be applied (corrupt, truncated, or unsafe)."""


@dataclass
class LayerInfo:
    diff_id: str      # sha256 of the uncompressed tar
    size: int         # uncompressed size
    compression: str | None


def split_name(name: str, what: str = "tar entry") -> list[str]:
    """Normalise a tar member name to path components, refusing escapes."""
    if name.startswith("/"):
        raise LayerError(f"{what} {name!r} is an absolute path; refusing to unpack a layer "
                         "that writes outside its root")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{what} {name!r} contains '..'; refusing to unpack a layer "
                         "that writes outside its root")
    return parts


class _Dirs:
    """Opens directories under a root fd one component at a time, never following symlinks."""

    def __init__(self, root: Path):
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        self._cache: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self._drop()
        os.close(self.root_fd)

    def _drop(self) -> None:
        if self._cache:
            os.close(self._cache[1])
            self._cache = None

    def open(self, parts: list[str], create: bool, entry: str) -> int | None:
        """A borrowed fd for the directory at parts (valid until the next call)."""
        key = tuple(parts)
        if self._cache and self._cache[0] == key:
            return self._cache[1]
        self._drop()
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts):
                try:
                    nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if not create:
                        os.close(fd)
                        return None
                    raise LayerError(f"tar entry {entry!r}: {'/'.join(parts[:i + 1])!r} is not a "
                                     "directory (a symlink or file); refusing to write through it") from None
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        self._cache = (key, fd)
        return fd


def _remove_at(dir_fd: int, name: str) -> None:
    """Remove name (any type, dirs recursively) in dir_fd without following symlinks."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    if os.geteuid() != 0:
        os.chmod(name, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=dir_fd, follow_symlinks=False)
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            _remove_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _apply_xattrs(target: int | str, member: tarfile.TarInfo, privileged: bool) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        # Unprivileged we may only set user.*; security.capability and friends
        # need root, and our own markers must never come from a layer.
        if name in (MARKER, fsmeta.XATTR) or (not privileged and not name.startswith("user.")):
            continue
        raw = value.encode("utf-8", "surrogateescape")
        os.setxattr(target, name, raw, **fsmeta.nofollow(target))


class _Extractor:
    def __init__(self, dest: Path):
        self.dest = dest
        self.dirs = _Dirs(dest)
        self.privileged = os.geteuid() == 0
        self.deferred_dirs: list[tuple[list[str], tarfile.TarInfo]] = []

    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = split_name(member.name)
        if not parts:  # "./": the layer's root directory
            if member.isdir():
                self.deferred_dirs.append(([], member))
            return
        parent = self.dirs.open(parts[:-1], create=True, entry=member.name)
        assert parent is not None
        name = parts[-1]
        try:
            existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if member.isdir() and stat.S_ISDIR(existing.st_mode):
                self.deferred_dirs.append((parts, member))
                return
            _remove_at(parent, name)

        if member.isreg():
            self._file(parent, name, member, tar)
        elif member.isdir():
            os.mkdir(name, 0o700, dir_fd=parent)
            self.deferred_dirs.append((parts, member))
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            if self.privileged:
                os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            os.utime(name, ns=_ns(member), dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            self._hardlink(parent, name, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._special(parent, name, member)
        else:
            raise LayerError(f"tar entry {member.name!r} has unsupported type {member.type!r}")

    def _file(self, parent: int, name: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            src = tar.extractfile(member)
            assert src is not None
            while chunk := src.read(_CHUNK):
                _write_all(fd, chunk)
            self._meta(fd, member, "file", 0)
            os.setxattr(fd, MARKER, b"1")
            os.utime(fd, ns=_ns(member))
        finally:
            os.close(fd)

    def _special(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        kind = "char" if member.ischr() else "block" if member.isblk() else "pipe"
        rdev = os.makedev(member.devmajor, member.devminor) if kind != "pipe" else 0
        if self.privileged:
            fmt = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "pipe": stat.S_IFIFO}[kind]
            os.mknod(name, fmt | 0o600, rdev, dir_fd=parent)
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            os.chmod(name, member.mode & 0o7777, dir_fd=parent)
            os.utime(name, ns=_ns(member), dir_fd=parent, follow_symlinks=False)
            return
        # A regular stand-in whose override names the real type (containers/storage's way).
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            self._meta(fd, member, kind, rdev)
            os.setxattr(fd, MARKER, b"1")
            os.utime(fd, ns=_ns(member))
        finally:
            os.close(fd)

    def _meta(self, fd: int, member: tarfile.TarInfo, kind: str, rdev: int) -> None:
        mode = member.mode & 0o7777
        if self.privileged:
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, mode)  # after chown, which clears setuid bits
        else:
            real = mode | (0o700 if kind == "dir" else 0o600)
            os.fchmod(fd, real)
            if member.uid or member.gid or real != mode or kind not in ("file", "dir"):
                fsmeta.write(fd, fsmeta.Override(member.uid, member.gid, mode, kind, rdev))
        _apply_xattrs(fd, member, self.privileged)

    def _hardlink(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        tparts = split_name(member.linkname, "hard link target")
        if not tparts:
            raise LayerError(f"hard link {member.name!r} points to the layer root")
        # Resolve the target's directory with a second walker so `parent` stays valid.
        walker = _Dirs(self.dest)
        try:
            tdir = walker.open(tparts[:-1], create=False, entry=member.name)
            try:
                if tdir is None:
                    raise FileNotFoundError
                os.link(tparts[-1], name, src_dir_fd=tdir, dst_dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise LayerError(f"hard link {member.name!r} points to {member.linkname!r}, which is "
                                 "not earlier in the same layer") from None
        finally:
            walker.close()

    def finish(self) -> None:
        # Directory modes and times last: children changed mtimes, and a
        # read-only directory would have blocked writing into it.
        for parts, member in reversed(self.deferred_dirs):
            fd = self.dirs.open(parts, create=False, entry=member.name)
            if fd is None:
                continue
            self._meta(fd, member, "dir", 0)
            os.utime(fd, ns=_ns(member))
        self.dirs.close()


def _ns(member: tarfile.TarInfo) -> tuple[int, int]:
    t = int(member.mtime * 10**9)
    return t, t


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def extract(src: BinaryIO, dest: Path, *, name: str = "layer",
            on_read: Callable[[int], None] | None = None) -> LayerInfo:
    """Unpack a (possibly compressed) layer tar into the empty directory dest.

    on_read gets the count of compressed bytes consumed so far (for progress).
    Returns the diffID (sha256 of the uncompressed tar), which the caller must
    compare with the image config's rootfs.diff_ids."""
    counted = HashingReader(src, on_read)
    raw, kind = decompressed(counted)
    plain = HashingReader(raw)
    ex = _Extractor(dest)
    try:
        with tarfile.open(fileobj=plain, mode="r|", errorlevel=2) as tar:
            for member in tar:
                ex.apply(member, tar)
        plain.drain()
        ex.finish()
    except LayerError as e:
        raise LayerError(f"{name}: {e}") from None
    except tarfile.TarError as e:
        raise LayerError(f"{name} is not a valid tar archive or is truncated ({e}); "
                         "download or export it again") from None
    except STREAM_ERRORS as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise
        raise LayerError(f"{name} is corrupt or truncated ({kind or 'tar'} stream: {e}); "
                         "download or export it again") from None
    return LayerInfo(plain.digest, plain.count, kind)
