"""Unprivileged, every container on the default network its own network
namespace (issue 19), connected by pasta as rootless Podman's are
(brandpy/network/pasta.py). The daemon runs as uid 65534 in a namespace
the test makes ("the host": its uplink `uplink0` and default route lead
to a second namespace, `outside`, standing in for the world, whose
address is also the host's nameserver), driven by the docker CLI and the
SDK. No traffic leaves those two namespaces."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from brandpy.network import dns
from tests.api.conftest import Daemon, Netns, in_netns, unprivileged_daemon, wait_for

OUT = "198.51.100"              # TEST-NET-2: OUT.1 outside, OUT.2 the host
EXAMPLE = ("bp-example.test", "203.0.113.7")     # what outside's nameserver answers


def _uplink(host: Netns, outside: Netns) -> None:
    """A veth pair host:uplink0 <-> outside:eth0, the host's default route
    through outside."""
    subprocess.run(["ip", "-n", host.name, "link", "add", "uplink0", "type", "veth",
                    "peer", "name", "eth0", "netns", outside.name], check=True)
    for ns, ifname, addr in ((host, "uplink0", f"{OUT}.2"), (outside, "eth0", f"{OUT}.1")):
        ns.run(["ip", "addr", "add", f"{addr}/24", "dev", ifname], check=True)
        ns.run(["ip", "link", "set", ifname, "up"], check=True)
    host.run(["ip", "route", "add", "default", "via", f"{OUT}.1"], check=True)


def _serve(ns: Netns, addr: str, kind: int, handle: Callable[[socket.socket], None]
           ) -> socket.socket:
    """A socket bound in ns (UDP on port 53, TCP on one of the kernel's),
    answered by handle on a thread until closed."""
    def bind() -> socket.socket:
        s = socket.socket(socket.AF_INET, kind)
        s.bind((addr, 53 if kind == socket.SOCK_DGRAM else 0))
        if kind == socket.SOCK_STREAM:
            s.listen(8)
        return s
    sock = ns.call(bind)

    def loop() -> None:
        while True:
            try:
                handle(sock)
            except OSError:
                return
    threading.Thread(target=loop, daemon=True).start()
    return sock


def _greeter(seen: list[str]) -> Callable[[socket.socket], None]:
    """A TCP handler: one line to each peer, whose address it records."""
    def greet(sock: socket.socket) -> None:
        conn, peer = sock.accept()
        seen.append(peer[0])
        with conn:
            conn.sendall(b"hello-from-" + sock.getsockname()[0].encode() + b"\n")
    return greet


def _nameserver(sock: socket.socket) -> None:
    query, peer = sock.recvfrom(512)
    q = dns.parse(query)
    view = dns.View({EXAMPLE[0]: [IPv4Address(EXAMPLE[1])]})
    out = dns.answer(query, q, view) if q else None
    if out is not None:
        sock.sendto(out, peer)


@pytest.fixture(scope="module")
def rootless(unpriv_pythonpath: str | None) -> Iterator[tuple[Daemon, Netns, Netns]]:
    host, outside = Netns(), Netns()
    # `ip netns exec` shows the daemon this resolv.conf as /etc/resolv.conf
    etc = Path("/etc/netns") / host.name
    try:
        _uplink(host, outside)
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text(f"nameserver {OUT}.1\n")
        with unprivileged_daemon(unpriv_pythonpath, netns=host,
                                 prefix=["ip", "netns", "exec", host.name]) as d:
            options = d.ok("info", "-f", "{{json .SecurityOptions}}")
            assert "mode=pasta" in options, (options, d.log.read_text()[-2000:])
            yield d, host, outside
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        host.remove()
        outside.remove()


def run(d: Daemon, *args: str) -> str:
    return d.ok("run", "--rm", *args)


def _interfaces(text: str) -> set[str]:
    """The interfaces a /proc/net/dev in text lists."""
    return set(re.findall(r"^\s*([\w.-]+):\s+\d+\s+\d+", text, re.MULTILINE))


@pytest.mark.parametrize("runtime", ["brandpy", "brandpy-python"])
def test_own_interface_and_loopback(rootless, runtime):
    """eth0 with the host's address and route (pasta's), its own /proc/net;
    the host's uplink0 is not there. Either engine."""
    d, _, _ = rootless
    engine = ("--runtime", runtime)
    out = run(d, *engine, "busybox", "sh", "-c", "ip -o -4 addr show dev eth0; ip route")
    assert f"inet {OUT}.2/24" in out and f"default via {OUT}.1 dev eth0" in out, out
    assert _interfaces(run(d, *engine, "busybox", "cat", "/proc/net/dev")) == {"lo", "eth0"}
    # --network none: a namespace of its own too, loopback only
    assert _interfaces(run(d, *engine, "--network", "none", "busybox", "cat",
                           "/proc/net/dev")) == {"lo"}


