"""Named and anonymous volumes (the `local` driver): a directory
<data root>/volumes/<name>/_data, with its record in volume.json."""

from __future__ import annotations

import builtins
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from brandpy import pathnames
from brandpy.images.fsutil import atomic_write_json, rmtree
from brandpy.images.layers import MARKER
from brandpy.runtime.errors import Errno

from . import timefmt
from .errors import Conflict, InvalidParameter, NotFound
from .filters import Filters
from .fsview import FsView

META = "volume.json"


class Volumes:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(".tmp-*"):
            rmtree(leftover)

    def _dir(self, name: str) -> Path:
        """The volume's directory; only a name of Docker's grammar has one,
        so no name reaches outside the volumes directory."""
        return pathnames.child(self.root, pathnames.volume_name(name))

    def data_path(self, name: str) -> Path:
        return self._dir(name) / "_data"

    def exists(self, name: str) -> bool:
        return pathnames.is_volume_name(name) and (self._dir(name) / META).exists()

    def get(self, name: str) -> dict:
        if not self.exists(name):
            raise NotFound(f"get {name}: no such volume")
        return json.loads((self._dir(name) / META).read_text())

    def create(self, name: str = "", driver: str = "local", labels: dict | None = None,
               options: dict | None = None, anonymous: bool = False) -> tuple[dict, bool]:
        """The volume (created unless it exists) and whether it was created."""
        if driver not in ("", "local"):
            # dockerd's plugin lookup, and its 404 (brandpy has only the local driver)
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not '
                           "found")
        if options:
            raise InvalidParameter("the local driver's options (type, device, o) need mount(2); "
                                   "brandpy volumes are plain directories: drop --opt")
        if not name:
            name, anonymous = secrets.token_hex(32), True
        final = self._dir(name)
        if self.exists(name):
            return self.get(name), False
        vol_labels = dict(labels or {})
        if anonymous:
            vol_labels["com.docker.volume.anonymous"] = ""
        vol = {"CreatedAt": timefmt.iso().split(".")[0] + "Z", "Driver": "local",
               "Labels": vol_labels, "Mountpoint": str(final / "_data"),
               "Name": name, "Options": None, "Scope": "local"}
        tmp = self.root / f".tmp-{secrets.token_hex(6)}"
        try:
            (tmp / "_data").mkdir(parents=True)
            atomic_write_json(tmp / META, vol)
            os.rename(tmp, final)
        except BaseException as exc:
            rmtree(tmp)
            if (isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTEMPTY)
                    and self.exists(name)):
                return self.get(name), False     # made by a concurrent create
            raise
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

    # builtins.list in the methods below list(): the name is the method there.
    def remove(self, name: str, force: bool, users: builtins.list[str]) -> None:
        if not self.exists(name):
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        trash = self.root / f".tmp-{secrets.token_hex(6)}"
        os.rename(self._dir(name), trash)
        rmtree(trash)

    def prune(self, filters: Filters, users: Callable[[str], builtins.list[str]]
              ) -> tuple[builtins.list[str], int]:
        removed: builtins.list[str] = []
        space = 0
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

    def populate(self, name: str, rootfs: Path, destination: str) -> None:
        """Docker copies the image's content at the mount point into an empty
        volume the first time it is mounted; the mount point is resolved as
        the container sees it, so an image's symlinks stay in its rootfs."""
        data = self.data_path(name)
        try:
            source = Path(os.fsdecode(FsView(rootfs).resolve(destination).host))
        except Errno:
            return      # nothing there in the image
        if not source.is_dir() or any(data.iterdir()):
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
