"""Assembling an image's flattened tree from its unpacked layer directories.

Non-directories are hard links to the layer's inodes (so the tree costs no
data); directories are new, carrying the topmost layer's mode, owner and
fake-ownership xattr. Whiteouts in a layer remove lower entries; an opaque
marker hides everything below. All paths here are inside our own store and
walked without following symlinks.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from brandpy import fsmeta
from brandpy.images.layers import OPAQUE, WHITEOUT_PREFIX, _remove_at


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L1) = DiffID(L1); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def copy_dir_meta(src: os.stat_result, src_path: str | int, dst_fd: int) -> None:
    """Mode, owner and fake ownership of a directory (times are set by the caller)."""
    if os.geteuid() == 0:
        os.fchown(dst_fd, src.st_uid, src.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(src.st_mode))
    ov = fsmeta.read(src_path)
    if ov is not None:
        fsmeta.write(dst_fd, ov)
    else:
        fsmeta.clear(dst_fd)


def apply_layer_dir(layer: Path, tree: Path) -> None:
    """Apply one unpacked layer on top of tree (both must be directories)."""
    times: list[tuple[Path, os.stat_result]] = []
    _apply(layer, tree, times)
    for path, st in reversed(times):
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _apply(src: Path, dst: Path, times: list[tuple[Path, os.stat_result]]) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    dfd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        names = {e.name for e in entries}
        if OPAQUE in names:
            for child in os.listdir(dfd):
                _remove_at(dfd, child)
        for e in entries:
            if e.name.startswith(WHITEOUT_PREFIX) and e.name != OPAQUE:
                _remove_at(dfd, e.name[len(WHITEOUT_PREFIX):])
        for e in entries:
            if e.name.startswith(WHITEOUT_PREFIX):
                continue
            st = e.stat(follow_symlinks=False)
            try:
                cur = os.stat(e.name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                cur = None
            if stat.S_ISDIR(st.st_mode):
                if cur is not None and not stat.S_ISDIR(cur.st_mode):
                    _remove_at(dfd, e.name)
                    cur = None
                if cur is None:
                    os.mkdir(e.name, 0o700, dir_fd=dfd)
                cfd = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    copy_dir_meta(st, e.path, cfd)
                finally:
                    os.close(cfd)
                _apply(Path(e.path), dst / e.name, times)
                times.append((dst / e.name, st))
            else:
                if cur is not None:
                    _remove_at(dfd, e.name)
                os.link(e.path, e.name, dst_dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(dfd)


def build(layers: list[Path], dest: Path) -> None:
    """Make dest (a new directory) the flattened tree of layers, base first."""
    dest.mkdir(mode=0o755)
    for layer in layers:
        root = os.stat(layer)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
        try:
            copy_dir_meta(root, str(layer), fd)
        finally:
            os.close(fd)
        apply_layer_dir(layer, dest)
