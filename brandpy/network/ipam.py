"""IPAM as dockerd's default driver does it: a network's pool is a subnet
(IPv4, or IPv6 on an --ipv6 network) with a gateway and an optional range
addresses are given from (`--subnet`, `--gateway`, `--ip-range`); a
network without an IPv4 one gets the first of dockerd's default pools
(172.17-31.0.0/16, then 192.168.0.0/16 in /20s) that overlaps neither
another network nor a route of the daemon's namespace (there are no
default IPv6 pools). A container's address is the one it asked for
(`--ip`, `--ip6`) or the lowest free one in the range."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .errors import NetworkError

DEFAULT_POOLS = [*(IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)),
                 *IPv4Network("192.168.0.0/16").subnets(new_prefix=20)]


IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address
MAX_PREFIX = {4: 30, 6: 126}        # room for the network's address, a gateway and two more


def _network(text: str, what: str, version: int = 0) -> IPNetwork:
    """A CIDR (of IP version `version` if given)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise NetworkError(f"invalid {what} {text!r}: expected a CIDR such as 172.30.0.0/16 "
                           "or 2001:db8::/64", 400) from None
    if version and net.version != version:
        raise NetworkError(f"{what} {text} is not an IPv{version} network like its "
                           "subnet", 400)
    return net


def _address(text: str, what: str, version: int) -> IPAddress:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise NetworkError(f"invalid {what} {text!r}: expected an IPv{version} address",
                           400) from None
    if addr.version != version:
        raise NetworkError(f"{what} {text} is not an IPv{version} address", 400)
    return addr


@dataclass(frozen=True)
class Pool:
    subnet: IPNetwork
    gateway: IPAddress
    ip_range: IPNetwork | None = None
    auxiliary: frozenset[IPAddress] = frozenset()     # --aux-address: never given out

    @classmethod
    def from_config(cls, cfg: dict) -> Pool:
        """One entry of a network's IPAM.Config, checked as dockerd checks it."""
        subnet = _network(str(cfg.get("Subnet") or ""), "subnet")
        v = subnet.version
        if subnet.prefixlen > MAX_PREFIX[v]:
            raise NetworkError(f"subnet {subnet} is too small: give a /{MAX_PREFIX[v]} or "
                               "larger", 400)
        if v == 4 and (subnet.prefixlen < 8 or subnet.is_reserved):
            raise NetworkError(f"subnet {subnet} cannot be a network's: give a unicast /8 to "
                               "/30 outside 0/8, 127/8, 169.254/16, 224/4 and 240/4", 400)
        if subnet.is_loopback or subnet.is_multicast or subnet.is_link_local or \
                subnet.network_address.is_unspecified:
            raise NetworkError(f"subnet {subnet} cannot be a network's: give a unicast one "
                               "(not loopback, link-local, multicast or unspecified)", 400)
        ip_range = _network(cfg["IPRange"], "ip-range", v) if cfg.get("IPRange") else None
        if ip_range is not None and not (ip_range.network_address in subnet
                                         and ip_range.broadcast_address in subnet):
            raise NetworkError(f"ip-range {ip_range} is not inside subnet {subnet}", 400)
        gateway = _address(cfg["Gateway"], "gateway", v) if cfg.get("Gateway") else \
            subnet.network_address + 1
        if gateway not in subnet or gateway in _edges(subnet):
            raise NetworkError(f"gateway {gateway} is not a host address of subnet "
                               f"{subnet}", 400)
        aux = frozenset(_address(a, "auxiliary address", v)
                        for a in (cfg.get("AuxiliaryAddresses") or {}).values())
        return cls(subnet, gateway, ip_range, aux)

    def to_config(self) -> dict:
        """IPAM.Config's entry (a pool made here: no range or auxiliary
        addresses)."""
        return {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}

    def _reserved(self) -> set[IPAddress]:
        return {*_edges(self.subnet), self.gateway, *self.auxiliary}

    def allocate(self, used: set[IPAddress], want: str = "") -> IPAddress:
        v = self.subnet.version
        if want:
            addr = _address(want, "address", v)
            if addr not in self.subnet:
                raise NetworkError(f"no configured subnet contains IP address {addr}: "
                                   f"the network's subnet is {self.subnet}", 400)
            if addr in self._reserved():
                raise NetworkError(f"address {addr} is reserved in {self.subnet} (network, "
                                   "broadcast or gateway): choose another "
                                   f"{'--ip' if v == 4 else '--ip6'}", 400)
            if addr in used:
                raise NetworkError(f"Address already in use: {addr} is another "
                                   "container's", 409)
            return addr
        reserved = self._reserved() | used
        for addr in (self.ip_range or self.subnet).hosts():
            if addr not in reserved:
                return addr
        raise NetworkError(f"no available IPv{v} addresses on this network's address pools: "
                           f"{self.ip_range or self.subnet} is full", 503)


def _edges(subnet: IPNetwork) -> set[IPAddress]:
    """The addresses of a subnet no host gets: its own, and IPv4's broadcast."""
    if subnet.version == 6:
        return {subnet.network_address}
    return {subnet.network_address, subnet.broadcast_address}


def routes(path: str = "/proc/self/net/route") -> list[IPv4Network]:
    """The destinations of the IPv4 routes of the calling process's network
    namespace (the default route excluded)."""
    out = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest, mask = (socket.inet_ntoa(struct.pack("<I", int(x, 16))) for x in (fields[1],
                                                                                 fields[7]))
        net = IPv4Network(f"{dest}/{mask}", strict=False)
        if net.prefixlen:
            out.append(net)
    return out


def overlapping(subnet: IPv4Network, others: Iterable[IPv4Network]) -> IPv4Network | None:
    return next((o for o in others if subnet.overlaps(o)), None)


def choose_subnet(networks: Iterable[IPv4Network], host_routes: Iterable[IPv4Network],
                  pools: Iterator[IPv4Network] | None = None) -> IPv4Network:
    taken = [*networks, *host_routes]
    for candidate in pools or iter(DEFAULT_POOLS):
        if overlapping(candidate, taken) is None:
            return candidate
    raise NetworkError("could not find an available, non-overlapping IPv4 address pool among "
                       "the defaults to assign to the network: give one with --subnet", 403)


def mac_of(addr: IPAddress) -> str:
    """dockerd's classic MAC for an (IPv4) address: 02:42 and its bytes."""
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *addr.packed[-4:]))


def check_mac(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise NetworkError(f"invalid MAC address {text!r}: expected six hex bytes such as "
                           "02:42:ac:11:00:02", 400)
    try:
        first = int(parts[0], 16)
        for p in parts[1:]:
            int(p, 16)
    except ValueError:
        raise NetworkError(f"invalid MAC address {text!r}", 400) from None
    if first & 1:
        raise NetworkError(f"invalid MAC address {text}: a multicast address cannot be an "
                           "interface's", 400)
    return text.lower()
