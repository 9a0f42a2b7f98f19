"""The runtimes brandpyd knows (`docker run --runtime NAME`, daemon.json's
default-runtime): brandpy's two supervisor engines. Other OCI runtimes
(runc, runsc...) are not run by brandpyd; brandpy-runc is the other way
round, brandpy under dockerd."""

from __future__ import annotations

import sys

from .errors import InvalidParameter

DEFAULT_RUNTIME = "brandpy"
# name -> the supervisor engine (the brandpy.engine label's values)
RUNTIMES = {"brandpy": "native", "brandpy-python": "python"}


def check(name: str) -> str:
    """name, or dockerd's 400 for a runtime it does not know."""
    if name not in RUNTIMES:
        raise InvalidParameter(f"unknown or invalid runtime name: {name}")
    return name


def info() -> dict[str, dict[str, object]]:
    """GET /info's Runtimes."""
    return {name: {"path": sys.executable, "runtimeArgs": [f"--engine={engine}"]}
            for name, engine in RUNTIMES.items()}
