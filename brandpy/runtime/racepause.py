"""Test-only: a pause between resolving a guest path and acting on it.

BRANDPY_TEST_RACE_PAUSE_US=N makes the supervisor sleep N microseconds
right after each path resolution (here for the Python resolver, and in
native/racepause.c for the C one), so that the containment tests
(tests/security/) win check-then-use races reliably even on 2 busy cores.
Never set it outside tests: it only slows the supervisor down. Read once,
when the supervisor starts (this module is imported)."""

from __future__ import annotations

import os
import time

_VAR = "BRANDPY_TEST_RACE_PAUSE_US"


def _read() -> float:
    value = os.environ.get(_VAR, "").strip()
    if not value:
        return 0.0
    if not value.isdigit():
        raise SystemExit(f"{_VAR}={value!r}: give a whole number of microseconds, or unset it")
    return int(value) / 1e6


_PAUSE_S = _read()


def race_pause() -> None:
    if _PAUSE_S:
        time.sleep(_PAUSE_S)
