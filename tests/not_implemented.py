"""The README's list of the endpoints that answer 501 ("Returns 501 with a
message"), read from the README itself so that the tests holding the
daemon to it (tests/api/test_not_implemented.py, the fuzz run) cannot
drift from what users read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tests.conftest import REPO

HEADING = "- **Returns 501 with a message**"
_ENDPOINT = re.compile(r"`(GET|HEAD|POST|PUT|DELETE) (/[^`?\s]*)(?:\?([a-z]+)=([^`]+))?`")
_PLACEHOLDER = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str            # a template: /containers/{id}/attach/ws
    query: str = ""      # the parameter that makes it a 501 (POST /build?remote=URL)
    value: str = ""      # in capitals: any value

    def __str__(self) -> str:
        return f"{self.method} {self.path}" + (f"?{self.query}={self.value}" if self.query else "")

    def matches(self, method: str, path: str, query: Mapping[str, str]) -> bool:
        """path: a concrete path or a template ({id} matches any name)."""
        if method != self.method or not re.fullmatch(_template_regex(self.path), path):
            return False
        if not self.query:
            return True
        given = query.get(self.query, "")
        return bool(given) if self.value.isupper() else given == self.value

    def example(self) -> tuple[str, str]:
        """(method, path with a query) to request it by."""
        path = _PLACEHOLDER.sub("x", self.path)
        if self.query:
            value = "https://example.invalid/context.git" if self.value.isupper() else self.value
            path += f"?{self.query}={value}"
        return self.method, path


def _template_regex(template: str) -> str:
    """A placeholder matches any text (image names have slashes)."""
    return ".+".join(re.escape(part) for part in _PLACEHOLDER.split(template))


def documented() -> list[Endpoint]:
    text = (REPO / "README.md").read_text()
    start = text.index(HEADING)
    end = text.index("\n- **", start + 1)
    found = [Endpoint(*(g or "" for g in m.groups())) for m in _ENDPOINT.finditer(text[start:end])]
    assert found, f"README.md: no endpoints under {HEADING!r}"
    return found


def is_documented(method: str, path: str, query: Mapping[str, str]) -> bool:
    return any(e.matches(method, path, query) for e in documented())
