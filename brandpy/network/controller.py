"""The face the engine calls: Networking holds the networks and endpoints
in force, has their driver plumb them, keeps the firewall table equal to
them and runs a resolver per network. It keeps nothing on disk: the
engine's records are the truth, and a restarted daemon hands them back
(create_network and restore are idempotent; attach is not repeated, the
kernel kept the pairs)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Protocol

from brandpy.runtime.loopback import nameservers

from . import dns, firewall, netns
from .bridge import BridgeDriver
from .counters import names as interfaces
from .errors import NetworkError
from .ipam import IPAddress
from .model import Endpoint, Network, Published


class Driver(Protocol):
    def interface(self, net: Network) -> str:
        """The host interface the network's traffic leaves by."""

    async def create_network(self, net: Network, existing: bool) -> None:
        """Make what the network needs (with `existing`, keep what a
        previous daemon made)."""

    async def remove_network(self, net: Network) -> None: ...

    async def attach(self, net: Network, ep: Endpoint, netns: str, ifname: str) -> None:
        """Give the namespace `netns` the interface `ifname` for ep."""

    async def detach(self, net: Network, ep: Endpoint) -> None: ...

    async def remove_orphans(self, keep: set[str]) -> None:
        """Remove what this driver made for networks gone (a daemon killed
        midway), keeping the interfaces in `keep`."""


class Networking:
    def __init__(self) -> None:
        self.drivers: dict[str, Driver] = {"bridge": BridgeDriver()}
        self.networks: dict[str, Network] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.published: dict[str, list[Published]] = {}     # container ID -> its ports
        self.resolvers: dict[str, dns.Resolver] = {}        # network ID -> its resolver
        self.lock = asyncio.Lock()

    def driver(self, net: Network) -> Driver:
        try:
            return self.drivers[net.driver]
        except KeyError:
            raise NetworkError(f"network driver {net.driver!r} is not supported: use "
                               f"{', '.join(self.drivers)}", 400) from None

    # -- networks -------------------------------------------------------------

    async def create_network(self, net: Network, existing: bool = False) -> None:
        """Make the network (with `existing`, take over what a previous
        daemon made) and start its resolver."""
        async with self.lock:
            driver = self.driver(net)
            await driver.create_network(net, existing)
            self.networks[net.id] = net
            try:
                await self._start_resolver(net)
            except NetworkError:
                del self.networks[net.id]
                await driver.remove_network(net)
                raise
            await self._apply()

    async def remove_network(self, net_id: str) -> None:
        async with self.lock:
            net = self.networks.pop(net_id, None)
            if net is None:
                return
            resolver = self.resolvers.pop(net_id, None)
            if resolver is not None:
                resolver.close()
            await self._apply()
            await self.driver(net).remove_network(net)

    async def _start_resolver(self, net: Network) -> None:
        if net.id in self.resolvers:
            return
        try:
            self.resolvers[net.id] = await dns.serve(
                str(net.pool.gateway), lambda src: self.view(net.id, src))
        except OSError as exc:
            raise NetworkError(f"network {net.name}: cannot serve DNS on "
                               f"{net.pool.gateway}:{dns.PORT}: {exc.strerror} (is another "
                               "DNS server listening on every address?)") from None

    # -- endpoints ------------------------------------------------------------

    async def attach(self, ep: Endpoint, pid: int) -> str:
        """Plumb ep into the namespace of process pid; the interface name
        it got there (eth0, eth1... the first free)."""
        async with self.lock:
            net = self._network(ep.network)
            taken = interfaces(pid)
            ifname = next(f"eth{n}" for n in range(len(taken) + 1) if f"eth{n}" not in taken)
            await self.driver(net).attach(net, ep, netns.of_pid(pid), ifname)
            self.endpoints[ep.id] = ep
            return ifname

    async def detach(self, ep_id: str) -> None:
        async with self.lock:
            ep = self.endpoints.pop(ep_id, None)
            if ep is None:
                return
            net = self.networks.get(ep.network)
            if net is not None:
                await self.driver(net).detach(net, ep)
            await self._apply()

    def restore(self, ep: Endpoint) -> None:
        """An endpoint a previous daemon plumbed (its container still runs)."""
        self.endpoints[ep.id] = ep

    async def forget(self, ep: Endpoint) -> None:
        """An endpoint of a container that stopped while no daemon ran:
        remove the host end if the kernel kept it."""
        net = self.networks.get(ep.network)
        if net is not None:
            await self.driver(net).detach(net, ep)

    def _network(self, net_id: str) -> Network:
        net = self.networks.get(net_id)
        if net is None:
            raise NetworkError(f"network {net_id} is not set up: restart the daemon")
        return net

    async def publish(self, container: str, ports: list[Published]) -> None:
        """Set a container's published ports ([] to withdraw them)."""
        for p in ports:
            if p.host_ip not in ("", "0.0.0.0") and ipaddress.ip_address(p.host_ip).version != 4:
                raise NetworkError(f"cannot publish on {p.host_ip}: brandpy publishes ports "
                                   "on IPv4 addresses; give one, or none for all", 400)
        async with self.lock:
            if ports:
                self.published[container] = ports
            elif self.published.pop(container, None) is None:
                return
            await self._apply()

    async def sync(self) -> None:
        """Daemon start, once the networks and endpoints are handed back:
        remove what was left of networks gone, make the firewall table."""
        async with self.lock:
            for name, driver in self.drivers.items():
                await driver.remove_orphans({driver.interface(n) for n in self.networks.values()
                                             if n.driver == name})
            await self._apply()

    async def _apply(self) -> None:
        nets = [(net, self.driver(net).interface(net)) for net in self.networks.values()]
        resolvers = [(br, str(net.pool.gateway)) for net, br in nets if net.id in self.resolvers]
        await firewall.apply(firewall.render(
            nets, [p for ports in self.published.values() for p in ports], resolvers))

    # -- the resolvers' view ----------------------------------------------------

    def view(self, net_id: str, source: str) -> dns.View | None:
        """What the container at `source` on network net_id may resolve:
        the names on the networks it is on (those with names), forwarding
        unless all of them are --internal."""
        asking = next((e for e in self.endpoints.values()
                       if e.network == net_id and str(e.address) == source), None)
        if asking is None:
            return None
        mine = [e for e in self.endpoints.values() if e.container == asking.container]
        names: dict[str, list[IPAddress]] = {}
        for own in mine:
            net = self.networks.get(own.network)
            if net is None or not net.names:
                continue
            for other in self.endpoints.values():
                if other.network == own.network:
                    for name in other.names:
                        names.setdefault(name.lower(), []).extend(other.addresses)
                    for alias, target in own.links:
                        if target in other.names or other.container.startswith(target):
                            names.setdefault(alias.lower(), []).extend(other.addresses)
        internal = all(self.networks[e.network].internal for e in mine
                       if e.network in self.networks)
        upstream = [] if internal else [
            s for s in asking.upstream if not is_loopback(s)] or nameservers()   # read at each use
        return dns.View(names, upstream)

    async def close(self) -> None:
        """Daemon shutdown: stop the resolvers; the kernel's state stays for
        the containers that keep running."""
        for resolver in self.resolvers.values():
            resolver.close()
        self.resolvers.clear()


def is_loopback(server: str) -> bool:
    """A loopback server is the container's own: not reachable from here."""
    try:
        return ipaddress.ip_address(server).is_loopback
    except ValueError:
        return True
