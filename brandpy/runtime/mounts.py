"""The container's mount table: which host directory backs each guest path.

Everything here is bytes: guest programs may use paths that are not UTF-8.
Guest paths are absolute and canonical (no `.`, `..`, `//`, symlinks); the
resolver in `pathres` produces them component by component.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mount:
    guest: bytes            # canonical guest mount point, b"/" for the rootfs
    host: bytes             # host directory or file backing it
    readonly: bool = False
    kind: str = "bind"      # rootfs | bind | volume | tmpfs | proc | sys | dev | device

    @property
    def components(self) -> tuple[bytes, ...]:
        return split(self.guest)


def split(path: bytes) -> tuple[bytes, ...]:
    return tuple(c for c in path.split(b"/") if c)


def join(components: tuple[bytes, ...] | list[bytes]) -> bytes:
    return b"/" + b"/".join(components)


@dataclass
class MountTable:
    mounts: list[Mount] = field(default_factory=list)
    # host directories standing in for a guest directory (synthesized /proc
    # listings): only consulted when mapping host paths back
    aliases: dict[bytes, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sort()

    def _sort(self) -> None:
        # Deepest guest mount point first so lookups find the innermost mount.
        self.mounts.sort(key=lambda m: len(m.components), reverse=True)
        self._by_guest = {m.components: m for m in self.mounts}
        # Reverse lookup prefers the longest host prefix (the most specific mount).
        self._by_host = sorted(self.mounts, key=lambda m: len(m.host), reverse=True)

    def add(self, mount: Mount) -> None:
        self.mounts = [m for m in self.mounts if m.guest != mount.guest] + [mount]
        self._sort()

    @property
    def root(self) -> Mount:
        return self._by_guest[()]

    def lookup(self, components: tuple[bytes, ...] | list[bytes]) -> tuple[Mount, int]:
        """The mount holding a canonical guest path and how many leading
        components its mount point consumes."""
        comps = tuple(components)
        for depth in range(len(comps), -1, -1):
            mount = self._by_guest.get(comps[:depth])
            if mount is not None:
                return mount, depth
        raise LookupError("mount table has no root mount")

    def to_host(self, components: tuple[bytes, ...] | list[bytes]) -> tuple[bytes, Mount]:
        mount, depth = self.lookup(components)
        rest = components[depth:]
        if not rest:
            return mount.host, mount
        host = mount.host.rstrip(b"/") + b"/" + b"/".join(rest)
        return host, mount

    def to_guest(self, host: bytes) -> bytes | None:
        """Map a host path (from /proc/PID/cwd, /proc/PID/fd/N, a socket
        name...) back to the guest path that names it; None when no mount
        covers it."""
        for alias, guest in self.aliases.items():
            if host == alias or host.startswith(alias + b"/"):
                return guest + host[len(alias):]
        for mount in self._by_host:
            base = mount.host.rstrip(b"/")
            if host == base or host == mount.host:
                return mount.guest
            if host.startswith(base + b"/"):
                rest = host[len(base) + 1:]
                return join(split(mount.guest) + split(rest))
        return None

    def mountpoints_to_create(self) -> list[Mount]:
        """Bind mounts whose guest mount point must exist in the rootfs so
        directory listings show them, as Docker creates them."""
        return [m for m in self.mounts if m.guest != b"/"]


def host_is_dir(path: bytes) -> bool:
    try:
        return os.path.isdir(path)
    except OSError:
        return False
