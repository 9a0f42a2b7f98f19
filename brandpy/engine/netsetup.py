"""Containers' networks as the engine sets them up, in one of two modes
(`docker info` shows which under Security Options):

- bridge (the daemon runs as root): dockerd's bridge driver. Each
  container's shim makes a network namespace of its own before it starts
  anything (or joins another container's, or stays in the daemon's for
  `--network host`), and the daemon plumbs it through brandpy/network:
  addresses from each network's IPAM (recorded in the container's
  EndpointSettings while it runs), a veth pair per network, published
  ports as DNAT, names from the embedded resolver on each network's
  gateway. Ports are real: the supervisor translates none.
- pasta (an unprivileged daemon where user namespaces and pasta are
  available, brandpy/network/pasta.py): a container on the default network
  (or `none`) gets a user and network namespace of its own, made by its
  spawner (container:NAME joins NAME's); pasta connects it (its own
  loopback, eth0 with the host's address and route, DNS forwarded,
  published ports forwarded from the host). Ports are real: the
  supervisor translates none. Containers on user networks or `host` share
  the daemon's stack as in translate mode.
- translate (an unprivileged daemon otherwise): containers share the
  daemon's network stack. Published ports are translated by the
  supervisor, user networks' peers are named in /etc/hosts at 127.0.0.1,
  and connect() to the host's loopback reaches only the container's own
  ports.
"""

from __future__ import annotations

import os
import socket
import sys
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING, Any

from brandpy.images.fsutil import atomic_write
from brandpy.network import commands, pasta
from brandpy.network import netns as netnslib
from brandpy.network.controller import Networking
from brandpy.network.errors import NetworkError
from brandpy.network.ipam import IPAddress, check_mac, mac_of
from brandpy.network.model import Endpoint, Published
from brandpy.runtime.loopback import nameservers
from brandpy.runtime.sandbox import PortMapping, SandboxConfig, etc_files

from . import links
from .errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound
from .networks import BUILTIN, endpoint, link_name, network_view
from .records import Record

if TYPE_CHECKING:
    from .engine import Engine

