"""Every container its own address (issue 19), as root: the daemon runs in
a network namespace of the test's own (conftest.Netns), which is "the
host" here; a second namespace stands in for the outside world. Driven by
the docker CLI and the SDK."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time

import docker
import pytest

from tests.api.conftest import Daemon, Netns, image_tar, in_netns, unprivileged_daemon, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bridges and namespaces need root")

OUT_NET = "198.51.100"        # TEST-NET-2, only between the daemon's namespace and `outside`


def serve(daemon: Daemon, name: str, text: str, *args: str, image: str = "busybox") -> str:
    """A container answering HTTP on port 80 with `text`; its ID."""
    cid = daemon.ok("run", "-d", "--name", name, *args, image, "sh", "-c",
                    f"echo {text} > /tmp/index.html; exec httpd -f -p 80 -h /tmp").strip()
    return cid


def address(daemon: Daemon, name: str, net: str) -> str:
    return daemon.ok("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{net}\")"
                     ".IPAddress}}", name).strip()


def fetch_from(daemon: Daemon, url: str, *args: str) -> tuple[int, str]:
    """GET url from a new container (its exit status and body); retried while
    the server starts."""
    r = daemon.docker("run", "--rm", *args, "busybox", "sh", "-c",
                      f"for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -q -O - {url} && exit 0; "
                      "sleep 0.3; done; exit 1")
    return r.status, r.out


def unreachable(daemon: Daemon, url: str, *args: str) -> bool:
    """One GET from a new container fails (no retries: a dropped packet
    takes the whole timeout)."""
    r = daemon.docker("run", "--rm", *args, "busybox", "sh", "-c",
                      f"timeout 3 wget -q -O - {url}; echo rc=$?")   # not PID 1: SIGTERM kills it
    return "rc=0" not in r.out


def links(ns: Netns) -> list[str]:
    out = ns.run(["ip", "-o", "link", "show"], check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def test_names_and_aliases_within_a_network_not_across(daemon):
    daemon.ok("network", "create", "front")
    daemon.ok("network", "create", "back")
    try:
        serve(daemon, "web", "hello-web", "--network", "front", "--network-alias", "www")
        assert fetch_from(daemon, "http://web/", "--network", "front") == (0, "hello-web\n")
        assert fetch_from(daemon, "http://www/", "--network", "front") == (0, "hello-web\n")
        ip = address(daemon, "web", "front")
        # another network: neither the name nor the address answers
        r = daemon.docker("run", "--rm", "--network", "back", "busybox", "sh", "-c",
                          f"nslookup web; timeout 3 wget -q -O - http://{ip}/; echo rc=$?")
        assert "hello-web" not in r.out and ip not in r.out and "rc=143" in r.out, r
        assert unreachable(daemon, f"http://{ip}/")     # nor from the default bridge
    finally:
        daemon.docker("rm", "-f", "web")
        daemon.ok("network", "rm", "front", "back")


def test_addresses_and_published_ports_from_the_host(daemon):
    """Two containers both on port 80 with no translation; their inspect
    addresses answer from the host, as do -p 127.0.0.1:18080:80 and
    -p 18081:80, also from another container through the host's address."""
    serve(daemon, "one", "hello-one", "-p", "127.0.0.1:18080:80", "-p", "18081:80")
    serve(daemon, "two", "hello-two")
    try:
        ns = daemon.netns
        one, two = address(daemon, "one", "bridge"), address(daemon, "two", "bridge")
        assert one != two and one.startswith("172.17.")
        assert wait_for(lambda: ns.fetch(f"http://{one}/")) == "hello-one\n"
        assert wait_for(lambda: ns.fetch(f"http://{two}/")) == "hello-two\n"
        assert ns.fetch("http://127.0.0.1:18080/") == "hello-one\n"
        assert ns.fetch("http://127.0.0.1:18081/") == "hello-one\n"
        gateway = daemon.ok("inspect", "-f", "{{.NetworkSettings.Gateway}}", "one").strip()
        assert ns.fetch(f"http://{gateway}:18081/") == "hello-one\n"
        assert ns.fetch(f"http://{gateway}:18080/") is None      # published on 127.0.0.1 only
        assert fetch_from(daemon, f"http://{gateway}:18081/") == (0, "hello-one\n")
        assert sorted(daemon.ok("port", "one", "80").split()) == ["0.0.0.0:18081",
                                                                  "127.0.0.1:18080"]
        # the container sees its real port, not a translated one
        listening = daemon.ok("exec", "one", "netstat", "-ltn")
        assert re.search(r"[:.]80\s.*LISTEN", listening), listening
        # a host port is one container's
        taken = daemon.docker("run", "-d", "--name", "three", "-p", "18081:80", "busybox",
                              "true")
        assert taken.status != 0 and "port is already allocated" in taken.err, taken
    finally:
        daemon.docker("rm", "-f", "one", "two", "three")
    rules = daemon.netns.run(["nft", "list", "chain", "ip", "brandpy", "publish"]).stdout
    assert "dnat" not in rules, rules


