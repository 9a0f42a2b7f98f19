"""A container's filesystem from outside: `docker cp` (the archive
endpoints and their X-Docker-Container-Path-Stat header), `docker export`
and `docker diff`.

Paths are resolved as the container would resolve them (the runtime's
resolver over the container's mount table), so `..` and symlinks never
lead out of the rootfs and volumes are reached where they are mounted.
Writes never modify an image inode: a file is replaced by renaming a new
one over it, which leaves the image's hard-linked inode alone.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
from typing import TYPE_CHECKING, BinaryIO

from brandpy import fsmeta
from brandpy.images import rootfs as rootfslib
from brandpy.images.compression import decompressed
from brandpy.runtime.errors import Errno
from brandpy.runtime.pathres import Resolved

from . import timefmt
from .bridge import Body, consume, produce
from .errors import Forbidden, InvalidParameter, NotFound
from .fsview import PLACEHOLDERS, FsView
from .records import Record

if TYPE_CHECKING:
    from aiohttp import web

    from .engine import Engine

STAT_HEADER = "X-Docker-Container-Path-Stat"
# Go's os.FileMode type bits, which the docker CLI decodes from the header.
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
GO_SOCKET, GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20


def _view(rec: Record) -> FsView:
    volumes = [(mp["Source"] if mp["Type"] != "tmpfs" else str(rec.dir / "tmpfs" / str(i)),
                mp["Destination"], not mp["RW"], mp["Type"])
               for i, mp in enumerate(rec.mounts)
               if mp["Type"] != "tmpfs" or (rec.dir / "tmpfs" / str(i)).is_dir()]
    return FsView(rec.rootfs, volumes, rec.dir / "run")


def _resolve(rec: Record, path: str, follow: bool) -> Resolved:
    if not path.startswith("/"):
        path = "/" + path
    try:
        return _view(rec).resolve(path, follow)
    except Errno as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise NotFound(f"Could not find the file {path} in container {rec.name}") from None
        raise InvalidParameter(f"{path}: {os.strerror(exc.errno)}") from None


def _follow_last(path: str) -> bool:
    # As in Docker: a trailing "/" or "/." means the directory a symlink names.
    return path.endswith("/") or path.endswith("/.")


def go_mode(st: os.stat_result, view: fsmeta.Override) -> int:
    mode = view.mode & 0o777
    kind = {"dir": GO_DIR, "symlink": GO_SYMLINK, "pipe": GO_PIPE, "socket": GO_SOCKET,
            "block": GO_DEVICE, "char": GO_DEVICE | GO_CHARDEV}.get(view.kind, 0)
    for bit, go in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID),
                    (stat.S_ISVTX, GO_STICKY)):
        if view.mode & bit:
            mode |= go
    return mode | kind


def _entry(rec: Record, r: Resolved, path: str) -> rootfslib.Entry:
    """What r names, held open: what is read is what was resolved."""
    try:
        if r.name == b".":
            return rootfslib.Entry(r.dirfd, "")
        return rootfslib.Entry(r.dirfd, r.name)
    except OSError:
        raise NotFound(f"Could not find the file {path} in container {rec.name}") from None


def path_stat(engine: Engine, rec: Record, path: str) -> dict:
    with _resolve(rec, path, _follow_last(path)) as r, _entry(rec, r, path) as e:
        st = e.st
        link = ""
        if stat.S_ISLNK(st.st_mode):
            with _resolve(rec, path, True) as target:
                link = os.fsdecode(target.guest)
        name = posixpath.basename(path.rstrip("/")) or "/"
        return {"name": name, "size": st.st_size, "mode": go_mode(st, e.view()),
                "mtime": timefmt.iso(st.st_mtime_ns), "linkTarget": link}


def encode_stat(stat_: dict) -> str:
    return base64.b64encode(json.dumps(stat_).encode()).decode()


# ---------------------------------------------------------------- streams --

async def stream_export(rec: Record, resp: web.StreamResponse) -> None:
    await produce(lambda f: rootfslib.export(rec.rootfs, f), resp.write)


async def stream_get(engine: Engine, rec: Record, path: str,
                     resp: web.StreamResponse) -> None:
    name = "." if path.endswith("/.") else posixpath.basename(path.rstrip("/")) or "."
    with _resolve(rec, path, _follow_last(path)) as r, _entry(rec, r, path) as e:
        def tar_it(f: BinaryIO) -> None:
            links: dict[tuple[int, int], str] = {}
            with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                rootfslib.add_entry(tar, e, name, links)
                if stat.S_ISDIR(e.st.st_mode):
                    top = os.open(e.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    try:
                        rootfslib.add_tree(tar, top, "" if name == "." else name, links)
                    finally:
                        os.close(top)

        await produce(tar_it, resp.write)


def changes(engine: Engine, rec: Record) -> list[dict]:
    tree = engine.store.get(rec.image_id).tree
    kinds = {"C": 0, "A": 1, "D": 2}
    # The runtime's mount points are not the container's changes (Docker
    # hides its /etc/hosts and friends the same way).
    return [{"Path": path, "Kind": kinds[kind]}
            for kind, path in rootfslib.diff(rec.rootfs, tree, PLACEHOLDERS)]


# ---------------------------------------------------------------- put -----

async def put(engine: Engine, rec: Record, path: str, body: Body,
              no_overwrite_dir: bool, copy_uid_gid: bool) -> None:
    with _resolve(rec, path, True) as r, _entry(rec, r, path) as e:
        if not stat.S_ISDIR(e.st.st_mode):
            raise InvalidParameter(f"extraction point is not a directory: {path}")
        if r.readonly:
            raise Forbidden(f"mounted volume is marked read-only: {path}")
        dest = os.open(e.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        await consume(body, lambda f: extract_tar(f, dest, no_overwrite_dir,
                                                  None if copy_uid_gid else (0, 0)))
    finally:
        os.close(dest)


def extract_tar(src: BinaryIO, dest: int | str, no_overwrite_dir: bool = False,
                owner: tuple[int, int] | None = None) -> None:
    """Extract a (possibly compressed) tar into the directory dest (an fd,
    or a host path) of a container rootfs: every entry made relative to it,
    never through a symlink, never writing into an existing inode (a new
    file is renamed over the old one, so image inodes are left alone).
    owner: (uid, gid) as the container sees them for everything, or None to
    keep the archive's."""
    dirfd = dest if isinstance(dest, int) else \
        os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        stream, _ = decompressed(src)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                _extract_one(tar, member, dirfd, no_overwrite_dir, owner)
    except tarfile.TarError as exc:
        raise InvalidParameter(f"the archive is not a valid tar ({exc})") from None
    finally:
        if not isinstance(dest, int):
            os.close(dirfd)