BRIDGE, PASTA, TRANSLATE = "bridge", "pasta", "translate"
CONTAINER = "container:"
ADDRESS_FIELDS = {"Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "DNSNames": None,
                  "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0}


def own_addresses(ep: dict) -> dict[str, str]:
    """The sandbox's fields naming the container's addresses on endpoint ep
    in its /etc/hosts."""
    return {"address": ep.get("IPAddress") or "", "address6": ep.get("GlobalIPv6Address") or ""}


def choose_mode() -> str:
    if os.geteuid() == 0:
        return BRIDGE
    why = pasta.unavailable()
    if why:
        print(f"brandpy: containers share the host's network (translate mode): {why}",
              file=sys.stderr)
    return TRANSLATE if why else PASTA


def _engine_error(exc: NetworkError) -> EngineError:
    return EngineError(str(exc), exc.status)


class NetSetup:
    def __init__(self, engine: Engine, mode: str) -> None:
        self.engine = engine
        self.mode = mode
        self.net = Networking() if mode == BRIDGE else None

    # -- the daemon's start and end ------------------------------------------------

    async def startup(self) -> None:
        """Make (or take over) every bridge network and its resolver, take
        back the endpoints of running containers, drop those of containers
        that stopped meanwhile, and make the firewall table again."""
        if self.net is None:
            return
        missing = commands.missing_tools()
        if missing:
            raise EngineError(f"networking as root needs {', '.join(missing)}: apt-get install "
                              f"{' '.join(missing)}")
        nets = self.engine.networks
        for rec in list(nets.nets.values()):
            if rec["Driver"] != "bridge":
                continue
            try:
                nets.ensure_pool(rec)
                await self.net.create_network(network_view(rec), existing=True)
            except NetworkError as exc:   # its containers will say so when they start
                print(f"brandpy: network {rec['Name']}: {exc}", file=sys.stderr)
        try:
            for c in self.engine.containers:
                if c.running:
                    for ep in self._endpoints(c):
                        self.net.restore(ep)
                    await self.net.publish(c.id, self._published(c))
                else:
                    await self.release(c, events=False)
            await self.net.sync()
        except NetworkError as exc:
            raise _engine_error(exc) from None

    async def shutdown(self) -> None:
        if self.net is not None:
            await self.net.close()

    def security_option(self) -> str:
        return f"name=brandpy-network,mode={self.mode}"

    # -- networks -----------------------------------------------------------------

    async def create_network(self, body: dict) -> tuple[dict, str]:
        """The record (and its warning), made real in bridge mode."""
        nets = self.engine.networks
        rec, warning = nets.create(body, real=self.net is not None)
        if self.net is not None and rec["Driver"] == "bridge":
            try:
                await self.net.create_network(network_view(rec))
            except NetworkError as exc:
                nets.remove(rec["Id"], [])
                raise _engine_error(exc) from None
        return rec, warning

    async def remove_network(self, rec: dict, members: list[str]) -> None:
        self.engine.networks.remove(rec["Id"], members)
        if self.net is not None:
            try:
                await self.net.remove_network(rec["Id"])
            except NetworkError as exc:
                raise _engine_error(exc) from None

    # -- create: what the mode allows ----------------------------------------------

    def check_create(self, host_config: dict, config: dict) -> list[str]:
        """400s for network settings the mode cannot honour; warnings for
        those it ignores."""
        mode = host_config.get("NetworkMode") or "default"
        ports = host_config.get("PortBindings") or host_config.get("PublishAllPorts")
        if mode.startswith(CONTAINER):
            if self.mode == TRANSLATE:
                raise InvalidParameter("--network container:NAME needs network namespaces: "
                                       "run the daemon as root, or unprivileged where user "
                                       "namespaces and pasta are (README, Networking)")
            try:
                self.engine.containers.get(mode[len(CONTAINER):])
            except NotFound as exc:    # a 404 at create means "no such image" to the CLI
                raise InvalidParameter(str(exc)) from None
            if ports:
                raise InvalidParameter("conflicting options: port publishing and the "
                                       "container type network mode")
            if config.get("Hostname"):
                raise InvalidParameter("conflicting options: hostname and the network mode")
        if config.get("MacAddress"):
            try:
                check_mac(config["MacAddress"])
            except NetworkError as exc:
                raise _engine_error(exc) from None
        if self.mode == TRANSLATE and mode == "none":
            return ["NetworkMode: --network none is not enforced: the container shares the "
                    "host's network stack (an unprivileged daemon makes no network "
                    "namespaces)"]
        if self.net is not None and mode in ("host", "none") and ports:
            return ["Published ports are discarded when using host network mode"
                    if mode == "host" else "Published ports are discarded when using the "
                    "none network mode"]
        return []

    # -- start: the shim's spec, then the plumbing -----------------------------------

    def _mode(self, rec: Record) -> str:
        return str(rec.host_config.get("NetworkMode") or "default")

    def own_namespace(self, rec: Record) -> bool:
        """Does the container have a network namespace (its own or shared)?"""
        return self.net is not None and self._mode(rec) != "host"

    def publishes(self, rec: Record) -> bool:
        """Are the container's ports published? Not on the host's, none's or
        another container's network, where dockerd discards them."""
        mode = self._mode(rec)
        if self.mode == PASTA:
            return mode != "none" and not mode.startswith(CONTAINER)
        return self.net is None or not (mode in ("host", "none") or mode.startswith(CONTAINER))

    def pasta_network(self, rec: Record) -> bool:
        """Has the container a network of its own connected by pasta?"""
        return self.mode == PASTA and self._mode(rec) in ("default", "bridge", "none")

    def spec(self, rec: Record, ports: list[dict]) -> dict[str, Any]:
        """The network part of the shim's spec: "netns" (what the shim makes
        or joins) and the sandbox's fields. In bridge mode the container's
        addresses are allocated here (recorded in rec.networks)."""
        hc = rec.host_config
        sandbox: dict[str, Any] = {
            "extra_hosts": self._extra_hosts(rec), "dns": list(hc.get("Dns") or []),
            "dns_search": list(hc.get("DnsSearch") or []),
            "dns_options": list(hc.get("DnsOptions") or [])}
        mode = self._mode(rec)
        if self.pasta_network(rec) or self.mode == PASTA and mode.startswith(CONTAINER):
            sandbox.update(ports=[], own_network=self._pasta_spec(rec, ports, sandbox))
            return {"netns": "", "sandbox": sandbox}
        if self.net is None:
            sandbox.update(ports=ports, loopback_closed=mode != "host")
            return {"netns": "", "sandbox": sandbox}
        sandbox["ports"] = []
        if mode == "host":
            return {"netns": "", "sandbox": sandbox}
        if mode.startswith(CONTAINER):
            other = self._joined(rec)
            sandbox.update(self.spec_of_joined(other))
            return {"netns": netnslib.of_pid(int(other.state["ShimPid"])), "sandbox": sandbox}
        if mode != "none":
            self._check_ports(rec)
            try:
                self._allocate(rec)
            except NetworkError as exc:
                self._clear(rec)
                raise _engine_error(exc) from None
            primary = self._primary(rec)
            if primary:
                # the network's resolver; it forwards to --dns (NetSetup._endpoint)
                sandbox.update(own_addresses(primary), dns=[primary["Gateway"]])
        return {"netns": netnslib.NEW, "sandbox": sandbox}

    def _pasta_spec(self, rec: Record, ports: list[dict], sandbox: dict[str, Any]) -> list[str]:
        """Pasta mode: the own_network command ([] for none's loopback
        only, or container:NAME's namespaces, set in sandbox with its
        hostname), and pasta's DNS forwarder as the nameserver."""
        mode = self._mode(rec)
        other = self._joined(rec) if mode.startswith(CONTAINER) else None
        if other is not None:
            if not self.pasta_network(other) or not other.state.get("Pid"):
                raise Conflict(f"cannot join the network of {other.name}: unprivileged, only "
                               "a container on the default or none network has one of its own")
            sandbox.update(self.spec_of_joined(other), network_of=int(other.state["Pid"]))
        connected = self._mode(other or rec) != "none"
        forward = connected and pasta.forwarded(nameservers())   # at each start, as dockerd
        if forward and not sandbox["dns"]:
            sandbox["dns"] = [pasta.DNS_ADDRESS]
        if other is not None or not connected:
            return []
        return pasta.command([PortMapping(**p) for p in ports], forward,
                             str(rec.dir / "run" / "pasta.log"))

    def _check_ports(self, rec: Record) -> None:
        """A host port is one container's (DNAT has no owner to refuse a
        second), and not a host service's (it would be shadowed)."""
        taken = {(port.split("/")[1], b["HostPort"], b["HostIp"]): other.name
                 for other in self.engine.containers if other is not rec and other.running
                 for port, bindings in other.published.items() for b in bindings}
        for port, bindings in rec.published.items():
            proto = port.split("/")[1]
            for b in bindings:
                for (p, host_port, ip), name in taken.items():
                    if (p, host_port) == (proto, b["HostPort"]) and (
                            "0.0.0.0" in (ip, b["HostIp"]) or ip == b["HostIp"]):
                        raise Conflict(f"Bind for {b['HostIp']}:{b['HostPort']} failed: "
                                       f"port is already allocated (by {name})")
                kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
                with socket.socket(socket.AF_INET, kind) as probe:
                    try:
                        probe.bind((b["HostIp"], int(b["HostPort"])))
                    except OSError as exc:
                        raise Conflict(f"Bind for {b['HostIp']}:{b['HostPort']} failed: "
                                       f"{exc.strerror}: a host service has it") from None

    def spec_of_joined(self, other: Record) -> dict[str, Any]:
        """A container on another's network (container:NAME) has its
        addresses, resolver and /etc/hosts names."""
        primary = self._primary(other)
        out: dict[str, Any] = {"hostname": other.config.get("Hostname") or ""}
        if primary and primary.get("IPAddress"):
            out.update(own_addresses(primary), dns=[primary["Gateway"]])
        return out

    def _joined(self, rec: Record) -> Record:
        ref = self._mode(rec)[len(CONTAINER):]
        try:
            other = self.engine.containers.get(ref)
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None
        if not other.running or not other.state.get("ShimPid"):
            raise Conflict(f"cannot join network namespace of a non running container: "
                           f"{other.name}")
        return other

    def _primary_name(self, rec: Record) -> str:
        """The network NetworkMode names (by name, ID or ID prefix)."""
        mode = self._mode(rec)
        if mode == "default":
            return "bridge"
        if mode in rec.networks:
            return mode
        try:
            return str(self.engine.networks.get(mode)["Name"])
        except EngineError:
            return mode

    def _primary(self, rec: Record) -> dict | None:
        """The endpoint of the container's NetworkMode network (its
        published ports' target), else its first."""
        ep = rec.networks.get(self._primary_name(rec))
        if ep is None and rec.networks:
            ep = rec.networks[sorted(rec.networks)[0]]
        return ep if ep is not None and ep.get("NetworkID") else None

    def _used(self, net_id: str, but: Record, field: str = "IPAddress") -> set[IPAddress]:
        """The addresses (field: IPAddress or GlobalIPv6Address) other
        containers have on the network."""
        return {ip_address(ep[field]) for c in self.engine.containers if c is not but
                for ep in c.networks.values() if ep.get("NetworkID") == net_id and ep.get(field)}

    def _allocate(self, rec: Record) -> None:
        for name in self._order(rec):
            self._allocate_one(rec, name)
        rec.save()

    def _allocate_one(self, rec: Record, name: str) -> None:
        ep = rec.networks[name]
        net = self.engine.networks.get(ep["NetworkID"])
        view = network_view(net)
        want = (ep.get("IPAMConfig") or {}).get("IPv4Address") or ""
        addr = view.pool.allocate(self._used(net["Id"], rec), want)
        mac = ep.get("MacAddress") or (rec.config.get("MacAddress") if name == self._order(rec)[0]
                                       else "")
        mac = check_mac(mac) if mac else mac_of(addr)
        names = None
        if view.names:
            names = list(dict.fromkeys([rec.name, *(ep.get("Aliases") or []), rec.short,
                                        rec.config.get("Hostname") or rec.short]))
        ep.update(IPAddress=str(addr), IPPrefixLen=view.pool.subnet.prefixlen,
                  Gateway=str(view.pool.gateway), MacAddress=mac, DNSNames=names)
        if view.pool6 is not None:     # without --ipv6 an --ip6 is kept but unused, as dockerd's
            want6 = (ep.get("IPAMConfig") or {}).get("IPv6Address") or ""
            addr6 = view.pool6.allocate(self._used(net["Id"], rec, "GlobalIPv6Address"), want6)
            ep.update(GlobalIPv6Address=str(addr6), GlobalIPv6PrefixLen=view.pool6.subnet.prefixlen,
                      IPv6Gateway=str(view.pool6.gateway))

    def _order(self, rec: Record) -> list[str]:
        """The container's networks, the one of its NetworkMode first (it
        becomes eth0)."""
        first = self._primary_name(rec)
        return sorted(rec.networks, key=lambda n: (n != first, n))

    def _gateway_network(self, rec: Record) -> str | None:
        """The network whose gateway is the default route: the first in
        order that is not --internal."""
        for name in self._order(rec):
            net = self.engine.networks.get(rec.networks[name]["NetworkID"])
            if not net.get("Internal"):
                return name
        return None

    def _endpoint(self, rec: Record, name: str, gateway: bool = False) -> Endpoint:
        ep = rec.networks[name]
        linked = [(alias, target) for target, alias in map(link_name, ep.get("Links") or [])]
        return Endpoint(ep["EndpointID"], rec.id, ep["NetworkID"], IPv4Address(ep["IPAddress"]),
                        ep["MacAddress"], gateway=gateway, names=tuple(ep.get("DNSNames") or ()),
                        upstream=tuple(rec.host_config.get("Dns") or ()), links=tuple(linked),
                        link_local=tuple((ep.get("IPAMConfig") or {}).get("LinkLocalIPs") or ()),
                        address6=IPv6Address(ep["GlobalIPv6Address"])
                        if ep.get("GlobalIPv6Address") else None)

    def _endpoints(self, rec: Record) -> list[Endpoint]:
        return [self._endpoint(rec, name) for name in self._order(rec)
                if rec.networks[name].get("IPAddress")]

    def _published(self, rec: Record) -> list[Published]:
        primary = self._primary(rec)
        if not primary or not primary.get("IPAddress"):
            return []
        return [Published(port.split("/")[1], b["HostIp"], int(b["HostPort"]),
                          IPv4Address(primary["IPAddress"]), int(port.split("/")[0]))
                for port, bindings in rec.published.items() for b in bindings]

    async def plumb(self, rec: Record, shim_pid: int) -> None:
        """Give the new namespace (of the shim at shim_pid) its interfaces
        and publish the ports; undone on failure."""
        if self.net is None or not self.own_namespace(rec) or \
                self._mode(rec).startswith(CONTAINER):
            return
        gateway = self._gateway_network(rec)
        try:
            for name in self._order(rec):
                if rec.networks[name].get("IPAddress"):
                    await self.net.attach(self._endpoint(rec, name, name == gateway), shim_pid)
                    self._event(rec, name, "connect")
            await self.net.publish(rec.id, self._published(rec))
        except NetworkError as exc:
            await self.release(rec)
            raise _engine_error(exc) from None

    async def release(self, rec: Record, events: bool = True) -> None:
        """The container stopped: its ports, pairs and addresses go."""
        if self.net is None or not any(ep.get("IPAddress") for ep in rec.networks.values()):
            return
        try:
            await self.net.publish(rec.id, [])
            for name in self._order(rec):
                ep = rec.networks[name]
                if not ep.get("IPAddress"):
                    continue
                if ep["EndpointID"] in self.net.endpoints:
                    await self.net.detach(ep["EndpointID"])
                else:
                    await self.net.forget(self._endpoint(rec, name))
                if events:
                    self._event(rec, name, "disconnect")
        except NetworkError as exc:
            print(f"brandpy: releasing the network of {rec.name}: {exc}", file=sys.stderr)
        self._clear(rec)

    def _clear(self, rec: Record) -> None:
        for ep in rec.networks.values():
            if ep.get("IPAddress") and ep.get("MacAddress") == mac_of(IPv4Address(ep["IPAddress"])):
                ep["MacAddress"] = ""       # derived from the address, not asked for
            ep.update(ADDRESS_FIELDS)
        if rec.dir.exists():
            rec.save()

    def _event(self, rec: Record, name: str, action: str) -> None:
        net = self.engine.networks.get(rec.networks[name]["NetworkID"])
        self.engine.events.emit("network", action, net["Id"], {
            "container": rec.id, "name": net["Name"], "type": net["Driver"]})

    # -- connect and disconnect ---------------------------------------------------------

    async def connect(self, rec: Record, net: dict, cfg: dict) -> None:
        mode = self._mode(rec)
        if net["Name"] in ("host", "none") or mode in ("host", "none"):
            raise Forbidden("container cannot be disconnected from host network or connected "
                            "to host network" if "host" in (mode, net["Name"]) else
                            "container cannot be connected to the none network")
        if mode.startswith(CONTAINER):
            raise Forbidden("container sharing network namespace with another container or "
                            "host cannot be connected to any other network")
        if self.pasta_network(rec):
            raise EngineError(f"cannot connect {rec.name} to {net['Name']}: unprivileged, a "
                              "container on the default network has a network namespace of "
                              "its own (pasta), which user networks do not reach; run it on "
                              f"--network {net['Name']} instead", 501)
        if net["Name"] in rec.networks:
            raise Forbidden(f"endpoint with name {rec.name} already exists in network "
                            f"{net['Name']}")
        rec.networks[net["Name"]] = endpoint(net, cfg)
        if self.net is not None and rec.running and rec.state.get("ShimPid"):
            try:
                self._allocate_one(rec, net["Name"])
                await self.net.attach(self._endpoint(rec, net["Name"]),
                                      int(rec.state["ShimPid"]))
            except NetworkError as exc:
                del rec.networks[net["Name"]]
                raise _engine_error(exc) from None
        rec.save()
        self._event(rec, net["Name"], "connect")
        self.refresh_hosts()

    async def disconnect(self, rec: Record, net: dict) -> None:
        if net["Name"] not in rec.networks:
            raise Forbidden(f"container {rec.id} is not connected to network {net['Name']}")
        ep = rec.networks[net["Name"]]
        self._event(rec, net["Name"], "disconnect")
        del rec.networks[net["Name"]]
        if self.net is not None and ep.get("IPAddress"):
            try:
                await self.net.detach(ep["EndpointID"])
                # its published ports follow it to the network now first
                await self.net.publish(rec.id, self._published(rec))
            except NetworkError as exc:
                raise _engine_error(exc) from None
        rec.save()
        self.refresh_hosts()

    def renamed(self, rec: Record, old: str) -> None:
        """The container's name is one of its DNS names."""
        for ep in rec.networks.values():
            names = ep.get("DNSNames")
            if names:
                ep["DNSNames"] = [rec.name if n == old else n for n in names]
        if self.net is not None and rec.running:
            for ep in self._endpoints(rec):
                self.net.restore(ep)
        rec.save()
        self.refresh_hosts()

    # -- /etc/hosts: --add-host, links, and unprivileged the peers -------------------

    def locate(self, target: Record, port: str) -> tuple[str, str]:
        """Where rec's link to target reaches it, for port ("80/tcp", or
        "" for the address alone): in bridge mode target's own address
        (on the default bridge, else its first) and the port as it is;
        unprivileged, loopback and the published host port (links.py)."""
        if self.net is None:
            return links.on_loopback(target, port)
        ep = target.networks.get("bridge") or self._primary(target) or {}
        return ep.get("IPAddress") or "", port.split("/")[0]

    def _extra_hosts(self, rec: Record) -> list[str]:
        out = list(rec.host_config.get("ExtraHosts") or [])
        out += links.hosts(self.engine.containers, rec, self.locate)
        return out + (self.peers(rec) if self.net is None else [])

    def _peer_records(self, rec: Record) -> list[tuple[Record, set[str]]]:
        """The other containers on rec's user networks, with the networks
        shared."""
        mine = {n for n in rec.networks if n not in BUILTIN}
        return [(other, mine & set(other.networks)) for other in self.engine.containers
                if other is not rec and mine & set(other.networks)]

    def peers(self, rec: Record) -> list[str]:
        """Unprivileged: /etc/hosts entries naming the other containers of
        rec's user networks (and by the aliases of rec's links there): they
        share the host's network stack, so a peer is reached on loopback
        (at its port when unpublished, see README)."""
        out = []
        for other, shared in self._peer_records(rec):
            names = {other.name, other.short}
            for net in shared:
                names |= set(other.networks[net].get("Aliases") or [])
                names |= {alias for link in rec.networks[net].get("Links") or []
                          for target, alias in [link_name(link)]
                          if target in (other.name, other.short, other.id)}
            out += [f"{name}:127.0.0.1" for name in sorted(names)]
        return out

    def refresh_hosts(self) -> None:
        """Rewrite the /etc/hosts of running containers so they name their
        links' (and unprivileged, their peers') current addresses, and
        unprivileged their `peers` file (the supervisors of those peers,
        whose ports the closed loopback lets them reach); the runtime
        reads both from the container's state directory at each use."""
        for rec in self.engine.containers:
            run = rec.dir / "run"
            if not rec.running or not (run / "hosts").exists():
                continue
            if self.net is None:
                pids = [str(o.state["ShimPid"]) for o, _ in self._peer_records(rec)
                        if o.running and o.state.get("ShimPid")]
                atomic_write(run / "peers", "".join(p + "\n" for p in pids).encode())
            primary = self._primary(rec) or {}
            config = SandboxConfig(rootfs=str(rec.rootfs), argv=[],
                                   extra_hosts=self._extra_hosts(rec),
                                   address=primary.get("IPAddress") or "",
                                   address6=primary.get("GlobalIPv6Address") or "")
            atomic_write(run / "hosts", etc_files(config, rec.config.get("Hostname") or "")[b"hosts"])

    # -- views ------------------------------------------------------------------------

    def namespace_pid(self, rec: Record) -> int:
        """A process in the container's own network namespace (docker
        stats reads its counters there), or 0 when it shares the host's."""
        if self.own_namespace(rec):
            return int(rec.state.get("ShimPid") or 0)
        if self.mode == PASTA and (self.pasta_network(rec)
                                   or self._mode(rec).startswith(CONTAINER)):
            return int(rec.state.get("Pid") or 0)    # the spawner made it (pasta.py)
        return 0

    def sandbox_key(self, rec: Record) -> str:
        pid = self.namespace_pid(rec)
        return netnslib.of_pid(pid) if pid and rec.running else ""
