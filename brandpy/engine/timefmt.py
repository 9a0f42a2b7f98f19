"""Docker's time formats: RFC 3339 with nanoseconds in UTC for records and
logs, "0001-01-01T00:00:00Z" for never, unix seconds in query strings."""

from __future__ import annotations

import calendar
import re
import time

ZERO = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def iso(ns: int | None = None) -> str:
    """RFC 3339 with 9 fractional digits, UTC (Docker's RFC3339NanoFixed)."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def to_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time; 0 for ZERO or junk."""
    m = _RFC3339.match(text or "")
    if not m or text == ZERO:
        return 0
    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = int((m.group(2) or "0").ljust(9, "0"))
    zone = m.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return secs * 1_000_000_000 + frac


def parse_since(value: str | None) -> int | None:
    """A `since`/`until` query value (unix seconds with an optional
    fraction, or RFC 3339) as nanoseconds; None when absent."""
    if value is None or value == "" or value == "0":
        return None
    if _RFC3339.match(value):
        return to_ns(value)
    secs, _, frac = value.partition(".")
    if not secs.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"invalid time value {value!r}: use unix seconds (1700000000.5) "
                         "or RFC 3339")
    return int(secs) * 1_000_000_000 + int(frac[:9].ljust(9, "0") if frac else 0)
