"""Exceptions handlers and the supervisor raise."""

from __future__ import annotations

import sys


class Errno(Exception):
    """Raised by handlers and the resolver: the syscall fails with -errno."""

    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(errno, why)
        self.errno = errno
        self.why = why


class Unborn(Exception):
    """Raised by a handler for a call naming a task brandpy has not
    registered. If its creator's fork or clone made it (its first stop is
    still to come: a tracer's PTRACE_SEIZE right after fork), the
    supervisor holds the call until that stop and makes it again; else the
    call fails with ESRCH."""

    def __init__(self, tid: int) -> None:
        super().__init__(tid)
        self.tid = tid


class StrictViolation(Exception):
    """Strict mode: the container made a call brandpy does not support."""


def warn(message: str) -> None:
    """A message for the user on stderr. The supervisor carries on whatever
    happens to stderr (closed by `| head`, a full disk): its tracees are
    stopped until it resumes them."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
