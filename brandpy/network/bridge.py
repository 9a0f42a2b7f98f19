"""dockerd's bridge driver: a Linux bridge per network holding the
gateway address (and the IPv6 one, --ipv6), and per endpoint a veth pair,
one end on the bridge and the other in the container's namespace with the
endpoint's addresses and MAC (and the default routes, for the endpoint
that carries them). IPv6 addresses are added without duplicate address
detection, as dockerd's: IPAM made them unique, and a tentative address
could not be used for the first second or two."""

from __future__ import annotations

import re

from . import commands
from .counters import names as interfaces
from .errors import NetworkError
from .model import Endpoint, Network

NAME_OPTION = "com.docker.network.bridge.name"
DEFAULT_BRIDGE = "bp0"
PREFIX = "bp-"          # user networks' bridges: bp-<12 hex of the ID> (dockerd's are br-)
IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def _sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/net/{path}", "w") as f:
        f.write(value)


class BridgeDriver:
    def interface(self, net: Network) -> str:
        name = net.options.get(NAME_OPTION) or (
            DEFAULT_BRIDGE if net.name == "bridge" else PREFIX + net.id[:12])
        if not IFNAME.fullmatch(name):
            raise NetworkError(f"invalid bridge name {name!r} ({NAME_OPTION}): 1 to 15 "
                               "letters, digits, '.', '-' or '_'", 400)
        return name

    async def create_network(self, net: Network, existing: bool) -> None:
        """Make the bridge, or with `existing` take back the one a previous
        daemon made (never another interface of that name)."""
        br, pool = self.interface(net), net.pool
        if br in interfaces():
            _, details, _ = await commands.run(["ip", "-d", "link", "show", "dev", br], "")
            if not existing or "bridge_id" not in details:
                raise NetworkError(f"the host has an interface named {br} already: give the "
                                   f"network another ({NAME_OPTION})", 409)
        else:
            await commands.ip([f"link add name {br} type bridge"])
        lines = [f"addr replace {pool.gateway}/{pool.subnet.prefixlen} dev {br}"]
        if net.pool6 is not None:
            _sysctl(f"ipv6/conf/{br}/disable_ipv6", "0")
            lines.append(f"addr replace {net.pool6.gateway}/{net.pool6.subnet.prefixlen} "
                         f"dev {br} nodad")
        await commands.ip([*lines, f"link set {br} up"])
        # -p 127.0.0.1:... reached from the host's loopback is routed out the bridge
        _sysctl(f"ipv4/conf/{br}/route_localnet", "1")
        _sysctl("ipv4/ip_forward", "1")
        if net.pool6 is not None:       # as dockerd's with IPv6: routed, not NATed
            _sysctl("ipv6/conf/all/forwarding", "1")

    async def remove_orphans(self, keep: set[str]) -> None:
        """Bridges a killed daemon left of networks removed since."""
        for name in sorted(interfaces()):
            if name.startswith(PREFIX) and name not in keep:
                await commands.ip([f"link del {name}"], force=True)

    async def remove_network(self, net: Network) -> None:
        br = self.interface(net)
        if br in interfaces():
            await commands.ip([f"link del {br}"], force=True)

    async def attach(self, net: Network, ep: Endpoint, netns: str, ifname: str) -> None:
        br, host = self.interface(net), ep.host_interface
        if host in interfaces():      # left by a daemon killed while attaching
            await commands.ip([f"link del {host}"], force=True)
        await commands.ip([f"link add {host} master {br} up type veth peer name {ifname} "
                           f"address {ep.mac} netns {netns}"])
        lines = [f"addr add {ep.address}/{net.pool.subnet.prefixlen} dev {ifname}",
                 *(f"addr add {ip} dev {ifname}" for ip in ep.link_local)]
        if ep.address6 is not None and net.pool6 is not None:
            lines.append(f"addr add {ep.address6}/{net.pool6.subnet.prefixlen} dev {ifname} "
                         "nodad")
        lines.append(f"link set {ifname} up")
        if ep.gateway:
            lines.append(f"route replace default via {net.pool.gateway} dev {ifname}")
            if ep.address6 is not None and net.pool6 is not None:
                lines.append(f"route replace ::/0 via {net.pool6.gateway} dev {ifname}")
        try:
            await commands.ip(lines, netns)
        except NetworkError:
            await commands.ip([f"link del {host}"], force=True)
            raise

    async def detach(self, net: Network, ep: Endpoint) -> None:
        """Remove the pair (gone already if the container's namespace is)."""
        if ep.host_interface in interfaces():
            await commands.ip([f"link del {ep.host_interface}"], force=True)
