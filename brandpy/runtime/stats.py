"""Per-container syscall statistics: what was trapped, how it was handled
and how many ptrace stops it cost (the number that dominates speed)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    calls: Counter[int] = field(default_factory=Counter)       # trapped calls (one stop each)
    exit_stops: Counter[int] = field(default_factory=Counter)  # extra stops for the result
    emulated: Counter[int] = field(default_factory=Counter)    # answered without running
    errors: Counter[int] = field(default_factory=Counter)      # returned -errno
    injected: Counter[int] = field(default_factory=Counter)    # faults injected
    seconds: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))  # time per nr
    handled: Counter[str] = field(default_factory=Counter)     # trapped calls per handling
    notified: Counter[int] = field(default_factory=Counter)    # user notifications, no stop
    notified_python: Counter[int] = field(default_factory=Counter)  # of which answered in Python
    event_stops: int = 0      # fork/exec/signal/group stops (not syscalls)

    def trapped(self, nr: int) -> None:
        self.calls[nr] += 1

    def exit_stop(self, nr: int) -> None:
        self.exit_stops[nr] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_stops(self) -> int:
        return self.total_calls + sum(self.exit_stops.values())

    def report(self, names: dict[int, str]) -> str:
        lines = [f"{'syscall':<20}{'calls':>9}{'exit stops':>12}{'emulated':>10}{'errors':>8}"
                 f"{'µs/call':>9}"]
        for nr, n in self.calls.most_common():
            lines.append(f"{names.get(nr, str(nr)):<20}{n:>9}{self.exit_stops[nr]:>12}"
                         f"{self.emulated[nr]:>10}{self.errors[nr]:>8}"
                         f"{self.seconds[nr] / n * 1e6:>9.1f}")
        calls = self.total_calls
        per = self.total_stops / calls if calls else 0.0
        lines.append(f"{'total':<20}{calls:>9}{sum(self.exit_stops.values()):>12}"
                     f"{sum(self.emulated.values()):>10}{sum(self.errors.values()):>8}")
        lines.append(f"ptrace stops per trapped syscall: {per:.3f}; "
                     f"other stops (fork/exec/signals): {self.event_stops}")
        if self.handled:
            lines.append("handled: " + ", ".join(f"{n} {how}" for how, n in
                                                 self.handled.most_common()))
        if self.notified:
            lines.append(f"{'notified (no stop)':<20}{'calls':>9}{'in Python':>12}")
            for nr, n in self.notified.most_common():
                lines.append(f"{names.get(nr, str(nr)):<20}{n:>9}{self.notified_python[nr]:>12}")
            lines.append(f"notified calls: {sum(self.notified.values())}, answered in C: "
                         f"{sum(self.notified.values()) - sum(self.notified_python.values())}")
        return "\n".join(lines)


@dataclass(frozen=True)
class LedgerEntry:
    nr: int
    name: str
    errno: int
    reason: str


@dataclass
class Ledger:
    """Unsupported and denied calls, never silent: what failed, how often,
    and why (the syscall table's note, the seccomp profile, the kernel
    personality or a handler's explanation)."""
    counts: Counter[LedgerEntry] = field(default_factory=Counter)
    on_new: Callable[[LedgerEntry], None] | None = None   # e.g. docker events

    def record(self, entry: LedgerEntry) -> bool:
        """Count one call; True the first time this entry is seen."""
        self.counts[entry] += 1
        new = self.counts[entry] == 1
        if new and self.on_new is not None:
            self.on_new(entry)
        return new

    def report(self) -> str:
        import errno as errnos

        if not self.counts:
            return "no unsupported or denied syscalls"
        lines = [f"{'syscall':<20}{'calls':>7}  {'error':<8}reason"]
        for e, n in self.counts.most_common():
            lines.append(f"{e.name:<20}{n:>7}  {errnos.errorcode.get(e.errno, e.errno):<8}"
                         f"{e.reason}")
        return "\n".join(lines)


def as_dict(stats: Stats, ledger: Ledger, names: dict[int, str]) -> dict[str, Any]:
    """Statistics and the ledger as JSON (docker inspect's Brandpy key, the
    API's /brandpy/containers/{id}/syscalls, brandpy run --stats-json)."""
    def name(nr: int) -> str:
        return names.get(nr, str(nr))

    return {
        "Syscalls": {name(nr): {"Calls": n, "ExitStops": stats.exit_stops[nr],
                                "Emulated": stats.emulated[nr], "Errors": stats.errors[nr],
                                "Injected": stats.injected[nr],
                                "Seconds": round(stats.seconds[nr], 6)}
                     # faults injected into notified calls show here too (0 stops)
                     for nr, n in {**dict.fromkeys(stats.injected, 0), **stats.calls}.items()},
        "Notified": {name(nr): {"Calls": n, "InPython": stats.notified_python[nr]}
                     for nr, n in stats.notified.items()},
        "Handled": dict(stats.handled),
        "PtraceStops": stats.total_stops, "OtherStops": stats.event_stops,
        "Ledger": [{"Syscall": e.name, "Nr": e.nr, "Errno": e.errno, "Reason": e.reason,
                    "Calls": n} for e, n in ledger.counts.most_common()],
    }
