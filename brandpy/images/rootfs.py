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
tree with the recorded fake ownership applied (`docker export`). They walk
the container's tree on descriptors, never following a symlink into a
directory nor reading through a path string, as the container may be
running and changing it meanwhile (Docker's CVE-2018-15664).
"""
from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import tarfile
from collections.abc import Callable, Collection
from functools import partial
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


def needs_copy_up(target: PathOrFd, follow: bool = False) -> bool:
    """True if target (a path, not followed if a symlink unless `follow`,
    or an fd) is an image inode that must be copied up before it is changed."""
    try:
        os.getxattr(target, MARKER, **({} if follow else fsmeta.nofollow(target)))
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
    # Looked at on an O_PATH descriptor first: a real open is an event an
    # inotify watcher of the container's would see for every file it writes.
    try:
        probe = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOENT):
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(probe).st_mode) or \
                not needs_copy_up(f"/proc/self/fd/{probe}", follow=True):
            return False
        src = os.open(f"/proc/self/fd/{probe}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    finally:
        os.close(probe)
    try:
        st = os.fstat(src)
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


# ---------------------------------------------------------------- entries --

class Entry:
    """One entry of a container's tree, held as an O_PATH descriptor: what
    is read is the entry listed, never a file a symlink swapped in leads to."""

    def __init__(self, dirfd: int, name: str | bytes) -> None:
        """name in the directory dirfd; name "": dirfd's own file."""
        self.fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd) \
            if name else os.dup(dirfd)
        self.st = os.fstat(self.fd)

    @property
    def path(self) -> str:
        """A path to exactly this inode (a magic link)."""
        return f"/proc/self/fd/{self.fd}"

    def view(self) -> fsmeta.Override:
        """Ownership, mode and type as the container sees them."""
        if not stat.S_ISLNK(self.st.st_mode):
            try:
                return fsmeta.Override.decode(os.getxattr(self.path, fsmeta.XATTR))
            except (OSError, ValueError):
                pass
        return fsmeta.default_view(self.st)

    def link(self) -> str | None:
        return os.readlink("", dir_fd=self.fd) if stat.S_ISLNK(self.st.st_mode) else None

    def open(self) -> int:
        return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Entry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def parent_at(dirfd: int, parts: list[str], create: bool = False) -> int:
    """A new fd of the directory below dirfd that holds the last of parts,
    walked without following symlinks (creating missing directories);
    OSError (ELOOP, ENOTDIR...) when a component is not a directory."""
    fd = os.dup(dirfd)
    try:
        for part in parts[:-1]:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nfd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _below(dirfd: int, name: str, fn: Callable[[int], object]) -> object:
    """fn on the directory `name` in dirfd, entered without following a
    symlink (one swapped in meanwhile is not entered: None)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        return None
    try:
        return fn(fd)
    finally:
        os.close(fd)


def _open_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


# ---------------------------------------------------------------- diff ----

def _meta(view: fsmeta.Override, link: str | None) -> tuple:
    return (view.uid, view.gid, view.mode, view.kind, view.rdev, link)


def _image_meta(path: str, st: os.stat_result) -> tuple:
    """An entry of an image tree (the store's own)."""
    return _meta(fsmeta.view(path, st), os.readlink(path) if stat.S_ISLNK(st.st_mode) else None)


def _meta_at(dirfd: int, name: str) -> tuple | None:
    """An entry of a container's tree; None when it is gone meanwhile."""
    try:
        with Entry(dirfd, name) as e:
            return _meta(e.view(), e.link())
    except OSError:
        return None


def _scan(path: str | int | None) -> dict[str, os.stat_result]:
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

    def walk(cdir: int, idir: str | None, rel: str) -> bool:
        cents, ients = _scan(cdir), _scan(idir)
        changed = False
        for name in sorted(cents.keys() | ients.keys()):
            path = f"{rel}/{name}"
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
                    _below(cdir, name, partial(walk, idir=None, rel=path))
                continue
            ipath = os.path.join(idir, name)
            if stat.S_ISDIR(cst.st_mode) and stat.S_ISDIR(ist.st_mode):
                sub = _below(cdir, name, partial(walk, idir=ipath, rel=path))
                if sub or _meta_at(cdir, name) != _image_meta(ipath, ist):
                    out.append(("C", path))
                    changed = True
                continue
            if stat.S_ISREG(cst.st_mode) and (cst.st_dev, cst.st_ino) == (ist.st_dev, ist.st_ino):
                continue
            if (stat.S_ISREG(cst.st_mode) or stat.S_IFMT(cst.st_mode) != stat.S_IFMT(ist.st_mode)
                    or _meta_at(cdir, name) != _image_meta(ipath, ist)
                    or cst.st_mtime_ns != ist.st_mtime_ns):
                out.append(("C", path))
                changed = True
                if stat.S_ISDIR(cst.st_mode):
                    _below(cdir, name, partial(walk, idir=None, rel=path))
        return changed

    root = _open_dir(container_rootfs)
    try:
        walk(root, os.fspath(image_tree), "")
    finally:
        os.close(root)
    return sorted(out, key=lambda x: x[1])


# ---------------------------------------------------------------- tar -----

_KIND_TYPE = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
              "pipe": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE}


