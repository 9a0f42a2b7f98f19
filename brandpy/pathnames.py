"""Names that become paths: Docker's grammars for volume and container
names (and libnetwork's for network names, which name no file), and the two joins that keep a path made from a client's
name under its root whatever the name's bytes.

Every name a client sends that could end up in a path goes through here
(a volume's directory, a Dockerfile in a build context, a file of an OCI
layout), and a grammar is checked before anything is made, so a bad name
is refused with Docker's message and nothing is left behind. Image
references and tags are distribution's grammar, in brandpy.images.reference
(its InvalidReference is an InvalidName); they name no file: digests name
the image store's files (brandpy.images.store checks those: 64 hex)."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Docker's daemon/names.RestrictedNameChars; Go's `$` is the end of the
# text, hence fullmatch (Python's `$` would let a trailing newline in).
RESTRICTED_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_RESTRICTED = re.compile(RESTRICTED_CHARS + "+", re.ASCII)
_CONTAINER = re.compile("/?" + RESTRICTED_CHARS + "+", re.ASCII)


class InvalidName(ValueError):
    """A name outside its grammar, or a path that would leave its root;
    the message is the one Docker gives (the API answers 400)."""


def is_volume_name(name: str) -> bool:
    return _RESTRICTED.fullmatch(name) is not None


def is_network_name(name: str) -> bool:
    """libnetwork's rule (a network name names no file): not blank. Control
    characters are refused too, so a name prints on one line."""
    return bool(name.strip()) and not any(ord(c) < 32 or ord(c) == 127 for c in name)


def volume_name(name: str) -> str:
    if not is_volume_name(name):
        raise InvalidName(f"create {name}: \"{name}\" includes invalid characters for a local "
                          f"volume name, only \"{RESTRICTED_CHARS}\" are allowed. If you "
                          "intended to pass a host directory, use absolute path")
    return name


def container_name(name: str) -> str:
    """The name without Docker's optional leading slash."""
    if _CONTAINER.fullmatch(name) is None:
        raise InvalidName(f"Invalid container name ({name}), only {RESTRICTED_CHARS} are "
                          "allowed")
    return name.removeprefix("/")


def network_name(name: str) -> str:
    if not is_network_name(name):
        raise InvalidName(f"invalid network name {name!r}: give a name that is not blank, "
                          "without control characters")
    return name


def child(root: Path, name: str) -> Path:
    """root/name for a name that is exactly one path component: never root
    itself, its parent, a path through a slash, or an absolute path."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise InvalidName(f"{name!r} is not a single file name")
    return root / name


def inside(root: Path, rel: str) -> Path:
    """root/rel with every symlink resolved, refused unless it is still
    under root: for trees the daemon owns (a build context), where nothing
    else changes the links between this check and the use."""
    if "\0" in rel:
        raise InvalidName(f"{rel!r} contains a NUL byte")
    real_root = Path(os.path.realpath(root))
    path = Path(os.path.realpath(real_root / rel.lstrip("/")))
    if path != real_root and not path.is_relative_to(real_root):
        raise InvalidName(f"{rel!r} leads outside {root}")
    return path
