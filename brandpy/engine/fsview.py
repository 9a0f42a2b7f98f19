"""A container's filesystem seen from outside (docker cp, the builder's
COPY): its mount table and the runtime's path resolver, so `..` and
symlinks resolve inside the container and volumes where they are mounted.
Unlike a Sandbox it creates nothing (no mount points, no /dev)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

from brandpy.runtime.mounts import Mount, MountTable
from brandpy.runtime.pathres import Resolved, Resolver
from brandpy.runtime.process import Process

ROOT = Process(tgid=0)
ETC_FILES = ("hosts", "hostname", "resolv.conf")
# What the runtime creates in a rootfs as mount points when they are missing.
PLACEHOLDERS = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev")


class FsView:
    def __init__(self, rootfs: Path, volumes: Sequence[tuple[str, str, bool, str]] = (),
                 state_dir: Path | None = None) -> None:
        mounts = [Mount(b"/", os.fsencode(os.path.realpath(rootfs)), kind="rootfs")]
        if state_dir is not None:
            for name in ETC_FILES:
                if (state_dir / name).is_file():
                    mounts.append(Mount(b"/etc/" + name.encode(),
                                        os.fsencode(state_dir / name), kind="bind",
                                        reopen=True))
        for host, guest, readonly, kind in volumes:
            mounts.append(Mount(os.fsencode(posixpath.normpath("/" + guest.lstrip("/"))),
                                os.fsencode(os.path.realpath(host)), readonly=readonly,
                                kind=kind))
        self.mounts = MountTable(mounts)
        if state_dir is not None:
            self.mounts.check_pins(os.fsencode(state_dir))
        # Resolver is typed for a Sandbox; it reads only the mount table FsView has
        self.resolver = Resolver(self)   # type: ignore[arg-type]

    def resolve(self, path: str, follow: bool = True) -> Resolved:
        """Raises runtime.errors.Errno like the kernel would."""
        return self.resolver.resolve(ROOT, 0, os.fsencode(path), follow=follow)


def drop_placeholders(rootfs: Path, image_tree: Path) -> None:
    """Remove the empty mount points the runtime made in a stopped
    container's rootfs (absent from its image), so a commit does not
    record them as the container's changes."""
    for guest in PLACEHOLDERS:
        rel = guest.lstrip("/")
        path, in_image = rootfs / rel, image_tree / rel
        if os.path.lexists(in_image) or path.is_symlink() or not path.exists():
            continue
        try:
            if path.is_dir():
                path.rmdir()                # only if still empty
            elif path.stat().st_size == 0:
                path.unlink()
        except OSError:
            pass
