"""Networks: Docker's three built-in ones (bridge, host, none) and user
networks, kept in networks.json with the configuration given, as dockerd
keeps it.

Whether they become real is the daemon's networking mode (netsetup.py):
as root each container gets a network namespace and addresses from these
records' IPAM pools (a network made without one gets a free default pool,
as dockerd's); unprivileged, containers use the host's network stack and
no address is invented (IPAddress stays empty).
"""

from __future__ import annotations

import builtins
import ipaddress
import json
import re
import secrets
from pathlib import Path

from brandpy import pathnames
from brandpy.images.fsutil import atomic_write_json
from brandpy.network import bridge, ipam
from brandpy.network.errors import NetworkError
from brandpy.network.model import Network

from . import timefmt
from .errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound
from .filters import Filters

BUILTIN = {"bridge": "bridge", "host": "host", "none": "null"}


def _record(name: str, driver: str, labels: dict | None = None, internal: bool = False,
            attachable: bool = False, options: dict | None = None, ipam: dict | None = None,
            ipv6: bool = False) -> dict:
    return {"Name": name, "Id": secrets.token_hex(32), "Created": timefmt.iso(),
            "Scope": "local", "Driver": driver, "EnableIPv4": driver == "bridge",
            "EnableIPv6": ipv6,
            "IPAM": ipam or {"Driver": "default", "Options": None, "Config": []},
            "Internal": internal, "Attachable": attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": options or {},
            "Labels": labels or {}}


Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(text: str, what: str) -> Subnet:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid CIDR address: {text} ({what})") from None