def _parent_fd(dest: int, parts: list[str]) -> int:
    """An fd of the directory that will hold the last part, walked without
    following symlinks, creating missing directories."""
    try:
        return rootfslib.parent_at(dest, parts, create=True)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise InvalidParameter(f"cannot extract {'/'.join(parts)!r}: a directory on the "
                                   "way is a symlink or not a directory in the container") \
                from None
        raise


def _extract_one(tar: tarfile.TarFile, m: tarfile.TarInfo, dest: int, no_overwrite_dir: bool,
                 owner: tuple[int, int] | None) -> None:
    parts = [p for p in m.name.split("/") if p not in ("", ".")]
    if not parts:
        return
    if ".." in parts:
        raise InvalidParameter(f"archive entry {m.name!r} leaves the extraction directory")
    dirfd = _parent_fd(dest, parts)
    name = parts[-1]
    try:
        try:
            old = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and no_overwrite_dir and stat.S_ISDIR(old.st_mode) != m.isdir():
            raise InvalidParameter(f"cannot overwrite {'directory' if m.isdir() else 'non-directory'} "
                                   f"{m.name!r} with {'non-directory' if m.isdir() else 'directory'}")
        if m.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                os.unlink(name, dir_fd=dirfd)
                old = None
            if old is None:
                os.mkdir(name, 0o700, dir_fd=dirfd)
            target_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
            try:
                _set_meta(target_fd, m, owner)
            finally:
                os.close(target_fd)
            return
        tmp = f".brandpy-cp-{secrets.token_hex(4)}"
        if m.isreg():
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd)
            try:
                src = tar.extractfile(m)
                assert src is not None   # m is a regular file
                while chunk := src.read(1 << 20):
                    os.write(fd, chunk)
                _set_meta(fd, m, owner)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, tmp, dir_fd=dirfd)
        elif m.islnk():
            lparts = [p for p in m.linkname.split("/") if p not in ("", ".")]
            if ".." in lparts or not lparts:
                raise InvalidParameter(f"hard link {m.name!r} points outside the archive")
            lfd = _parent_fd(dest, lparts)
            try:
                os.link(lparts[-1], tmp, src_dir_fd=lfd, dst_dir_fd=dirfd, follow_symlinks=False)
            finally:
                os.close(lfd)
        elif m.ischr() or m.isblk() or m.isfifo():
            _special(dirfd, tmp, m, owner)
        else:
            return
        if old is not None and stat.S_ISDIR(old.st_mode):
            _rmtree_at(dirfd, name)
        os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    finally:
        os.close(dirfd)


def _special(dirfd: int, tmp: str, m: tarfile.TarInfo, owner: tuple[int, int] | None) -> None:
    kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
    rdev = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
    if os.geteuid() == 0 or m.isfifo():
        os.mknod(tmp, kind | (m.mode & 0o7777), rdev, dir_fd=dirfd)
        return
    # Unprivileged: an empty file whose recorded type is the device.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd)
    try:
        uid, gid = owner or (m.uid, m.gid)
        fsmeta.write(fd, fsmeta.Override(uid, gid, m.mode & 0o7777,
                                         "char" if m.ischr() else "block", rdev))
    finally:
        os.close(fd)


def _set_meta(fd: int, m: tarfile.TarInfo, owner: tuple[int, int] | None) -> None:
    """Mode, owner and mtime."""
    uid, gid = owner or (m.uid, m.gid)
    if fsmeta.enabled():
        os.fchmod(fd, (m.mode & 0o777) | 0o600 | (0o100 if m.isdir() else 0))
        fsmeta.write(fd, fsmeta.Override(uid, gid, m.mode & 0o7777,
                                         "dir" if m.isdir() else "file"))
    else:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, m.mode & 0o7777)
    os.utime(fd, (m.mtime, m.mtime))


def _rmtree_at(dirfd: int, name: str) -> None:
    shutil.rmtree(name, dir_fd=dirfd)
