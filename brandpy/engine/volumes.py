"""Named and anonymous volumes (the `local` driver): a directory
<data root>/volumes/<name>/_data, with its record in volume.json."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from brandpy.images.fsutil import atomic_write_json, rmtree
from brandpy.images.layers import MARKER

from . import timefmt
from .errors import Conflict, InvalidParameter, NotFound
from .filters import Filters
from .names import valid_name

META = "volume.json"


class Volumes:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(".tmp-*"):
            rmtree(leftover)

    def _dir(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self._dir(name) / META).exists()

    def get(self, name: str) -> dict:
        try:
            return json.loads((self._dir(name) / META).read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"get {name}: no such volume") from None

    def create(self, name: str = "", driver: str = "local", labels: dict | None = None,
               options: dict | None = None, anonymous: bool = False) -> tuple[dict, bool]:
        """The volume (created unless it exists) and whether it was created."""
        if driver not in ("", "local"):
            raise InvalidParameter(f"volume driver {driver!r} is not available: brandpy has "
                                   "only the local driver")
        if options:
            raise InvalidParameter("the local driver's options (type, device, o) need mount(2); "
                                   "brandpy volumes are plain directories: drop --opt")
        if not name:
            name, anonymous = secrets.token_hex(32), True
        elif not valid_name(name):
            raise InvalidParameter(f"create {name}: \"{name}\" includes invalid characters for a "
                                   "local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are "
                                   "allowed. If you intended to pass a host directory, use "
                                   "absolute path")
        if self.exists(name):
            return self.get(name), False
        tmp = self.root / f".tmp-{secrets.token_hex(6)}"
        (tmp / "_data").mkdir(parents=True)
        vol = {"CreatedAt": timefmt.iso().split(".")[0] + "Z", "Driver": "local",
               "Labels": dict(labels or {}), "Mountpoint": str(self._dir(name) / "_data"),
               "Name": name, "Options": None, "Scope": "local"}
        if anonymous:
            vol["Labels"]["com.docker.volume.anonymous"] = ""
        atomic_write_json(tmp / META, vol)
        os.rename(tmp, self._dir(name))
        return vol, True

    def all(self) -> list[dict]:
        out = []
        for d in sorted(self.root.iterdir()):
            if not d.name.startswith(".") and (d / META).exists():
                out.append(json.loads((d / META).read_text()))
        return out

    def list(self, filters: Filters, users: Callable[[str], list[str]]) -> list[dict]:
        out = []
        for vol in self.all():
            if not filters.match("name", vol["Name"]) and not any(
                    n in vol["Name"] for n in filters.get("name")):
                continue
            if not filters.match("driver", vol["Driver"]) or not filters.match_labels(vol["Labels"]):
                continue
            dangling = filters.bool("dangling")
            if dangling is not None and dangling == bool(users(vol["Name"])):
                continue
            out.append(vol)
        return out

    def remove(self, name: str, force: bool, users: list[str]) -> None:
        if not self.exists(name):
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        trash = self.root / f".tmp-{secrets.token_hex(6)}"
        os.rename(self._dir(name), trash)
        rmtree(trash)

    def prune(self, filters: Filters, users: Callable[[str], list[str]]) -> tuple[list[str], int]:
        removed, space = [], 0
        all_volumes = filters.bool("all")
        for vol in self.all():
            if users(vol["Name"]) or not filters.match_labels(vol["Labels"]):
                continue
            # Like Docker 23+, prune only removes anonymous volumes unless all=true.
            if not all_volumes and "com.docker.volume.anonymous" not in vol["Labels"]:
                continue
            space += usage(Path(vol["Mountpoint"]))
            self.remove(vol["Name"], False, [])
            removed.append(vol["Name"])
        return removed, space

    def populate(self, name: str, source: Path) -> None:
        """Docker copies the image's content at the mount point into an empty
        volume the first time it is mounted."""
        data = self._dir(name) / "_data"
        if not source.is_dir() or source.is_symlink() or any(data.iterdir()):
            return
        shutil.copytree(source, data, symlinks=True, dirs_exist_ok=True,
                        copy_function=_private_copy)
        shutil.copystat(source, data)


def _private_copy(src: str, dst: str) -> None:
    """A copy that is the volume's own: without the image-inode marker."""
    shutil.copy2(src, dst, follow_symlinks=False)
    if not os.path.islink(dst):
        try:
            os.removexattr(dst, MARKER)
        except OSError:
            pass


def usage(path: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total
