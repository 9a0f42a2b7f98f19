"""Containers as the API shows them: inspect (ContainerInspectResponse) and
list (ContainerSummary), with Docker's human-readable Status."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Sequence

from . import health, timefmt
from .errors import InvalidParameter
from .filters import Filters
from .records import Record, Table

LIST_FILTERS = ("ancestor", "before", "expose", "exited", "health", "id", "is-task", "label",
                "name", "network", "publish", "since", "status", "volume")
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HIDDEN_STATE = ("ShimPid", "ManuallyStopped")


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def status_text(rec: Record) -> str:
    st = rec.state
    now = time.time()
    if st.get("Restarting"):
        since = now - timefmt.to_ns(st["FinishedAt"]) / 1e9
        return f"Restarting ({st.get('ExitCode', 0)}) {human_duration(since)} ago"
    if st.get("Running"):
        up = f"Up {human_duration(now - timefmt.to_ns(st['StartedAt']) / 1e9)}"
        if st.get("Paused"):
            return up + " (Paused)"
        status = health_status(rec)
        if status:
            return up + (" (health: starting)" if status == health.STARTING else f" ({status})")
        return up
    if rec.status == "created":
        return "Created"
    finished = timefmt.to_ns(st.get("FinishedAt", ""))
    if not finished:
        return ""
    return f"Exited ({st.get('ExitCode', 0)}) {human_duration(now - finished / 1e9)} ago"


def ports(rec: Record) -> dict:
    """NetworkSettings.Ports: exposed ports, with their host bindings while
    the container runs."""
    out: dict = {p: None for p in rec.config.get("ExposedPorts") or {}}
    if rec.running:
        out.update(rec.published)
    return out


def health_status(rec: Record) -> str:
    """State.Health.Status, "" for a container without health checks (or
    never started)."""
    if health.probe_argv(rec.config) is None:
        return ""
    return str((health.load(rec) or {}).get("Status") or "")


def public_state(rec: Record) -> dict:
    st = {k: v for k, v in rec.state.items() if k not in HIDDEN_STATE}
    st["Status"] = rec.status
    if health.probe_argv(rec.config) is not None:
        found = health.load(rec)
        if found is not None:
            st["Health"] = found
    return st


def inspect(rec: Record, size: dict | None = None, sandbox_key: str = "") -> dict:
    argv = rec.argv
    out = {
        "Id": rec.id, "Created": rec.created, "Path": argv[0] if argv else "",
        "Args": argv[1:], "State": {k: v for k, v in public_state(rec).items()
                                    if k != "RestartCount"},
        "Image": rec.image_id, "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
        "LogPath": "" if (rec.host_config.get("LogConfig") or {}).get("Type") == "none"
        else str(rec.log_path), "Name": "/" + rec.name,
        "RestartCount": rec.state.get("RestartCount", 0), "Driver": "brandpy-linkfarm",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None, "HostConfig": rec.host_config,
        "GraphDriver": {"Name": "brandpy-linkfarm",
                        "Data": {"MergedDir": str(rec.rootfs)}},
        "Mounts": rec.mounts, "Config": rec.config,
        "NetworkSettings": network_settings(rec, sandbox_key),
    }
    if size is not None:
        out.update(size)
    return out


def network_settings(rec: Record, sandbox_key: str = "") -> dict:
    """The top-level address fields are the default bridge network's, as
    dockerd's (deprecated) ones are; sandbox_key names the container's
    network namespace while it runs."""
    default = rec.networks.get("bridge") or {}
    return {"Bridge": "", "SandboxID": "", "SandboxKey": sandbox_key, "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports(rec),
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": default.get("EndpointID", "") if default.get("IPAddress") else "",
            "Gateway": default.get("Gateway", ""),
            "GlobalIPv6Address": default.get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": default.get("GlobalIPv6PrefixLen", 0),
            "IPAddress": default.get("IPAddress", ""),
            "IPPrefixLen": default.get("IPPrefixLen", 0),
            "IPv6Gateway": default.get("IPv6Gateway", ""),
            "MacAddress": default.get("MacAddress", "") if default.get("IPAddress") else "",
            "Networks": rec.networks}


def summary(rec: Record, image_names: dict[str, str], link_names: Sequence[str] = ()) -> dict:
    """`docker ps`'s entry; link_names: the /PARENT/ALIAS names links give it."""
    argv = rec.argv
    port_list = []
    for port, bindings in ports(rec).items():
        number, _, proto = port.partition("/")
        for b in bindings or [None]:
            entry = {"PrivatePort": int(number.split("-")[0]), "Type": proto or "tcp"}
            if b:
                entry.update(IP=b["HostIp"], PublicPort=int(b["HostPort"] or 0))
            port_list.append(entry)
    image = rec.config.get("Image", "")
    return {
        "Id": rec.id, "Names": ["/" + rec.name, *link_names],
        "Image": image if image else image_names.get(rec.image_id, rec.image_id),
        "ImageID": rec.image_id, "Command": shlex.join(argv) if argv else "",
        "Created": timefmt.to_ns(rec.created) // 1_000_000_000, "Ports": port_list,
        "Labels": rec.config.get("Labels") or {}, "State": rec.status,
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": rec.networks}, "Mounts": rec.mounts,
    }


