"""Docker image references: parsing and normalisation.

`busybox` → docker.io/library/busybox:latest; `localhost:5000/x`,
`127.0.0.1:5000/x:tag`, `name@sha256:…`. The grammar is distribution's
reference package, reduced to what a client needs, with its messages
(what dockerd answers for a malformed reference).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from brandpy.pathnames import InvalidName

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_RE = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
                        r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                        r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)     # Go's \w is ASCII
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_INVALID = "invalid reference format"


class InvalidReference(InvalidName):
    pass


def check_tag(tag: str) -> str:
    if not _TAG_RE.fullmatch(tag):
        raise InvalidReference("invalid tag format")
    return tag


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully qualified repository: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Short repository as docker prints it: busybox, user/app, localhost:5000/x."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return self.name

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> str:
        return self.familiar_name + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    @property
    def registry_host(self) -> str:
        """Where the registry API lives (Docker Hub's API host differs from its name)."""
        return "registry-1.docker.io" if self.domain == DEFAULT_DOMAIN else self.domain


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference; adds :latest when it has neither tag nor
    digest (unless default_tag is False)."""
    name, _, digest = text.partition("@")
    if not name or digest and not DIGEST_RE.fullmatch(digest):
        raise InvalidReference(_INVALID)
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(_INVALID)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, rest
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidReference(_INVALID)
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if not _PATH_RE.fullmatch(path):
        if _PATH_RE.fullmatch(path.lower()):
            raise InvalidReference(f"{_INVALID}: repository name must be lowercase")
        raise InvalidReference(_INVALID)
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference("repository name must not be more than 255 characters")
    if default_tag and tag is None and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def is_name_only(text: str) -> bool:
    """True for `busybox` (no tag, no digest): docker save then takes every tag."""
    ref = parse(text, default_tag=False)
    return ref.tag is None and ref.digest is None