def test_network_modes(daemon):
    serve(daemon, "web", "hello-modes")
    try:
        none = daemon.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
        assert [line.split(":")[1].strip() for line in none.splitlines()] == ["lo"]
        host = daemon.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
        assert sorted(line.split(":")[1].strip().split("@")[0] for line in host.splitlines()) \
            == sorted(links(daemon.netns))
        ip = address(daemon, "web", "bridge")
        shared = daemon.ok("run", "--rm", "--network", "container:web", "busybox", "sh", "-c",
                           "ip -o -4 addr show eth0; wget -q -O - http://127.0.0.1/; hostname")
        web_host = daemon.ok("inspect", "-f", "{{.Config.Hostname}}", "web").strip()
        assert f"inet {ip}/16" in shared and "hello-modes" in shared, shared
        assert shared.split()[-1] == web_host
        conflict = daemon.docker("run", "--rm", "--network", "container:web", "-p", "80",
                                 "busybox", "true")
        assert conflict.status != 0 and "conflicting options" in conflict.err
    finally:
        daemon.docker("rm", "-f", "web")


def test_connect_and_disconnect_a_running_container(daemon):
    daemon.ok("network", "create", "later")
    since = str(int(time.time()) - 1)
    try:
        roamer = daemon.ok("run", "-d", "--name", "roamer", "busybox", "sleep", "300").strip()
        serve(daemon, "peer", "hello-peer", "--network", "later")
        assert "eth1" not in daemon.ok("exec", "roamer", "ip", "-o", "link")
        daemon.ok("network", "connect", "--alias", "rover", "later", "roamer")
        addrs = daemon.ok("exec", "roamer", "ip", "-o", "-4", "addr")
        ip = address(daemon, "roamer", "later")
        assert f"eth1    inet {ip}/" in addrs, addrs
        got = daemon.ok("exec", "roamer", "sh", "-c", "for i in 1 2 3 4 5; do "
                        "wget -q -O - http://peer/ && break; sleep 0.3; done")
        assert got == "hello-peer\n"
        looked = daemon.ok("exec", "peer", "nslookup", "rover")
        assert ip in looked.split("Name:")[-1], looked
        daemon.ok("network", "disconnect", "later", "roamer")
        assert "eth1" not in daemon.ok("exec", "roamer", "ip", "-o", "link")
        assert daemon.docker("exec", "peer", "nslookup", "rover").status != 0
        assert address(daemon, "roamer", "bridge").startswith("172.17.")
    finally:
        daemon.docker("rm", "-f", "roamer", "peer")
        daemon.ok("network", "rm", "later")
    events = daemon.ok("events", "--since", since, "--until", str(int(time.time()) + 1),
                       "--filter", "type=network", "--format",
                       "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}")
    mine = [line.split()[:2] for line in events.splitlines() if line.endswith(roamer)]
    # started on bridge; connected to later; disconnected; removed (bridge)
    assert mine == [["connect", "bridge"], ["connect", "later"], ["disconnect", "later"],
                    ["disconnect", "bridge"]], events


