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


def choose(requested: str, label_engine: str, default: str) -> str:
    """A new container's runtime: --runtime, else the brandpy.engine
    label's engine (the older way to choose it), else the daemon's
    default; a label that contradicts --runtime is a 400."""
    if requested:
        check(requested)
        if label_engine and RUNTIMES[requested] != label_engine:
            raise InvalidParameter(f"label brandpy.engine={label_engine} contradicts --runtime "
                                   f"{requested} (the {RUNTIMES[requested]} engine): give one "
                                   "of them")
        return requested
    if label_engine:
        return next(name for name, engine in RUNTIMES.items() if engine == label_engine)
    return default


def info() -> dict[str, dict[str, object]]:
    """GET /info's Runtimes."""
    return {name: {"path": sys.executable, "runtimeArgs": [f"--engine={engine}"]}
            for name, engine in RUNTIMES.items()}