def _address(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidParameter(f"invalid {what}: {text!r} is not an IP address") from None


def _span(a: Subnet, b: Subnet) -> str:
    """"inside" (a within b), "overlap", or "apart" (other family too)."""
    if a.version != b.version:
        return "apart"
    lo, hi = int(a.network_address), int(a.broadcast_address)
    blo, bhi = int(b.network_address), int(b.broadcast_address)
    if blo <= lo and hi <= bhi:
        return "inside"
    return "apart" if hi < blo or bhi < lo else "overlap"


def _ipam(given: dict, others: builtins.list[dict]) -> dict:
    """IPAM as dockerd stores it: the pools as configured (only the fields
    given, IPv4 before IPv6), checked for form and against the other networks' pools. No
    address is allocated from them (containers have none of their own)."""
    pools = []
    taken = [_network(c["Subnet"], "subnet") for net in others
             for c in net["IPAM"].get("Config") or [] if c.get("Subnet")]
    for pool in given.get("Config") or []:
        if not pool.get("Subnet"):
            raise InvalidParameter("an IPAM pool needs a Subnet (brandpy allocates none)")
        subnet = _network(pool["Subnet"], "subnet")
        if any(_span(subnet, t) != "apart" for t in taken):
            raise Forbidden("Pool overlaps with other one on this address space")
        taken.append(subnet)
        if pool.get("IPRange") and _span(_network(pool["IPRange"], "ip-range"),
                                         subnet) != "inside":
            raise InvalidParameter(f"invalid ip-range {pool['IPRange']}: it is not within the "
                                   f"subnet {pool['Subnet']}")
        for what, addr in [("gateway", pool.get("Gateway")),
                           *(("auxiliary address", a) for a in
                             (pool.get("AuxiliaryAddresses") or {}).values())]:
            if addr and _address(addr, what) not in subnet:
                raise InvalidParameter(f"invalid {what} {addr}: it is not within the subnet "
                                       f"{pool['Subnet']}")
        pools.append({k: v for k, v in pool.items() if v})
    # IPv4 first, as dockerd lists them (the CLI sends its --subnet flags in
    # no fixed order)
    pools.sort(key=lambda p: _network(p["Subnet"], "subnet").version)
    return {"Driver": given.get("Driver") or "default", "Options": given.get("Options") or None,
            "Config": pools}


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
        """By full ID, name, or unique ID prefix, as dockerd finds them."""
        if ref in self.nets:
            return self.nets[ref]
        named = [n for n in self.nets.values() if n["Name"] == ref]
        if len(named) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(named)} matches found on "
                                   "name)")
        if named:
            return named[0]
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

    def create(self, body: dict, real: bool = False) -> tuple[dict, str]:
        """A bridge network. A name in use is refused only with
        CheckDuplicate (else a warning, as dockerd). real: its containers
        get addresses (bridge mode), so it gets a pool if none is given
        and what the bridge driver cannot do is refused."""
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidParameter("network name is required")
        pathnames.network_name(name)
        if name in BUILTIN:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        driver = body.get("Driver") or "bridge"
        if driver != "bridge":
            raise InvalidParameter(f"network driver {driver!r} is not supported: brandpy "
                                   "creates bridge networks only")
        same = [n for n in self.nets.values() if n["Name"] == name]
        if same and body.get("CheckDuplicate"):
            raise Conflict(f"network with name {name} already exists")
        if body.get("Scope") not in (None, "", "local"):
            raise InvalidParameter(f"scope {body['Scope']!r} is not supported: brandpy networks "
                                   "are local")
        pools = _ipam(body.get("IPAM") or {}, builtins.list(self.nets.values()))
        rec = _record(name, driver, body.get("Labels"), bool(body.get("Internal")),
                      bool(body.get("Attachable")), body.get("Options"), pools,
                      bool(body.get("EnableIPv6")))
        if real:
            self._make_real(rec)
        warning = f"Network with name {name} (id : {same[0]['Id']}) already exists" if same else ""
        self.nets[rec["Id"]] = rec
        self._save()
        return rec, warning

    def _make_real(self, rec: dict) -> None:
        """Bridge mode: one IPv4 pool (a free default one if none is given,
        its gateway filled in as dockerd shows it) and at most one IPv6
        pool, which --ipv6 needs (there are no default IPv6 pools) and
        which is kept unused without it, as dockerd 20.10 does; options the
        bridge driver knows."""
        unsupported = sorted(k for k in rec["Options"] if k.startswith("com.docker.network.")
                             and k != bridge.NAME_OPTION)
        if unsupported:
            raise InvalidParameter(f"network options {', '.join(unsupported)} are not "
                                   f"supported: brandpy's bridge driver takes {bridge.NAME_OPTION}")
        pools = rec["IPAM"]["Config"]
        v4, v6 = _by_family(pools)
        try:
            if len(v4) > 1 or len(v6) > 1:
                raise NetworkError("one IPAM pool per IP version: brandpy's bridge networks "
                                   "have one IPv4 subnet and, with --ipv6, one IPv6 subnet", 400)
            if rec["EnableIPv6"] and not v6:
                raise NetworkError("could not find an available, non-overlapping IPv6 address "
                                   "pool among the defaults to assign to the network: give "
                                   "one with --subnet", 400)
            if not v4:
                v4.append(self.auto_pool())
                pools.insert(0, v4[0])
            v4[0].setdefault("Gateway", str(ipam.Pool.from_config(v4[0]).gateway))
            bridge.BridgeDriver().interface(network_view(rec))   # as the driver takes them
        except NetworkError as exc:
            raise EngineError(str(exc), exc.status) from None

    def _subnets(self) -> builtins.list[ipam.IPv4Network]:
        return [ipam.IPv4Network(c["Subnet"], strict=False) for n in self.nets.values()
                for c in n["IPAM"].get("Config") or []
                if c.get("Subnet") and ":" not in c["Subnet"]]

    def auto_pool(self) -> dict:
        """The first default pool free of other networks and of the routes
        of the daemon's namespace."""
        subnet = ipam.choose_subnet(self._subnets(), ipam.routes())
        return ipam.Pool(subnet, subnet.network_address + 1).to_config()

    def ensure_pool(self, net: dict) -> None:
        """An IPv4 pool for a network made without one before the daemon
        gave addresses (unprivileged); its IPv6 pool is kept."""
        configs = net["IPAM"].get("Config") or []
        if not _by_family(configs)[0]:
            net["IPAM"]["Config"] = [self.auto_pool(), *configs]
            self._save()

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
            return {}       # it has the other container's network (netsetup.py)
        endpoints = {("bridge" if ref == "default" else ref): cfg for ref, cfg in endpoints.items()}
        try:
            out = {self.get(name)["Name"]: endpoint(self.get(name), endpoints.get(name) or {})}
            for ref, cfg in endpoints.items():
                net = self.get(ref)
                out[net["Name"]] = endpoint(net, cfg or {})
        except NotFound as exc:
            raise InvalidParameter(str(exc)) from None   # a 404 would mean "no such image"
        return out


