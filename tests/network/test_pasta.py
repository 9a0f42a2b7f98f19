"""brandpy/network/pasta.py on its own: pasta's command line and why a
daemon would fall back to translate mode (the whole path, as uid 65534
with the docker CLI, is tests/api/test_rootless_network.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from brandpy.network import pasta
from brandpy.runtime.landlock import TEST_OFF
from brandpy.runtime.sandbox import PortMapping
from tests.api.conftest import Netns
from tests.conftest import IMAGES, NOBODY, SETPRIV, copy_rootfs


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


NONE_SCRIPT = """
import os, sys
from brandpy.runtime.sandbox import SandboxConfig
from brandpy.supervise.container import Container
state = sys.argv[2]
c = Container(SandboxConfig(rootfs=sys.argv[1], state_dir=state, own_network=[],
                            argv=["sh", "-c", "cat /proc/net/dev > /tmp/devs; "
                                  "readlink /proc/self/ns/net > /tmp/ns"]))
c.start()
sys.exit(c.run())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to uid 65534")
@pytest.mark.parametrize("walls", ["landlock", "none"])
def test_a_network_of_its_own_without_pasta(world_tmp, unpriv_pythonpath, walls):
    """own_network [] (--network none) as uid 65534: the spawner's own user
    and network namespaces with lo only, with and without Landlock (the
    spawner then exists for the network alone)."""
    rootfs = copy_rootfs(IMAGES / "busybox", world_tmp / f"rootfs-{walls}", owner=NOBODY)
    state = world_tmp / f"state-{walls}"
    state.mkdir()
    os.chown(state, NOBODY, NOBODY)
    env = {**os.environ, "PYTHONPATH": unpriv_pythonpath or os.environ.get("PYTHONPATH", "")}
    if walls == "none":
        env[TEST_OFF] = "1"
    r = subprocess.run([*SETPRIV, sys.executable, "-c", NONE_SCRIPT, str(rootfs), str(state)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    devs = (rootfs / "tmp" / "devs").read_text()
    assert [line.split(":")[0].strip() for line in devs.splitlines()[2:]] == ["lo"], devs
    assert (rootfs / "tmp" / "ns").read_text().strip() != os.readlink("/proc/self/ns/net")
