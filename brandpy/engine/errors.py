"""Engine errors carry the HTTP status Docker uses for them; the API layer
turns them into `{"message": ...}` replies."""

from __future__ import annotations


class EngineError(Exception):
    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    """Docker answers 304 with no body (start of a running container...)."""
    status = 304


class Unavailable(EngineError):
    """A feature that is off (swarm mode), as dockerd answers it."""
    status = 503


class NotImplementedHere(EngineError):
    status = 501
