"""Exceptions handlers and the supervisor raise."""

from __future__ import annotations


class Errno(Exception):
    """Raised by handlers and the resolver: the syscall fails with -errno."""

    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(errno, why)
        self.errno = errno
        self.why = why


class StrictViolation(Exception):
    """Strict mode: the container made a call brandpy does not support."""
