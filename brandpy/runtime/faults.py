"""Test-only faults that stand for a bug in the translation layer, so the
tests of the kernel's walls (tests/security/test_walls.py) can show what
those walls hold when translation fails.

BRANDPY_TEST_BROKEN_HANDLER=NAME[,NAME...] (syscall names): those calls'
handlers do nothing and the calls run with the container's raw arguments
(a guest path handed to the kernel untranslated, a container PID taken
as a host PID), and the native engine answers none of them by
notification. Read once, when the supervisor starts a container.

BRANDPY_TEST_BROKEN_PERFORM=NAME[,NAME...]: those calls (performed ones
with a path: see syscalls/effective.py RAW_PATHS) are made by the
supervisor itself with the container's raw path, as if it named a host
file: a performed call that went wrong in the supervisor's own hands.
"""

from __future__ import annotations

import os

BROKEN_HANDLER = "BRANDPY_TEST_BROKEN_HANDLER"
BROKEN_PERFORM = "BRANDPY_TEST_BROKEN_PERFORM"


def broken(names: dict[str, int], switch: str = BROKEN_HANDLER) -> frozenset[int]:
    """The syscall numbers the switch names (names: name -> number); an
    unknown name is an error, not a test that silently breaks nothing."""
    wanted = [n for n in os.environ.get(switch, "").split(",") if n]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ValueError(f"{switch}: unknown syscall {', '.join(unknown)}")
    return frozenset(names[n] for n in wanted)
