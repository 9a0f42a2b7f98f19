"""brandpy's syscall trace (`brandpy run --trace FILE --trace-json`: one
JSON object per trapped call, with its result and errno), reduced to what
the coverage benchmark asks of it: which trapped calls failed, with which
errno, how often, and one example of each."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

EXAMPLE_CHARS = 120


@dataclass(frozen=True)
class FailedCall:
    syscall: str
    errno: str
    calls: int
    disposition: str    # how brandpy handled the first of them (emulated, translated, ...)
    example: str        # the first of them, as the trace formats it


def failed_calls(path: Path) -> list[FailedCall]:
    """Failed calls per (syscall, errno), most frequent first; [] when the
    file is missing or empty (the run died before writing it)."""
    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], dict] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue        # a line cut short when the supervisor was killed
        if rec.get("errno"):
            key = (rec["syscall"], rec["errno"])
            counts[key] += 1
            first.setdefault(key, rec)
    return [FailedCall(s, e, n, first[s, e].get("disposition", "?"),
                       first[s, e].get("call", "")[:EXAMPLE_CHARS])
            for (s, e), n in counts.most_common()]
