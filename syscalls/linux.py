"""Facts about Linux's own x86_64 syscalls (numbers, names, argument kinds,
the release that introduced each), read from linux_x86_64.tsv. brandpy's
decisions about them live in table.py."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TSV = Path(__file__).with_name("linux_x86_64.tsv")


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str


@dataclass(frozen=True)
class Facts:
    nr: int
    name: str
    since: tuple[int, ...]
    removed: str            # "" (present), "never", or a release
    args: tuple[Arg, ...]



def parse_release(text: str) -> tuple[int, ...]:
    """'4.19.0-21-amd64' -> (4, 19, 0); comparisons pad with zeros."""
    parts: list[int] = []
    for piece in text.split("-")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts[:3])


@lru_cache(maxsize=1)
def load() -> dict[int, Facts]:
    facts: dict[int, Facts] = {}
    with TSV.open(encoding="utf-8") as f:
        header_seen = False
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                continue
            nr, name, since, removed, args = (line.split("\t") + [""] * 5)[:5]
            facts[int(nr)] = Facts(
                nr=int(nr), name=name, since=parse_release(since), removed=removed,
                args=tuple(Arg(*a.split(":", 1)) for a in args.split()))
    return facts
