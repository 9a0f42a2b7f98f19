"""The embedded DNS resolver, as dockerd's: one per network, listening on
UDP port 53 of the network's gateway address (which containers on it
have as their nameserver). It answers, for the container asking (known
by its source address), the names of the containers on the networks that
container is on, and forwards other questions to the container's --dns
servers or the host's, unless all its networks are --internal.

dockerd listens on 127.0.0.11 inside each container's namespace and
redirects port 53 there; the gateway is reachable from each container
already, so one socket per network in the daemon serves them all and
a container sees only its own networks' names (by its address)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import cast

from .ipam import IPAddress

PORT = 53
TTL = 600
FORWARD_TIMEOUT = 2.0
MAX_PENDING = 256      # forwarded questions in flight per resolver; more are dropped
A, PTR, AAAA = 1, 12, 28
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
MAX_QUERY = 4096


@dataclass
class View:
    """What one container may learn: name -> addresses, and where to
    forward the rest (empty: nowhere)."""
    names: dict[str, list[IPAddress]] = field(default_factory=dict)
    upstream: list[str] = field(default_factory=list)


@dataclass
class Question:
    id: int
    flags: int
    name: str          # lower case, no trailing dot
    qtype: int
    end: int           # offset past the question in the query


def parse(data: bytes) -> Question | None:
    """The first question of a query; None for anything else."""
    if len(data) < 12:
        return None
    ident, flags, qdcount = struct.unpack_from(">HHH", data)
    if flags & 0x8000 or qdcount < 1 or (flags >> 11) & 0xF:   # a reply, no question, not QUERY
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(data):
            return None
        labels.append(data[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(data):
        return None
    qtype, _qclass = struct.unpack_from(">HH", data, pos)
    return Question(ident, flags, ".".join(labels).lower(), qtype, pos + 4)


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def reply(query: bytes, q: Question, rcode: int, answers: list[tuple[int, bytes]]) -> bytes:
    """A response echoing the question, with answers as (type, rdata)."""
    flags = 0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode   # QR AA RD RA
    head = struct.pack(">HHHHHH", q.id, flags, 1, len(answers), 0, 0)
    body = query[12:q.end]
    for rtype, rdata in answers:
        body += struct.pack(">HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata
    return head + body


def answer(query: bytes, q: Question, view: View) -> bytes | None:
    """The reply from the view, or None when the question is not one of
    its names (to be forwarded)."""
    if q.qtype == PTR:
        addr = reversed_address(q.name)
        names = sorted(n for n, addrs in view.names.items() if addr in addrs)
        if not names:
            return None
        return reply(query, q, NOERROR, [(PTR, _encode_name(names[0]))])
    addrs = view.names.get(q.name)
    if addrs is None:
        return None
    version = {A: 4, AAAA: 6}.get(q.qtype)      # others: the name exists, no such record
    return reply(query, q, NOERROR, [(q.qtype, a.packed) for a in addrs if a.version == version])


def reversed_address(name: str) -> IPAddress | None:
    """The address a PTR question is about (in-addr.arpa, or ip6.arpa's
    32 nibbles); None for another name."""
    try:
        if name.endswith(".in-addr.arpa"):
            return IPv4Address(".".join(reversed(name[:-len(".in-addr.arpa")].split("."))))
        nibbles = name[:-len(".ip6.arpa")].split(".")
        if name.endswith(".ip6.arpa") and len(nibbles) == 32 and all(len(n) == 1
                                                                     for n in nibbles):
            return IPv6Address(int("".join(reversed(nibbles)), 16))
    except ValueError:
        pass
    return None


async def forward(query: bytes, upstream: list[str]) -> bytes | None:
    loop = asyncio.get_running_loop()
    for server in upstream:
        try:
            family = socket.AF_INET6 if ipaddress.ip_address(server).version == 6 \
                else socket.AF_INET
        except ValueError:
            continue
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            try:
                await loop.sock_connect(s, (server, PORT))
                await loop.sock_sendall(s, query)
                return await asyncio.wait_for(loop.sock_recv(s, MAX_QUERY), FORWARD_TIMEOUT)
            except (OSError, TimeoutError):
                continue
    return None


class Resolver(asyncio.DatagramProtocol):
    """One network's resolver; view(source address) says what the asking
    container may learn, None for a source that is no container of the
    network (refused)."""

    def __init__(self, view: Callable[[str], View | None]) -> None:
        self.view = view
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)   # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # containers send what they like: whatever goes wrong with one
        # datagram drops it (an exception here would close the socket)
        try:
            self._answer(data, addr)
        except Exception as exc:
            print(f"brandpy: DNS question from {addr[0]} dropped: {exc!r}", file=sys.stderr)

    def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        q = parse(data)
        if q is None or self.transport is None:
            return
        view = self.view(addr[0])
        if view is None:
            self.transport.sendto(reply(data, q, REFUSED, []), addr)
            return
        out = answer(data, q, view)
        if out is not None:
            self.transport.sendto(out, addr)
        elif not view.upstream:
            self.transport.sendto(reply(data, q, NXDOMAIN if "." not in q.name else SERVFAIL,
                                        []), addr)
        elif len(self.pending) < MAX_PENDING:
            task = asyncio.get_running_loop().create_task(self._forward(data, q, view, addr))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _forward(self, data: bytes, q: Question, view: View,
                       addr: tuple[str, int]) -> None:
        out = await forward(data, view.upstream)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out if out is not None else reply(data, q, SERVFAIL, []), addr)

    def close(self) -> None:
        for task in self.pending:
            task.cancel()
        if self.transport is not None:
            self.transport.close()


async def serve(address: str, view: Callable[[str], View | None]) -> Resolver:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(lambda: Resolver(view),
                                                      local_addr=(address, PORT))
    return protocol
