"""brandpy/network's parts on their own: IPAM, the resolver's messages and
views, and the firewall table (checked by nft inside a namespace the test
makes, never the machine's)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from brandpy.engine.networks import Networks, network_view
from brandpy.network import dns, firewall, ipam
from brandpy.network.controller import Networking
from brandpy.network.errors import NetworkError
from brandpy.network.model import Endpoint, Network, Published
from tests.api.conftest import Netns


def test_pools_and_addresses():
    pool = ipam.Pool.from_config({"Subnet": "192.168.77.0/24", "Gateway": "192.168.77.254",
                                  "IPRange": "192.168.77.128/25",
                                  "AuxiliaryAddresses": {"a": "192.168.77.129"}})
    assert pool.allocate(set()) == IPv4Address("192.168.77.130")     # the range, aux skipped
    assert pool.allocate({IPv4Address("192.168.77.130")}) == IPv4Address("192.168.77.131")
    assert pool.allocate(set(), "192.168.77.10") == IPv4Address("192.168.77.10")
    for want, status in (("192.168.77.254", 400), ("192.168.78.1", 400), ("nonsense", 400)):
        with pytest.raises(NetworkError) as err:
            pool.allocate(set(), want)
        assert err.value.status == status
    with pytest.raises(NetworkError) as taken:
        pool.allocate({IPv4Address("192.168.77.10")}, "192.168.77.10")
    assert taken.value.status == 409
    tiny = ipam.Pool.from_config({"Subnet": "10.0.0.0/30"})
    assert tiny.gateway == IPv4Address("10.0.0.1") and tiny.allocate(set()) == \
        IPv4Address("10.0.0.2")
    with pytest.raises(NetworkError):
        tiny.allocate({IPv4Address("10.0.0.2")})
    for bad in ({"Subnet": "10.0.0.0/31"}, {"Subnet": "0.0.0.0/0"},
                {"Subnet": "127.1.0.0/16"}, {"Subnet": "224.0.0.0/24"},
                {"Subnet": "10.0.0.0/24", "Gateway": "10.0.1.1"},
                {"Subnet": "10.0.0.0/24", "IPRange": "10.0.1.0/25"}):
        with pytest.raises(NetworkError):
            ipam.Pool.from_config(bad)


def test_ipv6_pools():
    """docker-py's: a /64 given by one of its addresses, a /96 range and a
    gateway in it."""
    pool = ipam.Pool.from_config({"Subnet": "2001:389::1/64", "IPRange": "2001:389::/96",
                                  "Gateway": "2001:389::ffff"})
    assert (pool.subnet, pool.gateway) == (IPv6Network("2001:389::/64"),
                                          IPv6Address("2001:389::ffff"))
    assert pool.allocate(set()) == IPv6Address("2001:389::1")
    assert pool.allocate({IPv6Address("2001:389::1")}) == IPv6Address("2001:389::2")
    assert pool.allocate(set(), "2001:389::f00d") == IPv6Address("2001:389::f00d")
    for want, status in (("2001:389::ffff", 400), ("2001:389::", 400), ("2001:38a::1", 400),
                         ("10.0.0.1", 400)):
        with pytest.raises(NetworkError) as err:
            pool.allocate(set(), want)
        assert err.value.status == status, want
    plain = ipam.Pool.from_config({"Subnet": "fd00:1::/64"})
    assert plain.gateway == IPv6Address("fd00:1::1")
    assert plain.allocate(set()) == IPv6Address("fd00:1::2")
    last = ipam.Pool.from_config({"Subnet": "fd00:2::/126"})     # no broadcast to keep free
    assert last.allocate({IPv6Address("fd00:2::2")}) == IPv6Address("fd00:2::3")
    for bad in ({"Subnet": "fd00::/127"}, {"Subnet": "fe80::/64"}, {"Subnet": "ff02::/64"},
                {"Subnet": "::1/128"}, {"Subnet": "::/0"},
                {"Subnet": "fd00::/64", "Gateway": "10.0.0.1"},
                {"Subnet": "fd00::/64", "Gateway": "fd01::1"},
                {"Subnet": "fd00::/64", "IPRange": "10.0.0.0/24"},
                {"Subnet": "fd00::/64", "IPRange": "fd01::/96"},
                {"Subnet": "10.0.0.0/24", "Gateway": "fd00::1"}):
        with pytest.raises(NetworkError):
            ipam.Pool.from_config(bad)


def test_default_pools_avoid_networks_and_routes():
    taken = [IPv4Network("172.17.0.0/16")]
    routes = [IPv4Network("172.18.5.0/24"), IPv4Network("172.19.0.0/16")]
    assert ipam.choose_subnet(taken, routes) == IPv4Network("172.20.0.0/16")
    everything = [IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/17")]
    assert ipam.choose_subnet(everything, []) == IPv4Network("192.168.128.0/20")
    with pytest.raises(NetworkError):
        ipam.choose_subnet([IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")], [])
    assert ipam.mac_of(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"
    with pytest.raises(NetworkError):
        ipam.check_mac("01:00:5e:00:00:01")      # multicast


def query(name: str, qtype: int = dns.A, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + \
        struct.pack(">HH", qtype, 1)


def answers(reply: bytes) -> tuple[int, list[bytes]]:
    """rcode and the rdata of each answer."""
    rcode = struct.unpack_from(">H", reply, 2)[0] & 0xF
    count = struct.unpack_from(">H", reply, 6)[0]
    pos = 12
    while reply[pos]:
        pos += reply[pos] + 1
    pos += 5
    out = []
    for _ in range(count):
        length = struct.unpack_from(">H", reply, pos + 10)[0]
        out.append(reply[pos + 12:pos + 12 + length])
        pos += 12 + length
    return rcode, out


def test_resolver_messages():
    view = dns.View({"web": [IPv4Address("172.18.0.2")], "www": [IPv4Address("172.18.0.2"),
                                                                 IPv4Address("172.18.0.3")]})
    q = query("WWW")
    parsed = dns.parse(q)
    assert parsed is not None and parsed.name == "www"
    rcode, data = answers(dns.answer(q, parsed, view))
    assert rcode == dns.NOERROR and data == [socket.inet_aton("172.18.0.2"),
                                             socket.inet_aton("172.18.0.3")]
    aaaa = query("web", dns.AAAA)
    assert answers(dns.answer(aaaa, dns.parse(aaaa), view)) == (dns.NOERROR, [])
    ptr = query("2.0.18.172.in-addr.arpa", dns.PTR)
    rcode, data = answers(dns.answer(ptr, dns.parse(ptr), view))
    assert data == [b"\x03web\x00"]
    other = query("example.org")
    assert dns.answer(other, dns.parse(other), view) is None       # to be forwarded
    # on an --ipv6 network: AAAA, and PTR in ip6.arpa; A still IPv4's only
    six = dns.View({"web": [IPv4Address("172.18.0.2"), IPv6Address("2001:db8::beef")]})
    rcode, data = answers(dns.answer(aaaa, dns.parse(aaaa), six))
    assert data == [IPv6Address("2001:db8::beef").packed]
    a = query("web")
    assert answers(dns.answer(a, dns.parse(a), six))[1] == [socket.inet_aton("172.18.0.2")]
    ptr6 = query(IPv6Address("2001:db8::beef").reverse_pointer, dns.PTR)
    assert answers(dns.answer(ptr6, dns.parse(ptr6), six))[1] == [b"\x03web\x00"]
    for bad in ("f.e.e.b.ip6.arpa", "x" + IPv6Address("2001:db8::beef").reverse_pointer[1:]):
        q6 = query(bad, dns.PTR)
        assert dns.answer(q6, dns.parse(q6), six) is None
    assert dns.parse(b"\x00" * 5) is None
    assert dns.parse(query("x")[:-3]) is None


def test_the_resolver_view_is_the_asking_containers():
    net = Networking()
    pool = ipam.Pool(IPv4Network("172.18.0.0/16"), IPv4Address("172.18.0.1"))
    net.networks = {"a": Network("a", "front", "bridge", pool),
                    "b": Network("b", "back", "bridge", ipam.Pool(
                        IPv4Network("172.19.0.0/16"), IPv4Address("172.19.0.1")), internal=True)}

    def ep(eid: str, cid: str, network: str, addr: str, names: tuple[str, ...],
           **kw: tuple) -> None:
        net.endpoints[eid] = Endpoint(eid, cid, network, IPv4Address(addr), "", names=names, **kw)

    ep("e1", "web", "a", "172.18.0.2", ("web", "www"))
    ep("e2", "cli", "a", "172.18.0.3", ("cli",), upstream=("127.0.0.1", "198.51.100.2"))
    ep("e3", "inner", "b", "172.19.0.2", ("inner",))
    ep("e4", "cli", "b", "172.19.0.3", ("cli",), links=(("db", "inner"),))
    seen = net.view("a", "172.18.0.3")
    assert seen is not None
    assert seen.names["www"] == [IPv4Address("172.18.0.2")]
    assert seen.names["inner"] == [IPv4Address("172.19.0.2")]      # cli is on back too
    assert seen.names["db"] == [IPv4Address("172.19.0.2")]         # its link's alias
    assert seen.upstream == ["198.51.100.2"]                       # a loopback --dns is its own
    inner = net.view("b", "172.19.0.2")
    assert inner is not None and "web" not in inner.names and "db" not in inner.names
    assert inner.upstream == []                                    # --internal only: no forwarding
    assert net.view("a", "172.18.0.99") is None                    # no container of the network
    assert net.view("b", "172.18.0.2") is None                     # web asking on back's gateway


def test_the_firewall_table_is_one_nft_can_load():
    if os.geteuid() != 0:
        pytest.skip("nft needs CAP_NET_ADMIN")
    pool = ipam.Pool(IPv4Network("172.18.0.0/16"), IPv4Address("172.18.0.1"))
    nets = [(Network("a", "front", "bridge", pool), "bp-a"),
            (Network("b", "sealed", "bridge", ipam.Pool(IPv4Network("172.19.0.0/16"),
                                                         IPv4Address("172.19.0.1")),
                     internal=True), "bp-b")]
    published = [Published("tcp", "127.0.0.1", 18080, IPv4Address("172.18.0.2"), 80),
                 Published("udp", "0.0.0.0", 5353, IPv4Address("172.18.0.2"), 53)]
    table = firewall.render(nets, published, [("bp-a", "172.18.0.1")])
    assert "ip daddr 127.0.0.1 tcp dport 18080 dnat to 172.18.0.2:80" in table
    assert "udp dport 5353 dnat to 172.18.0.2:53" in table
    assert 'ip saddr 172.18.0.0/16 oifname != "bp-a" masquerade' in table
    assert "ip saddr 172.19.0.0/16 oifname" not in table           # internal: no way out
    assert 'iifname "bp-a" oifname { "bp-b" } drop' in table
    ns = Netns()
    try:
        for _ in range(2):       # made, then made again over itself
            r = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], input=table,
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        listed = ns.run(["nft", "list", "table", "ip", firewall.TABLE], check=True).stdout
        assert listed.count("dnat to") == 2
        # IPv6 between networks is dropped as IPv4 is, and an --internal one's too
        listed6 = ns.run(["nft", "list", "table", "ip6", firewall.TABLE], check=True).stdout
        assert 'iifname "bp-a" oifname "bp-b" drop' in listed6, listed6
        assert 'iifname "bp-b" oifname != "bp-b" drop' in listed6, listed6
        assert "nat" not in listed6
    finally:
        ns.remove()


def test_a_bad_question_does_not_stop_the_resolver():
    """Whatever one datagram does to the resolver, the next is answered."""
    calls = []

    def view(source: str) -> dns.View:
        calls.append(source)
        if len(calls) == 1:
            raise ValueError("a view that fails once")
        return dns.View({"web": [IPv4Address("172.18.0.2")]})

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: dns.Resolver(view),
                                                           local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        replies = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            for payload in (b"\xff" * 40, query("web"), query("web")):
                await loop.sock_sendto(s, payload, ("127.0.0.1", port))
                try:
                    replies.append(await asyncio.wait_for(loop.sock_recv(s, 512), 0.5))
                except TimeoutError:
                    replies.append(b"")
        transport.close()
        return replies

    garbage, failed, answered = asyncio.run(main())
    assert garbage == b"" and failed == b""          # dropped, not answered
    assert answers(answered) == (dns.NOERROR, [socket.inet_aton("172.18.0.2")])


def test_a_network_recorded_unprivileged_gets_an_ipv4_pool_beside_its_ipv6_one(tmp_path):
    """A root daemon taking over a network an unprivileged one recorded
    with an IPv6 subnet only: a default IPv4 pool is added, once."""
    nets = Networks(tmp_path / "networks.json")
    rec, _ = nets.create({"Name": "six", "EnableIPv6": True,
                          "IPAM": {"Config": [{"Subnet": "fd00:5::/64"}]}})
    nets.ensure_pool(rec)
    nets.ensure_pool(rec)
    v4, v6 = rec["IPAM"]["Config"]
    assert v6 == {"Subnet": "fd00:5::/64"} and IPv4Network(v4["Subnet"])
    view = network_view(rec)
    assert view.pool6 is not None and view.pool6.gateway == IPv6Address("fd00:5::1")
    assert Networks(tmp_path / "networks.json").get("six")["IPAM"]["Config"] == [v4, v6]
