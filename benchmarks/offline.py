"""Keeping test suites off the network: the calling thread, and every
process it starts afterwards, moves into a network namespace of its own in
which only loopback is up. Tests that use sockets talk to themselves over
lo; anything aimed further (DNS, an address of the host, AF_VSOCK is not
namespaced and is excluded separately) fails at once instead of leaving
the machine. Needs root (CAP_SYS_ADMIN)."""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sH14x"           # struct ifreq: name, then ifr_flags in the union


def isolate_network() -> None:
    """unshare(CLONE_NEWNET) and bring lo up; raises OSError on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        _, flags = struct.unpack(_IFREQ, fcntl.ioctl(s, SIOCGIFFLAGS,
                                                     struct.pack(_IFREQ, b"lo", 0)))
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | IFF_UP))


def network(offline: bool) -> str:
    """A suite's network: with `offline`, a namespace of its own with only
    loopback (isolate_network); what it is, for the results' record."""
    if not offline:
        return "host network"
    isolate_network()
    return "own network namespace: " + ", ".join(interfaces())


def interfaces() -> list[str]:
    """The network interfaces this process sees (for the results' record)."""
    return sorted(name for _, name in socket.if_nameindex())
