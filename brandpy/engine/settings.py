"""The daemon's settings that reach the engine (daemon.json's and the
flags' registry mirrors, insecure registries, default runtime and default
log driver; the API layer reads and checks them at start)."""

from __future__ import annotations

from dataclasses import dataclass, field

from brandpy.images.endpoints import Registries

from .logdrivers import DEFAULT_DRIVER
from .runtimes import DEFAULT_RUNTIME


@dataclass(frozen=True)
class Settings:
    registries: Registries = field(default_factory=Registries)
    default_runtime: str = DEFAULT_RUNTIME
    log_driver: str = DEFAULT_DRIVER
    log_opts: dict[str, str] = field(default_factory=dict)
