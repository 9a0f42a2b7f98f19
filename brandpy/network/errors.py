"""The one error networking raises: a message that says what to do, and
the HTTP status dockerd answers with for it."""

from __future__ import annotations


class NetworkError(Exception):
    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status
