"""Signal names as runc's kill takes them: KILL, SIGKILL, 9, RTMIN+3."""

from __future__ import annotations

import signal

from .errors import OciError


def parse_signal(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if 0 < number <= signal.SIGRTMAX:
            return number
        raise OciError(f"invalid signal number {number}: use 1-{int(signal.SIGRTMAX)}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base in ("SIGRTMIN+", "SIGRTMAX-"):
        if name.startswith(base) and name[len(base):].isdigit():
            offset = int(name[len(base):])
            number = signal.SIGRTMIN + offset if base[-1] == "+" else signal.SIGRTMAX - offset
            if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
                return number
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise OciError(f"unknown signal {text!r}: use a name (TERM, SIGKILL...) or a "
                       "number") from None