NS_GET_USERNS, NS_GET_PARENT = 0xB701, 0xB702     # _IO(0xb7, 1), _IO(0xb7, 2)


def _owner(ns_path: str, request: int = NS_GET_USERNS) -> int:
    """The inode of the user namespace that owns (or, NS_GET_PARENT, is
    the parent of) a namespace."""
    fd = os.open(ns_path, os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, request)
        try:
            return os.fstat(owner).st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)


def test_one_user_namespace_owns_the_containers_namespaces(rootless):
    """Seen from the host: the entrypoint's user namespace is a child of
    the initial one mapping uid 65534 alone, and owns its network (pasta's)
    and PID namespaces (Walls; not two nested user namespaces); the
    entrypoint holds no capability there."""
    d, _, _ = rootless
    cid = d.ok("run", "-d", "busybox", "sleep", "30").strip()
    try:
        pid = int(d.ok("inspect", "-f", "{{.State.Pid}}", cid))
        user = os.stat(f"/proc/{pid}/ns/user").st_ino
        assert _owner(f"/proc/{pid}/ns/user", NS_GET_PARENT) == os.stat("/proc/self/ns/user").st_ino
        assert _owner(f"/proc/{pid}/ns/net") == user == _owner(f"/proc/{pid}/ns/pid")
        assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["65534", "65534", "1"]
        assert "CapEff:\t0000000000000000\n" in Path(f"/proc/{pid}/status").read_text()
    finally:
        d.ok("rm", "-f", cid)


def test_host_loopback_is_not_reachable(rootless):
    d, host, _ = rootless
    seen: list[str] = []
    sock = _serve(host, "127.0.0.1", socket.SOCK_STREAM, _greeter(seen))
    port = sock.getsockname()[1]
    try:
        # the listener answers on the host...
        assert wait_for(lambda: host.call(lambda: socket.create_connection(
            ("127.0.0.1", port), timeout=3).recv(64))) == b"hello-from-127.0.0.1\n"
        # ...but 127.0.0.1 in the container is its own loopback: refused
        out = run(d, "busybox", "sh", "-c", f"nc 127.0.0.1 {port} </dev/null; echo rc=$?")
        assert "hello" not in out and "rc=1" in out, out
        assert seen == ["127.0.0.1"], seen
    finally:
        sock.close()


