"""A container's syscall statistics and ledger as the API shows them
(docker inspect's `Brandpy` key, GET /brandpy/containers/{id}/syscalls):
live from the shim while the container runs, else the final snapshot the
shim saved when its latest run ended (so a restarted daemon shows it too)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from brandpy.images.fsutil import atomic_write_json
from brandpy.runtime.stats import Ledger, Stats, as_dict

from .errors import EngineError, InvalidParameter
from .research import SYSCALLS_FILE, ResearchSpec, from_labels
from .runtimes import RUNTIMES

if TYPE_CHECKING:     # records imports the shim, which imports this module
    from .records import Record


def save(cdir: Path, data: dict) -> None:
    atomic_write_json(cdir / SYSCALLS_FILE, data)


def load(cdir: Path) -> dict | None:
    try:
        return json.loads((cdir / SYSCALLS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def spec_of(rec: Record) -> ResearchSpec:
    """The labels' research settings, with the engine of the container's
    runtime (containers made before runtimes have none: their label's
    engine stands)."""
    try:
        spec = from_labels(rec.config.get("Labels") or {})[0]
    except InvalidParameter:     # labels brandpy did not check when it was created
        spec = ResearchSpec()
    runtime = rec.host_config.get("Runtime")
    return replace(spec, engine=RUNTIMES[runtime]) if runtime in RUNTIMES else spec


async def view(rec: Record) -> dict:
    """{"Engine", "Research", "Snapshot": live|final|none, and the
    statistics of brandpy.runtime.stats.as_dict}."""
    data, snapshot = None, "none"
    if rec.running and rec.shim is not None:
        try:
            data = (await rec.shim.request("syscalls")).get("syscalls")
            snapshot = "live"
        except EngineError:
            data = None     # the run ended meanwhile, or the shim went away
    if data is None:
        data = load(rec.dir)
        snapshot = "final" if data is not None else "none"
    if data is None:
        data = as_dict(Stats(), Ledger(), {})
    spec = spec_of(rec)
    return {"Engine": spec.engine, "Research": spec.inspect(), "Snapshot": snapshot, **data}
