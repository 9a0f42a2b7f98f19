"""Per-container syscall statistics: what was trapped, how it was handled
and how many ptrace stops it cost (the number that dominates speed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    calls: Counter[int] = field(default_factory=Counter)      # trapped calls per nr
    stops: Counter[int] = field(default_factory=Counter)      # ptrace stops per nr
    emulated: Counter[int] = field(default_factory=Counter)   # answered without running
    errors: Counter[int] = field(default_factory=Counter)     # returned -errno
    event_stops: int = 0      # fork/exec/signal/group stops (not syscalls)

    def trapped(self, nr: int) -> None:
        self.calls[nr] += 1
        self.stops[nr] += 1

    def exit_stop(self, nr: int) -> None:
        self.stops[nr] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_stops(self) -> int:
        return sum(self.stops.values())

    def report(self, names: dict[int, str]) -> str:
        lines = [f"{'syscall':<20}{'calls':>9}{'stops':>9}{'emulated':>10}{'errors':>8}"]
        for nr, n in self.calls.most_common():
            lines.append(f"{names.get(nr, str(nr)):<20}{n:>9}{self.stops[nr]:>9}"
                         f"{self.emulated[nr]:>10}{self.errors[nr]:>8}")
        calls = self.total_calls
        per = self.total_stops / calls if calls else 0.0
        lines.append(f"{'total':<20}{calls:>9}{self.total_stops:>9}"
                     f"{sum(self.emulated.values()):>10}{sum(self.errors.values()):>8}")
        lines.append(f"ptrace stops per trapped syscall: {per:.3f}; "
                     f"other stops (fork/exec/signals): {self.event_stops}")
        return "\n".join(lines)