def test_published_port_from_the_host_loopback(rootless):
    """-p 127.0.0.1:HOST:80: a server on port 80 in the container (a real,
    privileged port of its own namespace) answers on the host's loopback."""
    d, host, _ = rootless
    d.ok("run", "-d", "--name", "web", "-p", "127.0.0.1:18093:80", "busybox", "sh", "-c",
         "echo hello-web > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
    try:
        assert wait_for(lambda: host.fetch("http://127.0.0.1:18093/")) == "hello-web\n"
        assert d.ok("port", "web").strip() == "80/tcp -> 127.0.0.1:18093"
        # a restart's pasta binds the port again (the last one is gone by then)
        d.ok("restart", "-t", "1", "web")
        assert wait_for(lambda: host.fetch("http://127.0.0.1:18093/")) == "hello-web\n"
        assert len(_helpers(d)) == 1, _helpers(d)
    finally:
        d.ok("rm", "-f", "web")
    assert host.fetch("http://127.0.0.1:18093/", timeout=1) is None   # gone with it


def test_outbound_and_dns_through_pasta(rootless):
    d, _, outside = rootless
    seen: list[str] = []
    tcp = _serve(outside, f"{OUT}.1", socket.SOCK_STREAM, _greeter(seen))
    udp = _serve(outside, f"{OUT}.1", socket.SOCK_DGRAM, _nameserver)
    try:
        out = run(d, "busybox", "sh", "-c",
                  # stdin kept open: Debian 12's pasta may stall a connection
                  # half-closed before the peer's data (README, pasta mode)
                  f"sleep 1 | timeout 10 nc {OUT}.1 {tcp.getsockname()[1]}; "
                  "cat /etc/resolv.conf; "
                  f"nslookup {EXAMPLE[0]}")
        assert f"hello-from-{OUT}.1" in out, out
        assert seen == [f"{OUT}.2"], seen      # pasta's socket, from the host's address
        # the container asks pasta's forwarder, which asks the host's nameserver
        assert "nameserver 169.254.1.1" in out and EXAMPLE[1] in out, out
    finally:
        tcp.close()
        udp.close()


def test_sdk_and_nothing_left_behind(rootless):
    d, host, _ = rootless
    client = d.client()
    try:
        c = client.containers.run("busybox", ["sh", "-c", "ip -o link; sleep 30"],
                                  detach=True, ports={"8080/tcp": ("127.0.0.1", 18094)})
        assert wait_for(lambda: "eth0" in c.logs().decode())
        assert _helpers(d), "pasta runs for the container"
        assert list(c.stats(stream=False)["networks"]) == ["eth0"]   # its own counters
        key = client.api.inspect_container(c.id)["NetworkSettings"]["SandboxKey"]
        netns_id = os.stat(key).st_ino
        assert netns_id != os.stat(host.path).st_ino
        c.remove(force=True)
    finally:
        client.close()
    assert wait_for(lambda: not _helpers(d)), _helpers(d)
    # the namespace went with its last process
    assert wait_for(lambda: not in_netns(netns_id)), in_netns(netns_id)



def _helpers(d: Daemon) -> list[str]:
    """The pasta processes of the daemon's containers (their logs are in
    its data root)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"pasta") and any(str(d.root).encode() in a for a in argv):
            found.append(pid)
    return found


def test_a_taken_host_port_fails_the_start_with_pastas_reason(rootless):
    d, host, _ = rootless
    taken = _serve(host, "127.0.0.1", socket.SOCK_STREAM, _greeter([]))
    try:
        r = d.docker("run", "--rm", "-p", f"127.0.0.1:{taken.getsockname()[1]}:80", "busybox",
                     "true")
        assert r.status != 0 and "Failed to bind" in r.err and "pasta" in r.err, r
    finally:
        taken.close()


def test_published_ports_survive_a_daemon_kill_9(rootless):
    """The shim, its spawner and pasta do not depend on the daemon."""
    d, host, _ = rootless
    d.ok("run", "-d", "--name", "kept", "-p", "127.0.0.1:18095:80", "busybox", "sh", "-c",
         "echo hello-kept > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
    try:
        assert wait_for(lambda: host.fetch("http://127.0.0.1:18095/")) == "hello-kept\n"
        d.stop(9)
        assert host.fetch("http://127.0.0.1:18095/") == "hello-kept\n"
        d.start()
        assert d.ok("ps", "--format", "{{.Names}}").split() == ["kept"]
        assert host.fetch("http://127.0.0.1:18095/") == "hello-kept\n"
    finally:
        d.ok("rm", "-f", "kept")
    assert wait_for(lambda: not _helpers(d)), _helpers(d)


def test_container_network_mode_joins_its_namespace(rootless):
    """--network container:NAME: the other's namespace (its pasta, its
    loopback); a container sharing the host's stack cannot be joined."""
    d, _, _ = rootless
    d.ok("run", "-d", "--name", "owner", "busybox", "sh", "-c",
         "echo hello-owner > /tmp/index.html; exec httpd -f -p 127.0.0.1:8080 -h /tmp")
    d.ok("network", "create", "shared")
    try:
        out = run(d, "--network", "container:owner", "busybox", "sh", "-c",
                  "cat /proc/net/dev; sleep 1 | nc 127.0.0.1 8080 <<EOF\nGET / HTTP/1.0\n\nEOF\n")
        assert _interfaces(out) == {"lo", "eth0"} and "hello-owner" in out, out
        d.ok("run", "-d", "--name", "hoster", "--network", "shared", "busybox", "sleep", "30")
        r = d.docker("run", "--rm", "--network", "container:hoster", "busybox", "true")
        assert r.status != 0 and "only a container on the default or none network" in r.err, r
        r = d.docker("network", "connect", "shared", "owner")    # an honest 501
        assert r.status != 0 and "user networks do not reach" in r.err, r
    finally:
        d.docker("rm", "-f", "owner", "hoster")
        d.ok("network", "rm", "shared")


@pytest.mark.slow
def test_host_loopback_and_abstract_sockets_closed(rootless):
    """With python3 (the debian image): the host's loopback service and
    abstract socket are refused (they are in another namespace), the
    container's own loopback open."""
    from tests.api.test_networking import check_closed
    check_closed(rootless[0], "ConnectionRefusedError")
