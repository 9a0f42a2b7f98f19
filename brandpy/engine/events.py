"""The daemon's event stream (`docker events`): recent events are kept for
`since`, live subscribers get each event as it happens."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from .filters import Filters

KEEP = 1024
FILTERS = ("config", "container", "daemon", "event", "image", "label", "network", "node",
           "plugin", "scope", "secret", "service", "type", "volume")


class Events:
    def __init__(self) -> None:
        self.history: deque[dict] = deque(maxlen=KEEP)
        self.subscribers: set[asyncio.Queue] = set()

    def emit(self, kind: str, action: str, actor: str, attributes: dict[str, str] | None = None
             ) -> None:
        ns = time.time_ns()
        ev = {"Type": kind, "Action": action,
              "Actor": {"ID": actor, "Attributes": dict(attributes or {})},
              "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}
        if kind == "container":   # the fields of the pre-1.22 format, still sent by Docker
            ev.update(status=action, id=actor, **({"from": attributes["image"]}
                                                  if attributes and "image" in attributes else {}))
        self.history.append(ev)
        for q in list(self.subscribers):
            q.put_nowait(ev)

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)


def matches(ev: dict, f: Filters) -> bool:
    attrs = ev["Actor"]["Attributes"]
    kind, actor = ev["Type"], ev["Actor"]["ID"]
    if not f.match("type", kind) or not f.match("scope", ev["scope"]):
        return False
    if "event" in f and ev["Action"].split(":")[0] not in f.get("event"):
        return False
    for name, kinds in (("container", ("container",)), ("image", ("image",)),
                        ("volume", ("volume",)), ("network", ("network",)),
                        ("daemon", ("daemon",))):
        if name in f:
            if kind not in kinds and not (name == "image" and kind == "container"):
                return False
            values = f.get(name)
            if name == "image" and kind == "container":
                ok = attrs.get("image") in values
            else:
                ok = any(actor == v or actor.startswith(v) or attrs.get("name") == v
                         for v in values)
            if not ok:
                return False
    return f.match_labels(attrs)
