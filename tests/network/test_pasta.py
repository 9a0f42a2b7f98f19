"""brandpy/network/pasta.py on its own: pasta's command line and why a
daemon would fall back to translate mode (the whole path, as uid 65534
with the docker CLI, is tests/api/test_rootless_network.py)."""

from __future__ import annotations

import os

import pytest

from brandpy.network import pasta
from brandpy.runtime.sandbox import PortMapping
from tests.api.conftest import Netns


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    """Each argument with the next: options with their values."""
    return list(zip(argv, argv[1:], strict=False))


def test_command_forwards_only_what_is_published_and_nothing_back():
    ports = [PortMapping(18080, 80, "tcp", "127.0.0.1"), PortMapping(18081, 81, "tcp", ""),
             PortMapping(5353, 53, "udp", "0.0.0.0")]
    argv = pasta.command(ports, True, "/x/pasta.log")
    pairs = _pairs(argv)
    assert ("-t", "127.0.0.1/18080:80") in pairs and ("-t", "18081:81") in pairs
    assert ("-u", "5353:53") in pairs and ("-u", "none") not in pairs
    assert ("--tcp-ns", "none") in pairs and ("--udp-ns", "none") in pairs
    assert "--no-map-gw" in argv and ("--dns-forward", pasta.DNS_ADDRESS) in pairs
    assert ("--log-file", "/x/pasta.log") in pairs and ("--pid", "/dev/stdout") in pairs
    bare = pasta.command([], False, "/x/pasta.log")
    assert ("-t", "none") in _pairs(bare) and ("-u", "none") in _pairs(bare)
    assert "--dns-forward" not in bare


def test_dns_is_forwarded_to_no_loopback_resolver():
    assert pasta.forwarded(["127.0.0.53", "10.0.0.1"])
    assert not pasta.forwarded(["127.0.0.53", "::1"]) and not pasta.forwarded([])


def test_why_translate_mode(monkeypatch):
    monkeypatch.setattr(pasta.shutil, "which", lambda name: None)
    assert "apt-get install passt" in pasta.unavailable()


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a network namespace")
def test_no_default_route_no_pasta():
    ns = Netns()
    try:
        assert "no default route" in ns.call(pasta.unavailable)
    finally:
        ns.remove()
