"""NAT, published ports and isolation: two nftables tables (`ip brandpy`,
and `ip6 brandpy` for --ipv6 networks' traffic, isolated as IPv4's but
neither NATed nor published, as dockerd's) in the daemon's namespace, made
whole from the networks and published ports each time one changes and
swapped in one transaction, so they never hold a rule for something gone
and a restarted daemon just makes them again.

- publish: a host port DNATed to the container (from other hosts in
  prerouting, from the host itself in output), on every local address or
  the one given; 127.0.0.1 works because each bridge has route_localnet
  and loopback sources leaving by a bridge are masqueraded.
- masquerade: a network's containers reach out with the host's address,
  except on --internal networks; a container reaching a published port
  of its own network through the host is masqueraded too (hairpin).
- forward: nothing passes between two networks' bridges, but connections
  to published ports do; an --internal network's bridge forwards nothing
  in or out.
"""

from __future__ import annotations

import json

from . import commands
from .model import Network, Published

TABLE = "brandpy"
DNS_PORT = 53


def _q(name: str) -> str:
    return json.dumps(name)     # a quoted nft string


def render(nets: list[tuple[Network, str]], published: list[Published],
           resolvers: list[tuple[str, str]]) -> str:
    """The table for (network, bridge) pairs, the published ports and the
    resolvers' (bridge, address) (kept from being published over)."""
    publish = []
    for p in sorted(published, key=lambda p: (p.proto, p.host_port, p.host_ip)):
        match = f"ip daddr {p.host_ip} " if p.host_ip not in ("", "0.0.0.0") else ""
        publish.append(f"{match}{p.proto} dport {p.host_port} dnat to {p.address}:{p.port}")
    pre = [f"iifname {_q(br)} ip daddr {addr} udp dport {DNS_PORT} return"
           for br, addr in resolvers]
    post, forward, isolate = [], [], []
    bridges = [br for _, br in nets]
    for net, br in nets:
        subnet = net.pool.subnet
        if not net.internal:
            post.append(f"ip saddr {subnet} oifname != {_q(br)} masquerade")
        post.append(f"oifname {_q(br)} ip saddr 127.0.0.0/8 masquerade")
        post.append(f"oifname {_q(br)} ip saddr {subnet} ct status dnat masquerade")
        if net.internal:
            forward.append(f"iifname {_q(br)} oifname != {_q(br)} drop")
            forward.append(f"oifname {_q(br)} iifname != {_q(br)} drop")
        others = [b for b in bridges if b != br]
        if others:
            isolate.append(f"iifname {_q(br)} oifname {{ {', '.join(map(_q, others))} }} drop")
    forward += ["ct status dnat accept", *isolate]

    def chain(name: str, hook: str, rules: list[str]) -> list[str]:
        head = [f"  chain {name} {{"] + ([f"    {hook}"] if hook else [])
        return head + [f"    {r}" for r in rules] + ["  }"]

    filter_hook = "type filter hook forward priority filter; policy accept;"
    body = [
        *chain("publish", "", publish),
        *chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
               [*pre, "fib daddr type local jump publish"]),
        *chain("output", "type nat hook output priority -100; policy accept;",
               ["fib daddr type local jump publish"]),
        *chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;", post),
        *chain("forward", filter_hook, forward),
    ]
    body6 = chain("forward", filter_hook, [r for r in forward if "dnat" not in r])
    return "\n".join([*_replace("ip", body), *_replace("ip6", body6), ""])


def _replace(family: str, body: list[str]) -> list[str]:
    """A table made anew: declared (so the delete cannot fail), deleted, made."""
    return [f"table {family} {TABLE}", f"delete table {family} {TABLE}",
            f"table {family} {TABLE} {{", *body, "}"]


async def apply(script: str) -> None:
    await commands.nft(script)


async def remove() -> None:
    await commands.nft("".join(f"table {f} {TABLE}\ndelete table {f} {TABLE}\n"
                               for f in ("ip", "ip6")))
