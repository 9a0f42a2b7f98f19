"""Exceptions to Docker's answers, in one place: every handler's exception
reaches the `docker_errors` middleware, which answers with the status
Docker uses for it, or, once a streamed reply has started, in the stream.

What the client, an image or a registry got wrong is a 4xx saying so; a
500 means a bug in brandpy (or the host failing it, as a full disk) and
is logged with its traceback."""

from __future__ import annotations

import json
import sys
import traceback

from aiohttp import web

from brandpy.engine.errors import EngineError
from brandpy.images.changes import ChangeError
from brandpy.images.layers import LayerError
from brandpy.images.registry import RegistryError
from brandpy.images.store import Conflict as StoreConflict
from brandpy.images.store import ImageNotFound, StoreError
from brandpy.pathnames import InvalidName

from .http import JSON_LIMIT, STARTED, error

# Checked in order: subclasses before their bases. InvalidName covers bad
# image references (InvalidReference); everything else the store refuses
# (a bad archive, a digest mismatch, an ambiguous ID prefix, a tag with a
# digest) is a request it cannot do, whose message says what to do.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidName, 400), (ChangeError, 400), (LayerError, 400),
    (ImageNotFound, 404), (StoreConflict, 409), (StoreError, 400),
)


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) as Docker answers it; None for a bug."""
    if isinstance(exc, EngineError):
        return exc.status, exc.message
    if isinstance(exc, RegistryError):
        return exc.http_status, str(exc)
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status, str(exc)
    if isinstance(exc, ConnectionError):
        # The client went away mid-request (an upload cut off): not the
        # daemon's error, and nobody to read the answer.
        return 400, "the client closed the connection before the request was complete"
    if isinstance(exc, web.HTTPException):
        # Docker answers unknown paths and wrong methods alike with 404.
        message = {404: "page not found", 405: "page not found",
                   413: f"request body too large: JSON bodies are limited to "
                        f"{JSON_LIMIT >> 20} MiB"}.get(exc.status, exc.reason)
        return (404 if exc.status == 405 else exc.status), message
    return None


def status_and_message(exc: BaseException) -> tuple[int, str]:
    """classify(), with a bug logged and answered 500."""
    known = classify(exc)
    if known is not None:
        return known
    traceback.print_exception(exc, file=sys.stderr)
    return 500, f"internal error in brandpy: {exc.__class__.__name__}: {exc}"


async def answer(request: web.Request, exc: BaseException) -> web.StreamResponse:
    """The reply to a request whose handler raised exc."""
    status, message = status_and_message(exc)
    started: web.StreamResponse | None = request.get(STARTED)
    if started is None:
        return web.Response(status=304) if status == 304 else error(status, message)
    # The status line is on its way: a JSON stream ends with Docker's
    # in-stream error (its code is a failed RUN's exit status, which `docker
    # build` exits with); any other stream (a tar, a log, a hijacked
    # connection) has no place for one and is cut, so the client sees it
    # incomplete.
    if started.content_type == "application/json":
        detail: dict[str, object] = {"message": message}
        code = getattr(exc, "code", None)
        if isinstance(code, int):
            detail["code"] = code
        try:
            await started.write(json.dumps({"errorDetail": detail, "error": message}).encode()
                                + b"\r\n")
            await started.write_eof()
            return started
        except ConnectionError:
            pass
    request.protocol.force_close()
    if request.transport is not None:
        request.transport.close()
    return started