_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def endpoint(net: dict, cfg: dict) -> dict:
    """A container's endpoint in net: the configuration given (aliases,
    links, IPAM addresses, driver options, MAC address) kept and shown as
    dockerd keeps it; the operational fields (IPAddress, Gateway...) are
    filled in while it runs, in bridge mode (netsetup.py)."""
    ipam = {k: v for k, v in (cfg.get("IPAMConfig") or {}).items() if v}
    subnets = [_network(c["Subnet"], "subnet") for c in net["IPAM"].get("Config") or []]
    for key in ("IPv4Address", "IPv6Address"):
        if not ipam.get(key):
            continue
        if net["Name"] in BUILTIN:
            raise InvalidParameter("user specified IP address is supported on user defined "
                                   "networks only")
        if not subnets:
            raise InvalidParameter("user specified IP address is supported only when "
                                   "connecting to networks with user configured subnets")
        if not any(_address(ipam[key], key) in s for s in subnets):
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address "
                                   f"{ipam[key]}")
    for ip in ipam.get("LinkLocalIPs") or []:
        _address(ip, "link-local IP")
    mac = cfg.get("MacAddress") or ""
    if mac and not _MAC.fullmatch(mac):
        raise InvalidParameter(f"invalid MAC address: {mac}")
    for link in cfg.get("Links") or []:
        link_name(link)
    return {"IPAMConfig": ipam or None, "Links": cfg.get("Links") or None,
            "Aliases": cfg.get("Aliases") or None, "MacAddress": mac,
            "DriverOpts": cfg.get("DriverOpts") or None, "NetworkID": net["Id"],
            "EndpointID": secrets.token_hex(32), "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def link_name(link: str) -> tuple[str, str]:
    """`NAME[:ALIAS]` (--link): (the container's name, the alias)."""
    name, _, alias = link.partition(":")
    name = name.lstrip("/")
    if not name or "/" in name:
        raise InvalidParameter(f"invalid link {link!r}: use NAME or NAME:ALIAS")
    return name, alias or name


def _by_family(configs: list[dict]) -> tuple[list[dict], list[dict]]:
    """IPAM pools: the IPv4 ones and the IPv6 ones."""
    v6 = [c for c in configs if ":" in c.get("Subnet", "")]
    return [c for c in configs if c not in v6], v6


def network_view(net: dict) -> Network:
    """A network record as networking sees it: its IPv4 pool, and its IPv6
    one if --ipv6."""
    v4, v6 = _by_family(net["IPAM"].get("Config") or [])
    if not v4:
        raise NetworkError(f"network {net['Name']} has no IPv4 subnet: brandpy cannot give its "
                           "containers addresses; recreate it", 500)
    pool6 = ipam.Pool.from_config(v6[0]) if net.get("EnableIPv6") and v6 else None
    return Network(net["Id"], net["Name"], net["Driver"], ipam.Pool.from_config(v4[0]),
                   internal=bool(net.get("Internal")), names=net["Name"] != "bridge",
                   options=dict(net.get("Options") or {}), pool6=pool6)
