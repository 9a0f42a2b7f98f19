"""Networks: Docker's three built-in ones (bridge, host, none) and user
networks, kept in networks.json.

brandpy gives containers no network namespace: every container uses the
host's network stack, as with `--network host` (see the README). Network
records and container endpoints are kept so that `docker network` works
and so name resolution within a network has its membership to work from;
no IP addresses are invented (IPAddress is empty).
"""

from __future__ import annotations

import builtins
import json
import secrets
from pathlib import Path

from brandpy import pathnames
from brandpy.images.fsutil import atomic_write_json

from . import timefmt
from .errors import Conflict, Forbidden, InvalidParameter, NotFound
from .filters import Filters

BUILTIN = {"bridge": "bridge", "host": "host", "none": "null"}


def _record(name: str, driver: str, labels: dict | None = None, internal: bool = False,
            attachable: bool = False, options: dict | None = None) -> dict:
    return {"Name": name, "Id": secrets.token_hex(32), "Created": timefmt.iso(),
            "Scope": "local", "Driver": driver, "EnableIPv4": driver == "bridge",
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": internal, "Attachable": attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": options or {},
            "Labels": labels or {}}


class Networks:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.nets: dict[str, dict] = json.loads(path.read_text())
        except FileNotFoundError:
            self.nets = {}
        for name, driver in BUILTIN.items():
            if not any(n["Name"] == name for n in self.nets.values()):
                rec = _record(name, driver)
                self.nets[rec["Id"]] = rec
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.path, self.nets)

    def get(self, ref: str) -> dict:
        if ref in self.nets:
            return self.nets[ref]
        for net in self.nets.values():
            if net["Name"] == ref:
                return net
        matches = [n for n in self.nets.values() if n["Id"].startswith(ref)]
        if len(matches) == 1 and ref:
            return matches[0]
        raise NotFound(f"network {ref} not found")

    def list(self, f: Filters) -> list[dict]:
        out = []
        for net in self.nets.values():
            kind = "builtin" if net["Name"] in BUILTIN else "custom"
            if "name" in f and not any(v in net["Name"] for v in f.get("name")):
                continue
            if "id" in f and not any(net["Id"].startswith(v) for v in f.get("id")):
                continue
            if not (f.match("driver", net["Driver"]) and f.match("type", kind)
                    and f.match("scope", "local") and f.match_labels(net["Labels"])):
                continue
            out.append(net)
        return out

    def create(self, body: dict) -> dict:
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidParameter("network name is required")
        pathnames.network_name(name)
        driver = body.get("Driver") or "bridge"
        if driver != "bridge":
            raise InvalidParameter(f"network driver {driver!r} is not supported: brandpy "
                                   "creates bridge networks only")
        if any(n["Name"] == name for n in self.nets.values()):
            raise Conflict(f"network with name {name} already exists")
        ipam = body.get("IPAM") or {}
        if ipam.get("Config"):
            raise InvalidParameter("IPAM configuration (--subnet, --ip-range, --gateway) is "
                                   "not supported: brandpy containers use the host's network "
                                   "stack and get no addresses of their own")
        rec = _record(name, driver, body.get("Labels"), bool(body.get("Internal")),
                      bool(body.get("Attachable")), body.get("Options"))
        self.nets[rec["Id"]] = rec
        self._save()
        return rec

    # builtins.list in the methods below list(): the name is the method there.
    def remove(self, ref: str, members: builtins.list[str]) -> dict:
        net = self.get(ref)
        if net["Name"] in BUILTIN:
            raise Forbidden(f"{net['Name']} is a pre-defined network and cannot be removed")
        if members:
            raise Forbidden(f"error while removing network: network {net['Name']} id "
                            f"{net['Id']} has active endpoints")
        del self.nets[net["Id"]]
        self._save()
        return net

    def attach_config(self, mode: str, endpoints: dict) -> dict:
        """Endpoint settings for a new container: its NetworkMode's network
        plus those named in NetworkingConfig."""
        name = "bridge" if mode == "default" else mode
        if name.startswith("container:"):
            raise InvalidParameter("--network container:... is not supported")
        endpoints = {("bridge" if ref == "default" else ref): cfg for ref, cfg in endpoints.items()}
        try:
            out = {self.get(name)["Name"]: endpoint(self.get(name), endpoints.get(name) or {})}
            for ref, cfg in endpoints.items():
                net = self.get(ref)
                out[net["Name"]] = endpoint(net, cfg or {})
        except NotFound as exc:
            raise InvalidParameter(str(exc)) from None   # a 404 would mean "no such image"
        return out


def endpoint(net: dict, cfg: dict) -> dict:
    aliases = cfg.get("Aliases") or []
    if not isinstance(aliases, list):
        raise InvalidParameter("network aliases must be a list of strings")
    return {"IPAMConfig": None, "Links": None, "Aliases": aliases or None, "MacAddress": "",
            "DriverOpts": None, "NetworkID": net["Id"], "EndpointID": secrets.token_hex(32),
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}
