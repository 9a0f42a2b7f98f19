"""Container filesystems made from an image without copying or modifying it.

A container rootfs is a hard-link farm of the image's tree: directories are
new, symlinks and device nodes are recreated (cheap, and so a chown of them
cannot reach the image), and regular files are hard links to the image's
inodes. Those inodes carry the marker xattr MARKER (set when the layer was
unpacked), so the runtime's syscall handlers can cheaply ask
`needs_copy_up(path_or_fd)` before any write-open, truncate, chmod, chown,
utimes or xattr change, and call `copy_up_at(dirfd, name)` to give the container its
own copy. Limitation: a file hard-linked to another path in the image is
copied up alone; the other name keeps the image's content.

`diff` lists what changed as `docker diff` does; `export` writes a tar of the
tree with the recorded fake ownership applied (`docker export`).
"""
from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import tarfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import BinaryIO

from brandpy import fsmeta
from brandpy.images.layers import MARKER, WHITEOUT_PREFIX
from brandpy.images.tree import copy_dir_meta

PathOrFd = str | bytes | os.PathLike | int


def create(image_tree: Path, dest: Path) -> None:
    """Make dest (must not exist) a copy-on-write view of image_tree."""
    dest.mkdir(mode=0o700)
    privileged = os.geteuid() == 0
    times: list[tuple[Path, os.stat_result]] = []

    def walk(src: Path, dst: Path) -> None:
        with os.scandir(src) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                target = dst / e.name
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(target, 0o700)
                    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        copy_dir_meta(st, e.path, fd)
                    finally:
                        os.close(fd)
                    walk(Path(e.path), target)
                    times.append((target, st))
                elif stat.S_ISREG(st.st_mode):
                    os.link(e.path, target, follow_symlinks=False)
                elif stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(e.path), target)
                    if privileged:
                        os.lchown(target, st.st_uid, st.st_gid)
                    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                    os.mknod(target, st.st_mode, st.st_rdev)
                    if privileged:
                        os.lchown(target, st.st_uid, st.st_gid)
                    os.chmod(target, stat.S_IMODE(st.st_mode))
                    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    root = os.stat(image_tree)
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        copy_dir_meta(root, str(image_tree), fd)
    finally:
        os.close(fd)
    walk(image_tree, dest)
    for path, st in reversed(times):
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def needs_copy_up(target: PathOrFd) -> bool:
    """True if target (a path, not followed if a symlink, or an fd) is an
    image inode that must be copied up before it is changed."""
    try:
        os.getxattr(target, MARKER, **fsmeta.nofollow(target))
        return True
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM, errno.ENOENT):
            return False
        raise


def copy_up(host_path: str | os.PathLike) -> bool:
    """copy_up_at for a host path (its directory is opened as given)."""
    path = os.fspath(host_path)
    parent = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return copy_up_at(parent, os.path.basename(path))
    finally:
        os.close(parent)


def copy_up_at(dirfd: int, name: str | bytes) -> bool:
    """Replace the hard link `name` in the directory `dirfd` with a private
    copy (data, mode, owner, times, xattrs except the marker). Returns False
    when there was nothing to do. Every step is relative to dirfd and never
    follows `name`, so a container renaming or swapping things meanwhile
    cannot redirect it. Safe against concurrent copy-ups of the same image
    inode: they serialise on a lock on that inode and each re-checks its own
    link."""
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                      dir_fd=dirfd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            return False
        raise
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode) or not needs_copy_up(src):
            return False
        fcntl.flock(src, fcntl.LOCK_EX)
        cur = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        if (cur.st_dev, cur.st_ino) != (st.st_dev, st.st_ino):
            return False  # another thread of this container already copied it up
        tmp = b".brandpy-copyup-" + secrets.token_hex(8).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dirfd)
        try:
            _copy_data(src, fd, st.st_size)
            for xname in os.listxattr(src):
                if xname != MARKER:
                    os.setxattr(fd, xname, os.getxattr(src, xname))
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.close(fd)
            fd = -1
            os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp, dir_fd=dirfd)
            raise
        return True
    finally:
        os.close(src)


def _copy_data(src: int, dst: int, size: int) -> None:
    offset = 0
    while offset < size:
        try:
            n = os.copy_file_range(src, dst, size - offset)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = os.sendfile(dst, src, offset, size - offset)
        if n == 0:
            break
        offset += n


# ---------------------------------------------------------------- diff ----

def _meta(path: str, st: os.stat_result) -> tuple:
    v = fsmeta.view(path, st)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return (v.uid, v.gid, v.mode, v.kind, v.rdev, link)