def test_ipam_mac_inspect_and_files_with_the_sdk(daemon):
    client = daemon.client()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet="192.168.77.0/24", gateway="192.168.77.254", iprange="192.168.77.128/25")])
    net = client.networks.create("planned", driver="bridge", ipam=ipam)
    try:
        shown = client.api.inspect_network(net.id)["IPAM"]["Config"]
        assert shown == [{"Subnet": "192.168.77.0/24", "Gateway": "192.168.77.254",
                          "IPRange": "192.168.77.128/25"}]
        with pytest.raises(docker.errors.APIError) as overlap:
            client.networks.create("overlap", ipam=docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet="192.168.77.0/25")]))
        assert overlap.value.status_code == 403
        fixed = daemon.ok("run", "-d", "--name", "fixed", "--network", "planned",
                          "--ip", "192.168.77.10", "--mac-address", "02:42:c0:a8:4d:0a",
                          "--dns-search", "example.test", "--add-host", "db.local:192.168.77.99",
                          "busybox", "sleep", "300").strip()
        auto = client.containers.run("busybox", "sleep 300", detach=True, network="planned")
        ep = client.api.inspect_container(fixed)["NetworkSettings"]["Networks"]["planned"]
        assert (ep["IPAddress"], ep["Gateway"], ep["IPPrefixLen"], ep["MacAddress"]) == \
            ("192.168.77.10", "192.168.77.254", 24, "02:42:c0:a8:4d:0a")
        assert ep["DNSNames"][0] == "fixed"
        auto_ep = client.api.inspect_container(auto.id)["NetworkSettings"]["Networks"]["planned"]
        assert auto_ep["IPAddress"] == "192.168.77.129"     # the first of --ip-range
        link = daemon.ok("exec", "fixed", "ip", "-o", "link", "show", "eth0")
        assert "02:42:c0:a8:4d:0a" in link
        assert "default via 192.168.77.254" in daemon.ok("exec", "fixed", "ip", "route")
        resolv = daemon.ok("exec", "fixed", "cat", "/etc/resolv.conf")
        assert "nameserver 192.168.77.254" in resolv and "search example.test" in resolv
        hosts = daemon.ok("exec", "fixed", "cat", "/etc/hosts")
        assert "192.168.77.99\tdb.local" in hosts and f"192.168.77.10\t{fixed[:12]}" in hosts
        members = client.api.inspect_network(net.id)["Containers"]
        assert members[fixed]["IPv4Address"] == "192.168.77.10/24"
        assert members[auto.id]["MacAddress"] == "02:42:c0:a8:4d:81"
        taken = daemon.docker("run", "--rm", "--network", "planned", "--ip", "192.168.77.10",
                              "busybox", "true")
        assert taken.status != 0 and "in use" in taken.err
        outside = daemon.docker("create", "--network", "planned", "--ip", "10.9.9.9", "busybox",
                                "true")
        assert outside.status != 0 and "subnet" in outside.err
        stats = auto.stats(stream=False)
        assert stats["networks"]["eth0"]["rx_bytes"] >= 0 and "lo" not in stats["networks"]
        auto.remove(force=True)
        daemon.ok("rm", "-f", fixed)
        assert client.api.inspect_network(net.id)["Containers"] == {}
    finally:
        for c in client.containers.list(all=True, filters={"network": "planned"}):
            c.remove(force=True)
        net.remove()
        client.close()
    assert not [n for n in links(daemon.netns) if n.startswith(("veth", "bp-"))]


def _outside_servers() -> str:
    return f"""
import http.server, socket, struct, threading
def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("{OUT_NET}.2", 53))
    while True:
        q, peer = s.recvfrom(512)
        end = q.index(b"\\0", 12) + 5
        s.sendto(q[:2] + b"\\x81\\x80" + q[4:6] + b"\\0\\x01\\0\\0\\0\\0" + q[12:end]
                 + struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("{OUT_NET}.77"),
                 peer)
threading.Thread(target=dns, daemon=True).start()
class Who(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
print("ready", flush=True)
http.server.HTTPServer(("{OUT_NET}.2", 8000), Who).serve_forever()
"""


