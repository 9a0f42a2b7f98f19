"""The build context: the tar the client sends, unpacked into a private
directory, with .dockerignore applied (Docker's pattern rules: Go's
filepath.Match plus `**`, later patterns win, `!` re-includes)."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tarfile
from pathlib import Path
from typing import BinaryIO

from brandpy.images.compression import decompressed
from brandpy.images.fsutil import remove_any

from .dockerfile import DockerfileError


class Ignore:
    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/")
            if pattern in (".", ""):
                continue
            self.rules.append((negate, re.compile(_regex(pattern))))

    @property
    def has_exceptions(self) -> bool:
        return any(negate for negate, _ in self.rules)

    def ignored(self, path: str) -> bool:
        """path: relative, '/'-separated. A match of a parent counts too."""
        parts = path.split("/")
        result = False
        for negate, rx in self.rules:
            for i in range(len(parts), 0, -1):
                if rx.fullmatch("/".join(parts[:i])):
                    result = not negate
                    break
        return result


def _regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise DockerfileError(f".dockerignore: bad pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def unpack(src: BinaryIO, dest: Path) -> None:
    """Unpack the context tar into dest: no entry may leave it, links stay
    links, and devices are skipped. An entry replaces what an earlier one
    left at its name (a directory stays for a directory), as Docker's
    unpacker does: writing through it would follow a symlink out."""
    stream, _ = decompressed(src)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                name = posixpath.normpath(m.name).lstrip("/")
                if name in (".", "") or name.startswith("../") or name == "..":
                    continue
                if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
                    continue
                m.name = name
                if m.islnk():
                    m.linkname = posixpath.normpath(m.linkname).lstrip("/")
                    if m.linkname.startswith("..") or _through_symlink(dest, m.linkname):
                        continue
                if _through_symlink(dest, name):
                    raise DockerfileError(f"the build context has {m.name!r} below a symlink")
                target = dest / name
                if not (m.isdir() and target.is_dir() and not target.is_symlink()):
                    remove_any(target)
                tar.extract(m, dest, set_attrs=os.geteuid() == 0)
    except tarfile.TarError as exc:
        raise DockerfileError(f"the build context is not a valid tar archive ({exc})") from None


def _through_symlink(root: Path, rel: str) -> bool:
    """Whether a parent of rel inside root is a symlink (extracting through
    it could write outside the context)."""
    path = root
    for part in rel.split("/")[:-1]:
        path = path / part
        if path.is_symlink():
            return True
    return False


def apply_ignore(root: Path, ignore: Ignore) -> None:
    """Remove what .dockerignore excludes, the Dockerfile and .dockerignore
    too when it names them (read by then), as dockerd does."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        rel_dir = os.path.relpath(dirpath, root)
        for name in list(dirnames) + filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not ignore.ignored(rel):
                continue
            full = os.path.join(dirpath, name)
            if name in dirnames and not os.path.islink(full):
                # With `!` exceptions something below may be re-included:
                # walk into the directory instead of dropping it whole.
                if ignore.has_exceptions:
                    continue
                shutil.rmtree(full)
                dirnames.remove(name)
            else:
                os.unlink(full)
