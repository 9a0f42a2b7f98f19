"""Crash-safe file writes and removal of trees we own."""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write data so that path holds either the old or the new content, even
    across a crash: temp file in the same directory, fsync, rename, fsync dir."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-" + path.name[:40])
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def _unlink_quiet(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def rmtree(path: Path) -> None:
    """Remove a tree even where a layer left a directory without u+wx (as root
    that never matters; unprivileged we keep u+rwx, but be safe)."""
    def onerror(func, p, exc_info):  # noqa: ANN001 - shutil callback signature
        if isinstance(exc_info[1], FileNotFoundError):
            return
        parent = os.path.dirname(p)
        st = os.lstat(parent)
        os.chmod(parent, stat.S_IMODE(st.st_mode) | 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | 0o700)
            shutil.rmtree(p, onerror=onerror)
        else:
            os.unlink(p)
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=onerror)
        else:
            os.unlink(path)


def remove_any(path: Path) -> None:
    """Remove whatever is at path (file, symlink or directory tree)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        rmtree(path)
    else:
        os.unlink(path)