@pytest.fixture
def outside(daemon):
    """A second namespace standing for the outside world, linked to the
    daemon's by a veth pair ({OUT_NET}.1 there, .2 here): an HTTP server
    answering with the client's address, and a DNS server."""
    name = f"brandpy-test-out-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    pair = f"bpt{secrets.token_hex(3)}"
    proc = None
    try:
        daemon.netns.run(["ip", "link", "add", pair, "type", "veth", "peer", "name", "eth0",
                          "netns", name], check=True)
        daemon.netns.run(["ip", "addr", "add", f"{OUT_NET}.1/24", "dev", pair], check=True)
        daemon.netns.run(["ip", "link", "set", pair, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{OUT_NET}.2/24", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True)
        proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c",
                                 _outside_servers()], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        yield f"{OUT_NET}.2"
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_outbound_nat_dns_forwarding_and_internal(daemon, outside):
    # from the default bridge and a user network, the outside sees the host's address
    assert fetch_from(daemon, f"http://{outside}:8000/") == (0, f"{OUT_NET}.1")
    daemon.ok("network", "create", "edge")
    daemon.ok("network", "create", "--internal", "sealed")
    try:
        assert fetch_from(daemon, f"http://{outside}:8000/", "--network", "edge") == \
            (0, f"{OUT_NET}.1")
        # names the network does not know go to --dns through the resolver
        out = daemon.ok("run", "--rm", "--network", "edge", "--dns", outside, "busybox",
                        "nslookup", "ext.example")
        assert f"{OUT_NET}.77" in out.split("Name:")[-1], out
        # --internal: no route out, no forwarding
        sealed = daemon.docker("run", "--rm", "--network", "sealed", "busybox", "sh", "-c",
                               f"ip route; timeout 3 wget -q -O - http://{outside}:8000/; "
                               "echo rc=$?")
        assert "rc=0" not in sealed.out and "default" not in sealed.out, sealed
    finally:
        daemon.ok("network", "rm", "edge", "sealed")


def _listener_script(abstract: str) -> str:
    return f"""
import socket, sys
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", 0)); tcp.listen(8)
unix = socket.socket(socket.AF_UNIX); unix.bind("\\0{abstract}"); unix.listen(8)
print(tcp.getsockname()[1], flush=True)
sys.stdin.read()
"""


CONNECT = """
import socket, sys
def try_(family, addr):
    s = socket.socket(family)
    s.settimeout(3)
    try:
        s.connect(addr)
        return "open"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
own = socket.socket(); own.bind(("127.0.0.1", 0)); own.listen(1)
print(try_(socket.AF_INET, ("127.0.0.1", int(sys.argv[1]))),
      try_(socket.AF_UNIX, "\\0" + sys.argv[2]),
      try_(socket.AF_INET, ("127.0.0.1", own.getsockname()[1])))
"""


def _host_services(daemon: Daemon) -> tuple[subprocess.Popen, int, str]:
    """A TCP service on the host's 127.0.0.1 and an abstract unix socket,
    in the daemon's namespace."""
    abstract = f"brandpy-test-{secrets.token_hex(4)}"
    proc = subprocess.Popen(["nsenter", f"--net={daemon.netns.path}", sys.executable, "-c",
                             _listener_script(abstract)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline()), abstract


def check_closed(d: Daemon, abstract: str) -> None:
    """The host's loopback service refused, the host's abstract socket
    answered by `abstract`, the container's own loopback open."""
    proc, port, name = _host_services(d)
    try:
        d.ok("import", "--change", "CMD [\"/bin/bash\"]", str(image_tar("debian")),
             "debian:net", timeout=300)
        out = d.ok("run", "--rm", "debian:net", "python3", "-c", CONNECT, str(port), name)
        assert out.split() == ["ConnectionRefusedError", abstract, "open"], out
    finally:
        proc.kill()
        proc.wait()


def test_host_loopback_and_abstract_sockets_are_not_reachable(daemon):
    # abstract sockets are per network namespace: nothing listens in the container's
    check_closed(daemon, "ConnectionRefusedError")


@pytest.mark.slow
def test_host_loopback_closed_unprivileged(unpriv_pythonpath):
    """An unprivileged daemon shares the host's network with its
    containers: the supervisor refuses the host's loopback services but
    not the container's own."""
    with unprivileged_daemon(unpriv_pythonpath) as d:
        options = d.ok("info", "-f", "{{json .SecurityOptions}}")
        assert "mode=translate" in options
        # the host's abstract sockets are Landlock's to close (its ABI 6 scope: EPERM)
        check_closed(d, "PermissionError" if "abstract-unix-socket" in options else "open")


@pytest.mark.slow
def test_kill_9_and_restart_keep_networks_and_containers(fresh):
    d = fresh
    d.ok("network", "create", "--subnet", "192.168.88.0/24", "--ipv6", "--subnet",
         "fd00:88::/64", "kept")
    serve(d, "web", "hello-kept", "--network", "kept", "--network-alias", "www",
          "-p", "127.0.0.1:18090:80")
    ip = address(d, "web", "kept")
    ip6 = "fd00:88::2"
    assert wait_for(lambda: d.netns.fetch(f"http://[{ip6}]/")) == "hello-kept\n"
    assert wait_for(lambda: d.netns.fetch("http://127.0.0.1:18090/")) == "hello-kept\n"
    d.stop(9)
    d.start()
    assert d.ok("ps", "--format", "{{.Names}}").split() == ["web"]
    assert address(d, "web", "kept") == ip
    assert d.netns.fetch("http://127.0.0.1:18090/") == "hello-kept\n"
    assert d.netns.fetch(f"http://{ip}/") == "hello-kept\n"
    assert d.netns.fetch(f"http://[{ip6}]/") == "hello-kept\n"
    assert fetch_from(d, "http://www/", "--network", "kept") == (0, "hello-kept\n")
    assert fetch_from(d, f"http://[{ip6}]/", "--network", "kept") == (0, "hello-kept\n")
    nets = json.loads(d.ok("network", "inspect", "kept"))[0]
    assert [c["Subnet"] for c in nets["IPAM"]["Config"]] == ["192.168.88.0/24", "fd00:88::/64"]
    # stopped while no daemon ran: its pair, address and rules go at the next start
    d.stop(9)
    subprocess.run(["kill", "-9", *map(str, d.shim_pids())], check=True)
    d.start()
    assert d.ok("ps", "-q") == ""
    assert address(d, "web", "kept") == ""
    assert not [n for n in links(d.netns) if n.startswith("veth")]
    assert "dnat" not in d.netns.run(["nft", "list", "chain", "ip", "brandpy", "publish"]).stdout
    d.ok("rm", "-f", "web")
    d.ok("network", "rm", "kept")
    assert not [n for n in links(d.netns) if n.startswith(("veth", "bp-"))]


def test_nothing_left_behind(daemon):
    daemon.ok("network", "create", "--subnet", "192.168.99.0/24", "brief")
    serve(daemon, "gone", "bye", "--network", "brief", "-p", "18095:80")
    key = daemon.ok("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "gone").strip()
    netns_id = os.stat(key).st_ino
    bridge = "bp-" + daemon.ok("network", "inspect", "-f", "{{.Id}}", "brief")[:12]
    assert bridge in links(daemon.netns)
    daemon.ok("rm", "-f", "gone")
    daemon.ok("network", "rm", "brief")
    assert not [n for n in links(daemon.netns) if n.startswith(("veth", "bp-"))]
    table = daemon.netns.run(["nft", "list", "table", "ip", "brandpy"], check=True).stdout
    assert "192.168.99." not in table and "18095" not in table and bridge not in table
    in_it = in_netns(netns_id)
    assert not in_it, in_it       # the container's namespace went with its last process


def test_published_ports_follow_a_disconnect(daemon):
    """Disconnected from the network its ports were published to, a
    container's ports go to the network it has left."""
    daemon.ok("network", "create", "second")
    try:
        serve(daemon, "hop", "hello-hop", "-p", "18097:80")
        assert wait_for(lambda: daemon.netns.fetch("http://127.0.0.1:18097/")) == "hello-hop\n"
        daemon.ok("network", "connect", "second", "hop")
        daemon.ok("network", "disconnect", "bridge", "hop")
        ip = address(daemon, "hop", "second")
        rules = daemon.netns.run(["nft", "list", "chain", "ip", "brandpy", "publish"]).stdout
        assert f"dnat to {ip}:80" in rules, rules
        assert daemon.netns.fetch("http://127.0.0.1:18097/") == "hello-hop\n"
    finally:
        daemon.docker("rm", "-f", "hop")
        daemon.ok("network", "rm", "second")


def test_ipv6_networks(daemon):
    """--ipv6 (issue 19): the bridge gets the IPv6 gateway, each container an
    address from the IPv6 pool (or its --ip6), shown by inspect; containers
    of a network reach each other and the host over IPv6, and IPv6 between
    networks is dropped as IPv4 is. An IPv6 pool without --ipv6 is kept but
    unused, and --ipv6 without one is refused, as dockerd 20.10 does."""
    client = daemon.client()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet="2001:db8::/64", iprange="2001:db8::/96", gateway="2001:db8::ffff")])
    nets = ["six", "sixb", "v6off"]
    try:
        net = client.networks.create("six", driver="bridge", enable_ipv6=True, ipam=ipam)
        shown = client.api.inspect_network(net.id)
        assert shown["EnableIPv6"] is True
        v4, v6 = shown["IPAM"]["Config"]          # a default IPv4 pool besides the one given
        assert v6 == {"Subnet": "2001:db8::/64", "IPRange": "2001:db8::/96",
                      "Gateway": "2001:db8::ffff"}
        assert ":" not in v4["Subnet"] and v4["Gateway"]
        bridge = shown["Options"].get("com.docker.network.bridge.name") or "bp-" + net.id[:12]
        on_bridge = daemon.netns.run(["ip", "-6", "-o", "addr", "show", "dev", bridge],
                                     check=True).stdout
        assert "inet6 2001:db8::ffff/64" in on_bridge, on_bridge
        serve(daemon, "web6", "hello-six", "--network", "six", "--ip6", "2001:db8::beef")
        auto = client.containers.run("busybox", "sleep 300", detach=True, name="auto6",
                                     network="six")
        ep = client.api.inspect_container(auto.id)["NetworkSettings"]["Networks"]["six"]
        assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == \
            ("2001:db8::1", 64, "2001:db8::ffff")
        web = client.api.inspect_container("web6")["NetworkSettings"]["Networks"]["six"]
        assert web["GlobalIPv6Address"] == "2001:db8::beef"
        hosts = daemon.ok("exec", "web6", "cat", "/etc/hosts")     # both addresses, as dockerd
        short = client.api.inspect_container("web6")["Config"]["Hostname"]
        assert f"2001:db8::beef\t{short}" in hosts and f"{web['IPAddress']}\t{short}" in hosts
        assert web["IPAMConfig"]["IPv6Address"] == "2001:db8::beef"
        members = client.api.inspect_network(net.id)["Containers"]
        assert members[auto.id]["IPv6Address"] == "2001:db8::1/64"
        addrs = daemon.ok("exec", "auto6", "ip", "-o", "-6", "addr", "show", "dev", "eth0")
        line = next(a for a in addrs.splitlines() if "inet6 2001:db8::1/64" in a)
        assert "tentative" not in line, addrs         # usable at once: no DAD
        assert "default via 2001:db8::ffff" in daemon.ok("exec", "auto6", "ip", "-6", "route")
        # container to container, and the host to a container, over IPv6
        got = daemon.ok("exec", "auto6", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do "
                        "wget -q -O - 'http://[2001:db8::beef]/' && break; sleep 0.3; done")
        assert got == "hello-six\n"
        assert daemon.ok("exec", "web6", "ping", "-c", "1", "-W", "3", "2001:db8::1")
        assert wait_for(lambda: daemon.netns.fetch("http://[2001:db8::beef]/")) == "hello-six\n"
        # the network's resolver answers AAAA with the address
        looked = daemon.ok("exec", "auto6", "nslookup", "-type=aaaa", "web6")
        assert "2001:db8::beef" in looked.split("Name:")[-1], looked
        # another IPv6 network: its containers do not reach this one's
        client.networks.create("sixb", enable_ipv6=True, ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet="2001:db8:2::/64")]))
        assert unreachable(daemon, "http://[2001:db8::beef]/", "--network", "sixb")
        # connect with --ip6, then disconnect: the address goes with the interface
        daemon.ok("network", "connect", "--ip6", "2001:db8:2::77", "sixb", "auto6")
        addrs = daemon.ok("exec", "auto6", "ip", "-o", "-6", "addr", "show", "dev", "eth1")
        assert "inet6 2001:db8:2::77/64" in addrs, addrs
        daemon.ok("network", "disconnect", "sixb", "auto6")
        taken = daemon.docker("run", "--rm", "--network", "six", "--ip6", "2001:db8::beef",
                              "busybox", "true")
        assert taken.status != 0 and "in use" in taken.err, taken
        # without --ipv6 an IPv6 pool is kept and an --ip6 recorded, but no address given
        daemon.ok("network", "create", "--subnet", "2001:db8:3::/64", "v6off")
        assert daemon.ok("network", "inspect", "-f", "{{.EnableIPv6}}", "v6off").strip() == \
            "false"
        daemon.ok("run", "-d", "--name", "off6", "--network", "v6off", "--ip6",
                  "2001:db8:3::10", "busybox", "sleep", "300")
        off = client.api.inspect_container("off6")["NetworkSettings"]["Networks"]["v6off"]
        assert off["IPAMConfig"]["IPv6Address"] == "2001:db8:3::10"
        assert off["GlobalIPv6Address"] == "" and off["IPAddress"]
        assert "2001:db8:3" not in daemon.ok("exec", "off6", "ip", "-6", "addr")
        nopool = daemon.docker("network", "create", "--ipv6", "nopool")
        assert nopool.status != 0 and "IPv6 address pool" in nopool.err, nopool
    finally:
        daemon.docker("rm", "-f", "web6", "auto6", "off6")
        for name in nets:
            daemon.docker("network", "rm", name)
        client.close()
    assert not [n for n in links(daemon.netns) if n.startswith(("veth", "bp-"))]
    forward6 = daemon.netns.run(["nft", "list", "chain", "ip6", "brandpy", "forward"]).stdout
    assert "bp-" not in forward6, forward6
