"""brandpy's `--stats` report (printed to stderr at exit), parsed: how many
syscalls were trapped and how many ptrace stops they cost.

The report is a table with a header row ("syscall calls exit stops ...",
columns separated by two or more spaces), one row per syscall, a "total"
row and a summary line "ptrace stops per trapped syscall: X; other stops
(fork/exec/signals): N". The summary line is the runtime's own figure and
is taken as it is; columns are read by header name, so a column the
engines add later lands in `totals` without a change here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SUMMARY = re.compile(r"ptrace stops per trapped syscall: ([\d.]+)")
_EVENT_STOPS = re.compile(r"other stops \(fork/exec/signals\): (\d+)")
_COLUMN_GAP = re.compile(r"\s{2,}")


@dataclass
class StopStats:
    calls: int                                   # syscalls trapped by the filter
    stops_per_call: float | None = None          # ptrace stops per trapped syscall
    event_stops: int | None = None               # fork/exec/signal stops, not syscalls
    totals: dict[str, int] = field(default_factory=dict)     # the total row, by column
    per_syscall: dict[str, dict[str, int]] = field(default_factory=dict)


def split_stats(stderr: str) -> tuple[str, StopStats | None]:
    """The program's own stderr, and the stats report that follows it (None
    when there is none, e.g. a runner other than brandpy)."""
    lines = stderr.splitlines()
    start = next((i for i in range(len(lines) - 1, -1, -1) if _is_header(lines[i])), None)
    if start is None:
        return stderr, None
    columns = _COLUMN_GAP.split(lines[start].strip())[1:]
    stats = StopStats(calls=0)
    for line in lines[start + 1:]:
        if m := _SUMMARY.search(line):
            stats.stops_per_call = float(m.group(1))
        if m := _EVENT_STOPS.search(line):
            stats.event_stops = int(m.group(1))
        cells = line.split()
        if len(cells) < 2 or not all(c.isdigit() for c in cells[1:]):
            continue
        numbers = [int(c) for c in cells[1:]]
        # Named columns when the header lines up with the row; "calls" comes first anyway.
        row = dict(zip(columns, numbers, strict=True)) if len(columns) == len(numbers) else {}
        row.setdefault("calls", numbers[0])
        if cells[0] == "total":
            stats.totals = row
            stats.calls = row["calls"]
        else:
            stats.per_syscall[cells[0]] = row
    own = "\n".join(lines[:start])
    return (own + "\n" if own else ""), stats


def _is_header(line: str) -> bool:
    cells = line.split()
    return len(cells) >= 3 and cells[0] == "syscall" and cells[1] == "calls" and "stops" in cells
