"""brandpy's ledger (`brandpy run --report`, printed to stderr at exit),
parsed: which syscalls the container made that were unsupported or denied,
how often, with which errno and why.

The report is the last thing brandpy prints: a header "syscall calls error
reason" and one row per (syscall, errno, reason), or the line "no
unsupported or denied syscalls"."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^syscall\s+calls\s+error\s+reason\s*$")
_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S+)\s+(.*)$")
_EMPTY = "no unsupported or denied syscalls"


@dataclass(frozen=True)
class LedgerRow:
    syscall: str
    calls: int
    error: str          # errno name (EPERM), or its number when brandpy knows no name
    reason: str


def parse_ledger(stderr: str) -> list[LedgerRow] | None:
    """The ledger's rows ([] when brandpy said there were none), or None
    when stderr holds no ledger: the supervisor died or was killed first."""
    lines = stderr.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == _EMPTY:
            return []
        if _HEADER.match(lines[i]):
            rows = []
            for line in lines[i + 1:]:
                if not (m := _ROW.match(line)):
                    break
                rows.append(LedgerRow(m.group(1), int(m.group(2)), m.group(3),
                                      m.group(4).strip()))
            return rows
    return None