def add_entry(tar: tarfile.TarFile, entry: Entry, name: str,
              links: dict[tuple[int, int], str]) -> None:
    """Add one file to tar under name, as the container sees it (fake
    ownership applied; a second name of an inode becomes a hard link)."""
    st, v = entry.st, entry.view()
    if v.kind == "socket":
        return  # tar cannot hold sockets; Docker skips them too
    info = tarfile.TarInfo(name + ("/" if v.kind == "dir" and not name.endswith("/") else ""))
    info.uid, info.gid, info.mode = v.uid, v.gid, v.mode
    info.mtime = st.st_mtime
    info.type = _KIND_TYPE[v.kind]
    if v.kind in ("char", "block"):
        info.devmajor, info.devminor = os.major(v.rdev), os.minor(v.rdev)
    if v.kind == "symlink":
        info.linkname = entry.link() or ""
    if v.kind == "file":
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            tar.addfile(info)
            return
        links[key] = name
        info.size = st.st_size
        with os.fdopen(entry.open(), "rb") as f:
            tar.addfile(info, f)
        return
    tar.addfile(info)


def add_tree(tar: tarfile.TarFile, dirfd: int, rel: str,
             links: dict[tuple[int, int], str]) -> None:
    """Every entry below the directory dirfd, sorted, depth first, under
    rel/ (entered by descriptor, see Entry)."""
    for name in sorted(_scan(dirfd)):
        arc = f"{rel}/{name}" if rel else name
        try:
            entry = Entry(dirfd, name)
        except OSError:
            continue                  # gone meanwhile
        with entry:
            add_entry(tar, entry, arc, links)
            if stat.S_ISDIR(entry.st.st_mode):
                _below(dirfd, name, partial(add_tree, tar, rel=arc, links=links))


def export(rootfs: Path, out: BinaryIO) -> None:
    """`docker export`: the whole tree as a tar stream, ownership as the container sees it."""
    links: dict[tuple[int, int], str] = {}
    root = _open_dir(rootfs)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            add_tree(tar, root, "", links)
    finally:
        os.close(root)


def _entry_below(root: int, name: str) -> Entry | None:
    parts = name.split("/")
    try:
        parent = parent_at(root, parts)
    except OSError:
        return None
    try:
        return Entry(parent, parts[-1])
    except OSError:
        return None                   # changed meanwhile (a running container)
    finally:
        os.close(parent)


def write_changes(rootfs: Path, image_tree: Path, out: BinaryIO) -> int:
    """A layer tar of what changed in rootfs relative to image_tree, deletions
    as whiteouts (`docker commit`). Returns the number of changes."""
    changes = diff(rootfs, image_tree)
    links: dict[tuple[int, int], str] = {}
    root = _open_dir(rootfs)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for kind, path in changes:
                name = path.lstrip("/")
                if kind == "D":
                    parent, _, base = name.rpartition("/")
                    info = tarfile.TarInfo(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent
                                           else WHITEOUT_PREFIX + base)
                    info.mode = 0o600
                    tar.addfile(info)
                    continue
                entry = _entry_below(root, name)
                if entry is not None:
                    with entry:
                        add_entry(tar, entry, name, links)
    finally:
        os.close(root)
    return len(changes)
