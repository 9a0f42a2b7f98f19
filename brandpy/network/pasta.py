"""Networks of their own for an unprivileged daemon's containers, as
rootless Podman gives them: each container in a user namespace (mapping
only the daemon's uid and gid) and a network namespace of its own, made by
its spawner (native/spawner.c, BP_SPAWNER_NETWORK) before the entrypoint's
first instruction, while the supervisor stays outside both and keeps
tracing it; pasta (Debian's passt) connects that namespace to the daemon's:
a tap interface `eth0` with the host's address and default route, outbound
TCP, UDP and ping through pasta's sockets, published ports forwarded from
the host to the container, and DNS forwarded from DNS_ADDRESS to the host's
first nameserver that is not a loopback one.

What stays closed: pasta forwards nothing from the container to the host
(`-T none -U none`), and the gateway's address is the real gateway, not a
way back to the host's loopback (`--no-map-gw`); 127.0.0.1 in the
container is its own loopback."""

from __future__ import annotations

import os
import shutil
import subprocess

from brandpy.runtime.sandbox import PortMapping

from .controller import is_loopback

PASTA = "pasta"
DNS_ADDRESS = "169.254.1.1"     # the container's nameserver, as rootless Podman's
INTERFACE = "eth0"
LOG_SIZE = 1 << 20


def unavailable() -> str:
    """Why containers cannot have networks of their own here, or "" when
    they can: pasta installed, /dev/net/tun usable (udev makes it 0666)
    and user namespaces allowed to this user."""
    if shutil.which(PASTA) is None:
        return "pasta is not installed (apt-get install passt)"
    if not _default_route():
        return ("the daemon's network namespace has no default route, which pasta takes "
                "the containers' address and gateway from")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "/dev/net/tun is not usable by this user (chmod 0666 /dev/net/tun, as udev sets it)"
    try:
        probe = subprocess.run(["unshare", "--user", "--net", "true"], capture_output=True,
                               timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot try a user namespace: {exc}"
    if probe.returncode:
        return ("unprivileged user namespaces are not allowed here ("
                f"{probe.stderr.decode(errors='replace').strip()})")
    return ""


def _default_route() -> bool:
    """Has this (thread's) network namespace an IPv4 or IPv6 default route?"""
    try:
        with open("/proc/thread-self/net/route") as f:
            if any(line.split()[1:2] == ["00000000"] for line in f.readlines()[1:]):
                return True
        with open("/proc/thread-self/net/ipv6_route") as f:
            return any(line.split()[:2] == ["0" * 32, "00"] and line.split()[-1] != "lo"
                       for line in f)
    except OSError:
        return False


def _forwards(ports: list[PortMapping], proto: str) -> list[str]:
    """pasta's -t/-u options for the published ports of proto, one per
    binding (an address applies to a whole option)."""
    flag = "-t" if proto == "tcp" else "-u"
    out: list[str] = []
    for p in ports:
        if p.proto == proto:
            addr = "" if p.host_ip in ("", "0.0.0.0") else f"{p.host_ip}/"
            out += [flag, f"{addr}{p.host_port}:{p.container_port}"]
    return out or [flag, "none"]


def command(ports: list[PortMapping], forward_dns: bool, log: str) -> list[str]:
    """pasta's command line for one container (its spawner appends its
    PID); forward_dns: DNS_ADDRESS forwards to the first nameserver of
    the host's /etc/resolv.conf that is not a loopback one (pasta reads
    it: Debian 12's pasta forwards nowhere when given --dns, and reaches
    no loopback resolver with --no-map-gw); log: pasta's log file."""
    path = shutil.which(PASTA) or PASTA
    argv = [path, "--foreground", "--quiet", "--config-net", "--pid", "/dev/stdout",
            "--log-file", log, "--log-size", str(LOG_SIZE), "--ns-ifname", INTERFACE,
            *_forwards(ports, "tcp"), *_forwards(ports, "udp"),
            "--tcp-ns", "none", "--udp-ns", "none", "--no-map-gw"]
    return argv + (["--dns-forward", DNS_ADDRESS] if forward_dns else [])


def forwarded(nameservers: list[str]) -> bool:
    """Will pasta forward DNS to one of these (the host's) nameservers?"""
    return any(not is_loopback(s) for s in nameservers)
