"""IPAM as dockerd's default driver does it (IPv4): a network's pool is a
subnet with a gateway and an optional range addresses are given from
(`--subnet`, `--gateway`, `--ip-range`); a network without one gets the
first of dockerd's default pools (172.17-31.0.0/16, then 192.168.0.0/16
in /20s) that overlaps neither another network nor a route of the
daemon's namespace. A container's address is the one it asked for
(`--ip`) or the lowest free one in the range."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .errors import NetworkError

DEFAULT_POOLS = [*(IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)),
                 *IPv4Network("192.168.0.0/16").subnets(new_prefix=20)]


def _network(text: str, what: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise NetworkError(f"invalid {what} {text!r}: expected an IPv4 CIDR such as "
                           "172.30.0.0/16", 400) from None
    if not isinstance(net, IPv4Network):
        raise NetworkError(f"{what} {text}: IPv6 networks are not supported: brandpy's "
                           "networks are IPv4", 400)
    return net


def _address(text: str, what: str) -> IPv4Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise NetworkError(f"invalid {what} {text!r}: expected an IPv4 address", 400) from None
    if not isinstance(addr, IPv4Address):
        raise NetworkError(f"{what} {text}: IPv6 addresses are not supported", 400)
    return addr


@dataclass(frozen=True)
class Pool:
    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None
    auxiliary: frozenset[IPv4Address] = frozenset()     # --aux-address: never given out

    @classmethod
    def from_config(cls, cfg: dict) -> Pool:
        """One entry of a network's IPAM.Config, checked as dockerd checks it."""
        subnet = _network(str(cfg.get("Subnet") or ""), "subnet")
        if subnet.prefixlen > 30:
            raise NetworkError(f"subnet {subnet} is too small: give a /30 or larger", 400)
        if subnet.prefixlen < 8 or subnet.is_loopback or subnet.is_multicast or \
                subnet.is_link_local or subnet.is_reserved or subnet.network_address.is_unspecified:
            raise NetworkError(f"subnet {subnet} cannot be a network's: give a unicast /8 to "
                               "/30 outside 0/8, 127/8, 169.254/16, 224/4 and 240/4", 400)
        ip_range = _network(cfg["IPRange"], "ip-range") if cfg.get("IPRange") else None
        if ip_range is not None and not ip_range.subnet_of(subnet):
            raise NetworkError(f"ip-range {ip_range} is not inside subnet {subnet}", 400)
        if cfg.get("Gateway"):
            gateway = _address(cfg["Gateway"], "gateway")
            if gateway not in subnet or gateway in (subnet.network_address,
                                                     subnet.broadcast_address):
                raise NetworkError(f"gateway {gateway} is not a host address of subnet "
                                   f"{subnet}", 400)
        else:
            gateway = subnet.network_address + 1
        aux = frozenset(_address(a, "auxiliary address")
                        for a in (cfg.get("AuxiliaryAddresses") or {}).values())
        return cls(subnet, gateway, ip_range, aux)

    def to_config(self) -> dict:
        """IPAM.Config's entry (a pool made here: no range or auxiliary
        addresses)."""
        return {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}

    def _reserved(self) -> set[IPv4Address]:
        return {self.subnet.network_address, self.subnet.broadcast_address, self.gateway,
                *self.auxiliary}

    def allocate(self, used: set[IPv4Address], want: str = "") -> IPv4Address:
        if want:
            addr = _address(want, "address")
            if addr not in self.subnet:
                raise NetworkError(f"no configured subnet contains IP address {addr}: "
                                   f"the network's subnet is {self.subnet}", 400)
            if addr in self._reserved():
                raise NetworkError(f"address {addr} is reserved in {self.subnet} (network, "
                                   "broadcast or gateway): choose another --ip", 400)
            if addr in used:
                raise NetworkError(f"Address already in use: {addr} is another "
                                   "container's", 409)
            return addr
        reserved = self._reserved() | used
        for addr in (self.ip_range or self.subnet).hosts():
            if addr not in reserved:
                return addr
        raise NetworkError(f"no available IPv4 addresses on this network's address pools: "
                           f"{self.ip_range or self.subnet} is full", 503)


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


def mac_of(addr: IPv4Address) -> str:
    """dockerd's classic MAC for an address: 02:42 and the address's bytes."""
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *addr.packed))


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
