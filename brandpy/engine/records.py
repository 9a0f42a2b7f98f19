"""Container records: what `docker inspect` shows, kept on disk under
<data root>/containers/<12-hex id>/ and in memory in the daemon.

    config.json   the record (Config, HostConfig, name, mounts...): daemon only
    state.json    State: written by the shim while one runs, else the daemon
    shim.json     what the shim needs to run it (written at each start)
    json.log      the json-file log (written by the shim)
    rootfs/       the container's filesystem; run/ the runtime's /dev

Every file is replaced atomically, and a container directory appears by
one rename once complete, so a crash never leaves half a container.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from brandpy.images.fsutil import atomic_write_json

from .errors import InvalidParameter, NotFound
from .shim import STATE, initial_state
from .shimclient import ShimClient

CONFIG = "config.json"


@dataclass(eq=False)
class Record:
    id: str
    name: str
    created: str
    image_id: str
    config: dict
    host_config: dict
    networks: dict           # network name -> EndpointSettings
    mounts: list[dict]       # MountPoint objects, as inspect shows them
    dir: Path
    state: dict = field(default_factory=initial_state)
    published: dict = field(default_factory=dict)   # host ports bound at the last start
    # in the daemon only
    shim: ShimClient | None = None
    watcher: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exit_waiters: list[asyncio.Future] = field(default_factory=list)
    removing: bool = False
    removed: asyncio.Event = field(default_factory=asyncio.Event)
    pending_attach: list[asyncio.Future] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.id[:12]

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def log_path(self) -> Path:
        return self.dir / "json.log"

    @property
    def running(self) -> bool:
        return bool(self.state.get("Running"))

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def argv(self) -> list[str]:
        return list(self.config.get("Entrypoint") or []) + list(self.config.get("Cmd") or [])

    @property
    def status(self) -> str:
        return str(self.state.get("Status") or "created")

    def save(self) -> None:
        atomic_write_json(self.dir / CONFIG, {
            "Id": self.id, "Name": self.name, "Created": self.created, "Image": self.image_id,
            "Config": self.config, "HostConfig": self.host_config, "Networks": self.networks,
            "Mounts": self.mounts, "PublishedPorts": self.published})

    def save_state(self) -> None:
        atomic_write_json(self.dir / STATE, self.state)

    @classmethod
    def load(cls, cdir: Path) -> Record:
        d = json.loads((cdir / CONFIG).read_text())
        rec = cls(d["Id"], d["Name"], d["Created"], d["Image"], d["Config"], d["HostConfig"],
                  d.get("Networks") or {}, d.get("Mounts") or [], cdir,
                  published=d.get("PublishedPorts") or {})
        rec.reload_state()
        return rec

    def reload_state(self) -> None:
        try:
            self.state = {**initial_state(), **json.loads((self.dir / STATE).read_text())}
        except FileNotFoundError:
            self.state = initial_state()


class Table:
    """The daemon's containers, found by full ID, name or unique ID prefix."""

    def __init__(self) -> None:
        self.by_id: dict[str, Record] = {}

    def add(self, rec: Record) -> None:
        self.by_id[rec.id] = rec

    def discard(self, rec: Record) -> None:
        self.by_id.pop(rec.id, None)

    def by_name(self, name: str) -> Record | None:
        name = name.lstrip("/")
        return next((r for r in self.by_id.values() if r.name == name), None)

    def get(self, ref: str) -> Record:
        if not ref:
            raise NotFound("No such container: (empty name)")
        rec = self.by_id.get(ref) or self.by_name(ref)
        if rec is not None:
            return rec
        matches = [r for r in self.by_id.values() if r.id.startswith(ref.lower())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def __iter__(self):   # noqa: ANN204 - iterator of records
        return iter(list(self.by_id.values()))

    def used_image(self, image_id: str) -> bool:
        return any(r.image_id == image_id for r in self.by_id.values())
