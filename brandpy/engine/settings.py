"""The daemon's settings that reach the engine (daemon.json's and the
flags' registry mirrors, insecure registries, default runtime, default
log driver and labels; the API layer reads and checks them at start and
on SIGHUP)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from brandpy.images.endpoints import Registries

from . import runtimes
from .logdrivers import DEFAULT_DRIVER


@dataclass(frozen=True)
class Settings:
    registries: Registries = field(default_factory=Registries)
    default_runtime: str = runtimes.DEFAULT_RUNTIME
    log_driver: str = DEFAULT_DRIVER
    log_opts: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()      # KEY=VALUE, as /info's Labels

    def reload_attributes(self) -> dict[str, str]:
        """The daemon `reload` event's attributes, as dockerd formats the
        reloadable settings it has (JSON lists, `name:path` runtimes)."""
        def go_json(values: tuple[str, ...]) -> str:
            return json.dumps(list(values), separators=(",", ":"))
        paths = {name: rt["path"] for name, rt in runtimes.info().items()}
        return {"default-runtime": self.default_runtime,
                "runtimes": " ".join(f"{name}:{path}" for name, path in paths.items()),
                "registry-mirrors": go_json(self.registries.mirrors),
                "insecure-registries": go_json(self.registries.insecure),
                "labels": go_json(self.labels)}