def _scan(path: str | None) -> dict[str, os.stat_result]:
    if path is None:
        return {}
    with os.scandir(path) as it:
        return {e.name: e.stat(follow_symlinks=False) for e in it}


def diff(container_rootfs: Path, image_tree: Path,
         hidden: Collection[str] = ()) -> list[tuple[str, str]]:
    """[(kind, path)] with kind 'A' (added), 'C' (changed), 'D' (deleted), as
    `docker diff` reports them, sorted by path. A regular file is unchanged
    while it is still the image's inode. A hidden path the image has not
    (the runtime's mount points) is no change, nor a change of its
    directory."""
    out: list[tuple[str, str]] = []

    def walk(cdir: str, idir: str | None, rel: str) -> bool:
        cents, ients = _scan(cdir), _scan(idir)
        changed = False
        for name in sorted(cents.keys() | ients.keys()):
            path = f"{rel}/{name}"
            cpath = os.path.join(cdir, name)
            cst, ist = cents.get(name), ients.get(name)
            if cst is None:
                out.append(("D", path))
                changed = True
                continue
            if ist is None or idir is None:     # (no idir, no ist)
                if path in hidden:
                    continue
                out.append(("A", path))
                changed = True
                if stat.S_ISDIR(cst.st_mode):
                    walk(cpath, None, path)
                continue
            ipath = os.path.join(idir, name)
            if stat.S_ISDIR(cst.st_mode) and stat.S_ISDIR(ist.st_mode):
                sub = walk(cpath, ipath, path)
                if sub or _meta(cpath, cst) != _meta(ipath, ist):
                    out.append(("C", path))
                    changed = True
                continue
            if stat.S_ISREG(cst.st_mode) and (cst.st_dev, cst.st_ino) == (ist.st_dev, ist.st_ino):
                continue
            if (stat.S_ISREG(cst.st_mode) or stat.S_IFMT(cst.st_mode) != stat.S_IFMT(ist.st_mode)
                    or _meta(cpath, cst) != _meta(ipath, ist) or cst.st_mtime_ns != ist.st_mtime_ns):
                out.append(("C", path))
                changed = True
                if stat.S_ISDIR(cst.st_mode):
                    walk(cpath, None, path)
        return changed

    walk(os.fspath(container_rootfs), os.fspath(image_tree), "")
    return sorted(out, key=lambda x: x[1])


# ---------------------------------------------------------------- tar -----

_KIND_TYPE = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
              "pipe": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE}


def add_entry(tar: tarfile.TarFile, host_path: str, name: str, st: os.stat_result,
              links: dict[tuple[int, int], str]) -> None:
    """Add one file to tar under name, as the container sees it (fake
    ownership applied; a second name of an inode becomes a hard link)."""
    v = fsmeta.view(host_path, st)
    if v.kind == "socket":
        return  # tar cannot hold sockets; Docker skips them too
    info = tarfile.TarInfo(name + ("/" if v.kind == "dir" and not name.endswith("/") else ""))
    info.uid, info.gid, info.mode = v.uid, v.gid, v.mode
    info.mtime = st.st_mtime
    info.type = _KIND_TYPE[v.kind]
    if v.kind in ("char", "block"):
        info.devmajor, info.devminor = os.major(v.rdev), os.minor(v.rdev)
    if v.kind == "symlink":
        info.linkname = os.readlink(host_path)
    if v.kind == "file":
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            tar.addfile(info)
            return
        links[key] = name
        info.size = st.st_size
        with open(host_path, "rb") as f:
            tar.addfile(info, f)
        return
    tar.addfile(info)


def _walk(root: str, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        st = e.stat(follow_symlinks=False)
        name = f"{rel}/{e.name}" if rel else e.name
        yield e.path, name, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, name)


def export(rootfs: Path, out: BinaryIO) -> None:
    """`docker export`: the whole tree as a tar stream, ownership as the container sees it."""
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for host_path, name, st in _walk(os.fspath(rootfs)):
            add_entry(tar, host_path, name, st, links)


def write_changes(rootfs: Path, image_tree: Path, out: BinaryIO) -> int:
    """A layer tar of what changed in rootfs relative to image_tree, deletions
    as whiteouts (`docker commit`). Returns the number of changes."""
    changes = diff(rootfs, image_tree)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for kind, path in changes:
            name = path.lstrip("/")
            if kind == "D":
                parent, _, base = name.rpartition("/")
                info = tarfile.TarInfo(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base)
                info.mode = 0o600
                tar.addfile(info)
                continue
            host_path = os.path.join(rootfs, name)
            add_entry(tar, host_path, name, os.lstat(host_path), links)
    return len(changes)