def list_containers(table: Table, f: Filters, show_all: bool, limit: int,
                    resolve_image: Callable[[str], str | None]) -> list[Record]:
    """`docker ps`: newest first, with its filters."""
    recs = sorted(table, key=lambda r: timefmt.to_ns(r.created), reverse=True)
    bounds = {}
    for key in ("before", "since"):
        for v in f.get(key):
            bounds[key] = timefmt.to_ns(table.get(v).created)
    for v in f.get("status"):
        if v not in STATES:
            raise InvalidParameter(f"invalid filter 'status={v}'")
    # As in Docker, -n, a status or an exited filter imply --all.
    show_all = show_all or limit > 0 or "status" in f or "exited" in f
    out = []
    for rec in recs:
        if not show_all and not rec.running:
            continue
        if matches(rec, f, resolve_image, bounds):
            out.append(rec)
    return out[:limit] if limit > 0 else out


def matches(rec: Record, f: Filters, resolve_image: Callable[[str], str | None],
            bounds: dict[str, int]) -> bool:
    created = timefmt.to_ns(rec.created)
    if "before" in bounds and created >= bounds["before"]:
        return False
    if "since" in bounds and created <= bounds["since"]:
        return False
    if "id" in f and not any(rec.id.startswith(v) for v in f.get("id")):
        return False
    if "name" in f and not any(re.search(v, "/" + rec.name) for v in f.get("name")):
        return False
    if "status" in f and rec.status not in f.get("status"):
        return False
    if "exited" in f and (rec.status != "exited"
                          or str(rec.state.get("ExitCode")) not in f.get("exited")):
        return False
    if not f.match_labels(rec.config.get("Labels") or {}):
        return False
    if "ancestor" in f and not any(resolve_image(v) == rec.image_id for v in f.get("ancestor")):
        return False
    if "volume" in f and not any(m.get("Name") in f.get("volume")
                                 or m.get("Destination") in f.get("volume")
                                 or m.get("Source") in f.get("volume") for m in rec.mounts):
        return False
    if "network" in f and not any(n in rec.networks or any(
            e["NetworkID"].startswith(n) for e in rec.networks.values())
            for n in f.get("network")):
        return False
    exposed = rec.config.get("ExposedPorts") or {}
    if "expose" in f and not any(p in exposed or p + "/tcp" in exposed for p in f.get("expose")):
        return False
    if "publish" in f and not any(
            any(b.get("HostPort") == p.split("/")[0] for b in bindings or [])
            for p in f.get("publish") for bindings in ports(rec).values()):
        return False
    return "health" not in f or (health_status(rec) or "none") in f.get("health")
