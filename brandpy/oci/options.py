"""The runtime's global options, as every command sees them."""

from __future__ import annotations

from dataclasses import dataclass

from .log import Log


@dataclass
class Options:
    root: str
    log: Log
    # runtime-wide defaults (dockerd's runtimeArgs can set them);
    # org.brandpy.* annotations override them per container
    engine: str = "native"
    kernel_release: str = ""
