"""What the engine tells networking about: networks, endpoints (a
container's attachment to one network) and published ports. The engine
keeps them on disk (its records); these are the in-memory views the
drivers, the firewall and the resolvers work from."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from .ipam import Pool


@dataclass
class Network:
    id: str
    name: str
    driver: str
    pool: Pool
    internal: bool = False
    pool6: Pool | None = None    # --ipv6: the IPv6 subnet, its gateway on the bridge too
    names: bool = True           # the resolver answers containers' names (not on `bridge`)
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoint:
    id: str                      # EndpointID
    container: str               # the container's ID
    network: str                 # the network's ID
    address: IPv4Address
    mac: str
    gateway: bool = False        # carries the container's default route
    names: tuple[str, ...] = ()  # what the resolver answers with address
    upstream: tuple[str, ...] = ()   # the container's --dns: where other names are asked
    links: tuple[tuple[str, str], ...] = ()  # (alias, container name or ID): for this one only
    link_local: tuple[str, ...] = ()     # --link-local-ip: more addresses on the interface
    address6: IPv6Address | None = None  # on an --ipv6 network

    @property
    def addresses(self) -> list[IPv4Address | IPv6Address]:
        return [self.address] if self.address6 is None else [self.address, self.address6]

    @property
    def host_interface(self) -> str:
        """The host's end of the pair: named from the endpoint, so a
        restarted daemon finds it."""
        return "veth" + self.id[:7]


@dataclass(frozen=True)
class Published:
    """A host port (on host_ip, "" or 0.0.0.0 for every host address)
    forwarded to address:port in a container."""
    proto: str                   # tcp | udp
    host_ip: str
    host_port: int
    address: IPv4Address
    port: int
