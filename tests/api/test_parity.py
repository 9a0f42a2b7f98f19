"""Docker parity (issue 18): what docker-py's own integration tests and
docker-compose expect of dockerd, one test per cause, through the docker
SDK and CLI or, for requests no client sends as such, raw API calls."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from brandpy.engine import logs
from brandpy.engine.logdrivers import Rotation
from brandpy.engine.logs import LogWriter
from brandpy.engine.stdio import Session
from brandpy.runtime import cgroups
from tests.api.conftest import Daemon, Netns, image_tar, wait_for
from tests.images_store.registries import Registry


def message(daemon, method: str, path: str, body: object = None) -> tuple[int, str]:
    status, _, raw = daemon.api(method, path, body)
    return status, json.loads(raw)["message"] if raw else ""


def test_swarm_endpoints_answer_as_with_swarm_off(daemon, client):
    # docker-py's teardown leaves the swarm it may have joined: a 503 is "none"
    assert client.api.leave_swarm(force=True) is True
    no_swarm = (503, "This node is not part of a swarm")
    for method, path in (("GET", "/swarm"), ("POST", "/swarm/leave"), ("GET", "/swarm/unlockkey"),
                         ("POST", "/swarm/unlock"), ("GET", "/nodes"), ("GET", "/nodes/x"),
                         ("DELETE", "/nodes/x"), ("GET", "/services"), ("GET", "/services/x"),
                         ("POST", "/services/create"), ("DELETE", "/services/x"),
                         ("GET", "/tasks"), ("GET", "/tasks/x"), ("GET", "/secrets"),
                         ("POST", "/secrets/create"), ("GET", "/configs/x"),
                         ("POST", "/swarm/update?version=3"),
                         ("GET", "/services/x/logs?stdout=1")):
        assert message(daemon, method, "/v1.41" + path) == no_swarm, path
    # what the request gets wrong is still its own error, checked first
    assert message(daemon, "POST", "/swarm/update") == (
        400, "invalid swarm version '': strconv.ParseUint: parsing \"\": invalid syntax")
    assert message(daemon, "POST", "/secrets/x/update?version=a") == (
        400, "invalid secret version")
    assert message(daemon, "POST", "/services/create", b"[1]")[0] == 400
    assert message(daemon, "GET", "/nodes?filters=nojson")[0] == 400
    status, text = message(daemon, "POST", "/swarm/init", {"ListenAddr": "0.0.0.0:2377"})
    assert status == 501 and "no swarm mode" in text
    with pytest.raises(docker.errors.APIError) as err:
        client.services.list()
    assert err.value.status_code == 503
    r = daemon.docker("node", "ls")
    assert r.status != 0 and "This node is not part of a swarm" in r.err


def test_plugins_none_installed(daemon, client):
    assert client.plugins.list() == []
    with pytest.raises(docker.errors.NotFound, match='plugin "vieux/sshfs:latest" not found'):
        client.plugins.get("vieux/sshfs:latest")
    assert message(daemon, "POST", "/plugins/x/enable") == (404, 'plugin "x" not found')
    assert message(daemon, "GET", "/plugins?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D")[0] == 400
    assert message(daemon, "POST", "/plugins/pull?remote=x")[0] == 501


def test_json_bodies_decoded_as_go_decodes_them(daemon, client):
    """Field names match case-insensitively, the later of two keys for a
    field wins, map keys stay as sent: in every body."""
    body = (b'{"image": "busybox", "CMD": ["sleep", "30"], "tty": true, "Tty": false, '
            b'"labels": {"Mixed.Case": "v"}, "hostconfig": {"restartpolicy": {"name": "always"},'
            b' "AUTOREMOVE": false}}')
    status, _, raw = daemon.api("POST", "/v1.41/containers/create?name=folded", body,
                                {"Content-Type": "application/json"})
    assert status == 201, raw
    try:
        c = client.containers.get("folded")
        assert c.attrs["Config"]["Tty"] is False
        assert c.attrs["Config"]["Cmd"] == ["sleep", "30"]
        assert c.attrs["Config"]["Labels"] == {"Mixed.Case": "v"}
        assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
        c.start()
        # docker-py sends exec's detach keys as `detachKeys`
        exec_id = client.api.exec_create(c.id, "true", detach_keys="ctrl-x")["Id"]
        assert client.api.exec_inspect(exec_id)["DetachKeys"] == "ctrl-x"
        status, _, raw = daemon.api("POST", "/v1.41/volumes/create",
                                    {"name": "folded-vol", "labels": {"K": "v"}})
        assert status == 201 and json.loads(raw)["Name"] == "folded-vol"
        assert client.volumes.get("folded-vol").attrs["Labels"] == {"K": "v"}
    finally:
        client.api.remove_container("folded", force=True)
        for v in client.volumes.list(filters={"name": "folded-vol"}):
            v.remove()
    # a wrong type is still the decoder's 400, whatever the key's case
    assert message(daemon, "POST", "/containers/create", {"image": "busybox", "env": "x"}) == (
        400, "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env "
             "of type []string")


def test_exec_terminal_follows_create_and_framing_follows_start(client):
    c = client.containers.run("busybox", ["sleep", "30"], detach=True)
    try:
        exec_id = client.api.exec_create(c.id, ["tty"], tty=True)["Id"]
        # docker-py's exec_start defaults to tty=False: a multiplexed stream
        out = client.api.exec_start(exec_id, demux=True)
        # a pty of its own: as root the first of its own devpts instance,
        # as in Docker (unprivileged the host's number: README, Limits)
        name = out[0].decode().splitlines()[0]
        assert name == "/dev/pts/0" if os.geteuid() == 0 else re.fullmatch(r"/dev/pts/\d+", name), out
        assert client.api.exec_inspect(exec_id)["ProcessConfig"]["tty"] is True
        # and the other way round: no terminal, raw framing
        exec_id = client.api.exec_create(c.id, ["tty"], tty=False)["Id"]
        out = client.api.exec_start(exec_id, tty=True)
        assert out.decode().strip() == "not a tty", out
    finally:
        c.remove(force=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, daemon):
    reg = Registry(tmp_path_factory.mktemp("registry"), netns=daemon.netns and daemon.netns.path)
    yield reg
    reg.stop()


def brandpyd(*args: str) -> subprocess.CompletedProcess:
    """A daemon start that is expected to fail at once."""
    return subprocess.run([sys.executable, "-m", "brandpy", "daemon", "-H", "unix:///nonexistent/s",
                           *args], capture_output=True, text=True, timeout=60)


def test_daemon_json_mirrors_and_flags(tmp_path):
    # a daemon of its own (as root in a network namespace of its own), and its mirror there
    ns = Netns() if os.geteuid() == 0 else None
    registry = Registry(tmp_path / "registry", netns=ns and ns.path)
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({
        "registry-mirrors": ["http://127.0.0.1:9/", f"http://{registry.addr}"],
        "insecure-registries": ["10.0.0.0/8", "registry.invalid:5000"],
        "default-runtime": "brandpy-python",
        "log-driver": "json-file", "log-opts": {"max-size": "1m", "max-file": "2"}}))
    d = Daemon(args=["--config-file", str(config)], netns=ns or False).start()
    try:
        # Docker Hub's busybox, as a mirror holds it
        d.ok("import", str(image_tar("busybox")), "busybox:latest")
        d.ok("tag", "busybox", f"{registry.addr}/library/busybox:mirrored")
        d.ok("push", f"{registry.addr}/library/busybox:mirrored")
        d.ok("rmi", "busybox", f"{registry.addr}/library/busybox:mirrored")
        # the first mirror is down, the second serves it: Docker Hub is never asked
        d.ok("pull", "busybox:mirrored")
        out = json.loads(d.ok("inspect", "busybox:mirrored"))[0]
        assert out["RepoTags"] == ["busybox:mirrored"]
        assert out["RepoDigests"][0].startswith("busybox@sha256:")
        info = d.client().info()
        assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:9/",
                                                      f"http://{registry.addr}/"]
        assert "10.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
        assert "registry.invalid:5000" in info["RegistryConfig"]["IndexConfigs"]
        assert info["LoggingDriver"] == "json-file"
        assert "Registry Mirrors:" in d.ok("info")
        assert info["DefaultRuntime"] == "brandpy-python"
        # what the registry holds, without a pull: through the mirror too
        dist = d.client().api.inspect_distribution("busybox:mirrored")
        assert dist["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
        assert "busybox@" + dist["Descriptor"]["digest"] == out["RepoDigests"][0]
        d.ok("create", "--name", "rt1", "busybox:mirrored", "true")
        assert d.ok("inspect", "-f", "{{.HostConfig.Runtime}} {{.Brandpy.Engine}}",
                    "rt1").split() == ["brandpy-python", "python"]
    finally:
        d.destroy()
        registry.stop()
        if ns is not None:
            ns.remove()
    # dockerd's rules: no setting both ways, no unknown or unapplied option
    r = brandpyd("--config-file", str(config), "--registry-mirror", "https://m.invalid")
    assert r.returncode == 2 and ("the following directives are specified both as a flag and "
                                  "in the configuration file: registry-mirrors: (from flag: "
                                  "[https://m.invalid], from file: [http://127.0.0.1:9/ ") in r.stderr
    for content, error in (({"nosuch": 1}, "don't match any configuration option: nosuch"),
                           ({"iptables": False}, "does not apply these dockerd options: iptables"),
                           ({"registry-mirrors": ["ftp://x"]}, "unsupported scheme 'ftp'"),
                           ({"log-driver": "syslog"}, "'syslog' is not supported by brandpy"),
                           ({"labels": ["nolabel"]}, "bad attribute format: nolabel"),
                           ({"default-runtime": "runc"}, "default runtime 'runc' does not exist")):
        config.write_text(json.dumps(content))
        r = brandpyd("--config-file", str(config))
        assert r.returncode == 2 and error in r.stderr, (content, r.stderr)
    r = brandpyd("--config-file", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "missing.json" in r.stderr


def test_daemon_json_reload_on_sighup(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:9/"],
                                  "labels": ["tier=a"], "log-driver": "json-file"}))
    d = Daemon(args=["--config-file", str(config), "--insecure-registry", "10.0.0.0/8"])
    try:
        client = d.start().client()
        since = time.time()
        info = client.info()
        assert info["Labels"] == ["tier=a"] and info["DefaultRuntime"] == "brandpy"

        def hup_and_log(needle: str) -> None:
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: needle in d.log.read_text())

        # the reloadable settings change; the flag's insecure registry stays;
        # the log driver waits for a restart, as in dockerd
        config.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:10/"],
                                      "default-runtime": "brandpy-python",
                                      "labels": ["tier=b", "zone=x", "zone=x"],
                                      "log-driver": "local"}))
        hup_and_log("log-driver changed: not reloaded")
        info = client.info()
        assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:10/"]
        assert "10.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
        assert info["DefaultRuntime"] == "brandpy-python"
        assert info["Labels"] == ["tier=b", "zone=x"]
        assert info["LoggingDriver"] == "json-file"
        assert "tier=b" in d.ok("info")
        # a file that does not check out is logged and changes nothing
        for content, error in (("{not json", "invalid JSON"),
                               (json.dumps({"default-runtime": "runc"}),
                                "default runtime 'runc' does not exist"),
                               (json.dumps({"insecure-registries": ["x:1"]}),
                                "specified both as a flag and in the configuration file"),
                               (json.dumps({"labels": ["k=1", "k=2"]}),
                                "conflict labels for k=2 and k=1")):
            config.write_text(content)
            hup_and_log(error)
            now = client.info()
            assert (now["RegistryConfig"], now["DefaultRuntime"], now["Labels"]) == \
                (info["RegistryConfig"], "brandpy-python", ["tier=b", "zone=x"])
        # a key left out keeps its value (dockerd's IsValueSet)
        config.write_text(json.dumps({"labels": []}))
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: client.info()["Labels"] == [])
        assert client.info()["DefaultRuntime"] == "brandpy-python"
        # docker events: one daemon reload event per applied reload, none for the refused
        out = d.ok("events", "--since", str(since), "--until", str(time.time() + 1),
                   "--filter", "type=daemon", "--format", "{{json .}}")
        events = [json.loads(line) for line in out.splitlines()]
        assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in events] == \
            [("daemon", "reload", info["ID"])] * 2
        attrs = events[0]["Actor"]["Attributes"]
        assert attrs["default-runtime"] == "brandpy-python"
        assert attrs["registry-mirrors"] == '["http://127.0.0.1:10/"]'
        assert attrs["insecure-registries"] == '["10.0.0.0/8"]'
        assert attrs["labels"] == '["tier=b","zone=x"]'
        assert attrs["name"] == info["Name"]
        assert attrs["runtimes"].startswith("brandpy:/")
        assert events[1]["Actor"]["Attributes"]["labels"] == "[]"
        assert not d.internal_errors()
    finally:
        d.destroy()


def test_runtimes(daemon, client):
    r = daemon.docker("run", "--rm", "--runtime", "runc", "busybox", "true")
    assert r.status == 125 and "unknown or invalid runtime name: runc" in r.err, r
    assert set(client.info()["Runtimes"]) == {"brandpy", "brandpy-python"}
    try:
        for runtime, engine in (("", "native"), ("brandpy", "native"),
                                ("brandpy-python", "python")):
            args = ["--runtime", runtime] if runtime else []
            assert daemon.ok("run", "--name", "rt", *args, "busybox", "echo", "hi") == "hi\n"
            assert daemon.ok("inspect", "-f", "{{.HostConfig.Runtime}} {{.Brandpy.Engine}}",
                             "rt").split() == [runtime or "brandpy", engine]
            daemon.ok("rm", "rt")
        # the older way, the brandpy.engine label, names the runtime too
        c = client.containers.create("busybox", "true", labels={"brandpy.engine": "python"})
        assert c.attrs["HostConfig"]["Runtime"] == "brandpy-python"
        c.remove()
        with pytest.raises(docker.errors.APIError, match="contradicts --runtime brandpy"):
            client.containers.create("busybox", "true", runtime="brandpy",
                                     labels={"brandpy.engine": "python"})
    finally:
        daemon.docker("rm", "-f", "rt")


def test_log_drivers(daemon, client):
    try:
        # none: nothing kept, but an attached run still sees its output
        assert daemon.ok("run", "--name", "ln", "--log-driver", "none", "busybox",
                         "echo", "hi") == "hi\n"
        r = daemon.docker("logs", "ln")
        assert r.status != 0 and "configured logging driver does not support reading" in r.err
        assert daemon.ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "ln") == "none\n"
        # json-file and local rotate: what is kept is the end of the output, in order
        for name, args in (("lj", ["--log-opt", "max-size=2k", "--log-opt", "max-file=3"]),
                           ("ll", ["--log-driver", "local", "--log-opt", "max-size=2k",
                                   "--log-opt", "max-file=3"])):
            daemon.ok("run", "--name", name, *args, "busybox", "seq", "1", "500")
            path = daemon.ok("inspect", "-f", "{{.LogPath}}", name).strip()
            kept = sorted(p.name for p in Path(path).parent.iterdir()
                          if p.name.startswith("json.log"))
            suffix = ".gz" if name == "ll" else ""     # local compresses by default
            assert kept == ["json.log", f"json.log.1{suffix}", f"json.log.2{suffix}"], kept
            lines = [int(n) for n in daemon.ok("logs", name).split()]
            assert lines == list(range(lines[0], 501)) and 20 < len(lines) < 200, lines
            assert daemon.ok("logs", "--tail", "3", name).split() == ["498", "499", "500"]
            tail = [int(n) for n in daemon.ok("logs", "--tail", str(len(lines) - 1), name).split()]
            assert tail == lines[1:]
        c = client.containers.create("busybox", "true", log_config={"Type": "local"})
        assert c.attrs["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {}}
        c.remove()
    finally:
        daemon.docker("rm", "-f", "ln", "lj", "ll")
    # dockerd's errors, at create
    for args, error in ((["--log-driver", "asdf"],
                         'error looking up logging plugin asdf: plugin "asdf" not found'),
                        (["--log-opt", "max-file=0"], "max-file cannot be less than 1"),
                        (["--log-opt", "foo=bar"], "unknown log opt 'foo' for json-file log "
                                                   "driver"),
                        (["--log-driver", "local", "--log-opt", "max-size=x"],
                         "invalid size: 'x'")):
        r = daemon.docker("create", *args, "busybox", "true")
        assert r.status != 0 and error in r.err, (args, r)


@pytest.mark.parametrize("compress", [False, True])
def test_log_follow_across_rotation(tmp_path, compress):
    """`docker logs -f` keeps up while the shim rotates under it (once
    per poll at most: a file rotated away twice between polls is gone)."""
    path = tmp_path / "json.log"
    writer = LogWriter(str(path), Rotation(max_size=1000, max_file=3, compress=compress))
    writer.write("stdout", b"-1\n")     # before the reader: tail=0 skips it
    opened, done = threading.Event(), threading.Event()

    def write() -> None:
        opened.wait(10)
        for n in range(100):
            writer.write("stdout", f"{n}\n".encode())
            if n % 10 == 9:
                time.sleep(logs.FOLLOW_POLL * 2.5)
        writer.close()
        done.set()

    def alive() -> bool:
        opened.set()       # called once the reader has its file open
        return not done.is_set()

    async def follow() -> list[int]:
        return [int(entry.data) async for entry in logs.read(
            path, stdout=True, stderr=True, tail=0, since=None, until=None, follow=True,
            alive=alive)]

    thread = threading.Thread(target=write)
    thread.start()
    seen = asyncio.run(follow())
    thread.join()
    assert seen == list(range(100))
    assert len(logs.rotated(path)) == 2


def test_logs_take_what_the_shim_has_not_read_yet(tmp_path):
    """`docker logs` right after a process wrote: the shim logs what is
    in its pipes when asked (Session.pull), before its loop gets to it."""
    loop = asyncio.new_event_loop()
    session = Session(tty=False, open_stdin=False)
    writer = LogWriter(str(tmp_path / "json.log"))
    try:
        session.begin(loop, writer)
        os.write(session.child.stdio[1], b"out\n")
        os.write(session.child.stdio[2], b"err\n")
        session.pull()       # the loop never ran
        async def entries() -> list[tuple[str, bytes]]:
            return [(e.stream, e.data) async for e in logs.read(
                tmp_path / "json.log", stdout=True, stderr=True, tail=-1, since=None,
                until=None, follow=False, alive=lambda: True)]
        assert sorted(asyncio.run(entries())) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    finally:
        session.child.close()
        session.stop_reading()
        writer.close()
        loop.close()


def test_health_checks_run(daemon, client):
    second = 1_000_000_000
    events = client.events(decode=True, filters={"event": "health_status"})
    try:
        ok = client.containers.run("busybox", "sleep 60", detach=True, name="hc-ok",
                                   healthcheck={"test": "true", "interval": second // 5,
                                                "timeout": second, "retries": 1})
        bad = client.containers.run("busybox", "sleep 60", detach=True, name="hc-bad",
                                    healthcheck={"test": ["CMD", "false"],
                                                 "interval": second // 5, "retries": 2})
        # failures within the start period do not count; the third try succeeds
        slow = client.containers.run("busybox", "sleep 60", detach=True, name="hc-slow",
                                     healthcheck={"test": "echo x >> /n; test $(wc -l < /n) -ge 3",
                                                  "interval": second // 5, "retries": 1,
                                                  "start_period": 3 * second})
        hung = client.containers.run("busybox", "sleep 60", detach=True, name="hc-hung",
                                     healthcheck={"test": "sleep 30", "interval": second // 5,
                                                  "timeout": second // 5, "retries": 1})

        def status(c) -> str:     # noqa: ANN001
            c.reload()
            return c.attrs["State"]["Health"]["Status"]

        waiting = client.containers.create("busybox", "sleep 60", name="hc-wait",
                                           healthcheck={"test": "true", "interval": 60 * second})
        assert "Health" not in waiting.attrs["State"]     # checks begin at start
        waiting.start()
        assert status(waiting) == "starting"
        wait_for(lambda: status(ok) == "healthy", 15)
        wait_for(lambda: status(bad) == "unhealthy", 15)
        wait_for(lambda: status(slow) == "healthy", 15)
        wait_for(lambda: status(hung) == "unhealthy", 15)
        assert bad.attrs["State"]["Health"]["FailingStreak"] >= 2
        assert bad.attrs["State"]["Health"]["Log"][-1]["ExitCode"] == 1
        hung.reload()
        assert hung.attrs["State"]["Health"]["Log"][-1]["Output"].startswith(
            "Health check exceeded timeout")
        assert "(healthy)" in daemon.ok("ps", "--filter", "name=hc-ok", "--format",
                                         "{{.Status}}")
        assert daemon.ok("ps", "-q", "--filter", "health=unhealthy").split() == sorted(
            [bad.short_id, hung.short_id], key=daemon.ok("ps", "-q").split().index)
        seen = set()
        for ev in events:
            seen.add((ev["Actor"]["Attributes"]["name"], ev["Action"]))
            if len(seen) == 4:
                break
        assert seen == {("hc-ok", "health_status: healthy"), ("hc-bad", "health_status: unhealthy"),
                        ("hc-slow", "health_status: healthy"),
                        ("hc-hung", "health_status: unhealthy")}
        ok.stop(timeout=1)
        assert status(ok) == "unhealthy"     # dockerd's rule for a stopped container
        # probes past their timeout were killed: one at most runs (the current one)
        assert daemon.ok("top", "hc-hung").count("sleep 30") <= 1
    finally:
        events.close()
        for name in ("hc-ok", "hc-bad", "hc-slow", "hc-hung", "hc-wait"):
            daemon.docker("rm", "-f", name)


def test_stats_have_networks(daemon, client):
    c = client.containers.run("busybox", "sleep 30", detach=True)
    try:
        stats = c.stats(stream=False)
        # the keys docker-py's tests and `docker stats` read; unprivileged no interfaces
        # of its own, as root its namespace's
        for key in ("read", "networks", "precpu_stats", "cpu_stats", "memory_stats",
                    "blkio_stats"):
            assert key in stats, key
        assert list(stats["networks"]) == (["eth0"] if daemon.netns else [])
    finally:
        c.remove(force=True)


def test_update_stores_resources(client):
    c = client.containers.run("busybox", "sleep 30", detach=True, mem_limit=400 << 20)
    try:
        warnings = client.api.update_container(c.id, mem_limit=300 << 20, blkio_weight=500,
                                               cpuset_cpus="0")["Warnings"]
        c.reload()
        assert (c.attrs["HostConfig"]["Memory"], c.attrs["HostConfig"]["BlkioWeight"],
                c.attrs["HostConfig"]["CpusetCpus"]) == (300 << 20, 500, "0")
        assert ("Memory: memory limits are not enforced (no cgroups)" in warnings) == \
            ("memory" not in cgroups.enforceable()), warnings
        assert "BlkioWeight: resource limits are not enforced (no cgroups)" in warnings
        assert "CpusetCpus: applies from the container's next start" in warnings
        with pytest.raises(docker.errors.APIError, match="cpuset"):
            client.api.update_container(c.id, cpuset_cpus="nonsense")
    finally:
        c.remove(force=True)


def test_commit_right_after_start(client):
    """docker-py commits a container it has just started (pause is the
    default): one that ends meanwhile is committed as stopped, not a 409.
    The race is hit about one time in three, so ten tries find it."""
    for n in range(10):
        c = client.containers.run("busybox", ["touch", f"/made-{n}"], detach=True)
        try:
            image = client.api.commit(c.id, repository="committed", tag=str(n))["Id"]
            client.images.remove(image)
        finally:
            c.remove(force=True)


def test_start_answers_once_the_program_runs(client):
    """docker-py reads logs right after start: start answers once the
    entrypoint's execve has succeeded (before, its process was often still
    the runtime's child, before exec), and logs takes what the shim has
    not read yet."""
    c = client.containers.create("busybox", ["sleep", "30"],
                                 labels={"brandpy.inject": "execve:delay=300ms"})
    try:
        c.start()
        c.reload()
        exe = os.readlink(f"/proc/{c.attrs['State']['Pid']}/exe")
        assert exe.endswith("/bin/busybox"), exe
    finally:
        c.remove(force=True)


def test_attach_replays_the_log_of_an_exited_container(client):
    """docker-py reads an attach's response head buffered and its stream
    from the raw socket: a log sent with the head was lost (about one in
    three here before the daemon waited for the head to be read)."""
    for _ in range(15):
        c = client.api.create_container("busybox", "echo hello")
        try:
            client.api.start(c)
            client.api.wait(c, condition="not-running")
            assert client.api.attach(c, stream=False, logs=True) == b"hello\n"
        finally:
            client.api.remove_container(c, force=True)


def test_diff_hides_the_runtimes_mount_points(daemon):
    try:
        daemon.ok("run", "--name", "df1", "busybox", "touch", "/test")
        # /etc/hosts and friends are mount points, not changes: nor is /etc then
        assert daemon.ok("diff", "df1") == "A /test\n"
        daemon.ok("run", "--name", "df2", "busybox", "touch", "/etc/mine")
        assert daemon.ok("diff", "df2") == "C /etc\nA /etc/mine\n"
    finally:
        daemon.docker("rm", "df1", "df2")


def test_distribution_inspect(daemon, client, registry):
    name = f"{registry.addr}/dist/bb"
    daemon.ok("tag", "busybox", f"{name}:1")
    daemon.ok("push", f"{name}:1")
    daemon.ok("rmi", f"{name}:1")
    data = client.api.inspect_distribution(f"{name}:1")
    assert data["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    assert data["Descriptor"]["mediaType"] in (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json")
    assert f"{name}:1" not in [t for i in client.images.list() for t in i.tags]   # no pull
    with pytest.raises(docker.errors.NotFound):
        client.api.inspect_distribution(f"{name}:nosuch")


def test_network_configuration_stored(daemon, client):
    """IPAM pools, endpoint settings and links are kept and shown as dockerd
    keeps them; no address is invented (containers have none of their own)."""
    pool = {"Subnet": "172.28.0.0/16", "IPRange": "172.28.5.0/24", "Gateway": "172.28.5.254",
            "AuxiliaryAddresses": {"a": "172.28.1.5", "b": "172.28.1.6"}}
    net = client.api.create_network("pools 1", ipam={"Driver": "default", "Config": [pool]})
    created = []
    try:
        ipam = client.api.inspect_network("pools 1")["IPAM"]     # a name with a space
        assert ipam == {"Driver": "default", "Options": None, "Config": [pool]}
        with pytest.raises(docker.errors.APIError, match="Pool overlaps"):
            created.append(client.api.create_network("pools-2", ipam={"Config": [
                {"Subnet": "172.28.9.0/24"}]})["Id"])
        with pytest.raises(docker.errors.APIError, match="invalid CIDR address"):
            client.api.create_network("pools-3", ipam={"Config": [{"Subnet": "nonsense"}]})
        # create without CheckDuplicate: a second network of that name, with a warning
        second = client.api.create_network("pools 1", check_duplicate=False)
        created.append(second["Id"])
        assert "already exists" in second["Warning"]
        with pytest.raises(docker.errors.APIError, match="ambiguous"):
            client.api.inspect_network("pools 1")
        client.api.remove_network(second["Id"])
        created.remove(second["Id"])

        endpoint = client.api.create_endpoint_config(
            aliases=["foo", "bar"], links=[("upstream", "up")], ipv4_address="172.28.5.24",
            link_local_ips=["169.254.8.8"], driver_opt={"com.example": "on"},
            mac_address="02:42:ac:11:00:02")
        c = client.api.create_container(
            "busybox", "sleep 30", name="ep1",
            host_config=client.api.create_host_config(network_mode="pools 1"),
            networking_config=client.api.create_networking_config({"pools 1": endpoint}))
        client.api.start(c)
        ep = client.api.inspect_container(c)["NetworkSettings"]["Networks"]["pools 1"]
        assert ep["Aliases"] == ["foo", "bar"] and ep["Links"] == ["upstream:up"]
        assert ep["IPAMConfig"] == {"IPv4Address": "172.28.5.24", "LinkLocalIPs": ["169.254.8.8"]}
        assert ep["DriverOpts"] == {"com.example": "on"}
        # as root the address asked for is the container's; unprivileged none is invented
        assert ep["MacAddress"] == "02:42:ac:11:00:02"
        assert ep["IPAddress"] == ("172.28.5.24" if daemon.netns else "")
        assert list(client.api.inspect_network(net["Id"])["Containers"]) == [c["Id"]]
        # the endpoint's link names the upstream container for ep1: as root by the
        # network's resolver, unprivileged in /etc/hosts
        client.containers.run("busybox", "sleep 30", name="upstream", detach=True,
                              network="pools 1")
        if daemon.netns:
            ip = client.api.inspect_container("upstream")["NetworkSettings"]["Networks"][
                "pools 1"]["IPAddress"]
            assert ip in daemon.ok("exec", "ep1", "nslookup", "up").split("Name:")[-1]
            assert daemon.docker("exec", "upstream", "nslookup", "up").status != 0
        else:
            assert "up" in daemon.ok("exec", "ep1", "cat", "/etc/hosts").split()
        with pytest.raises(docker.errors.APIError, match="on user defined networks only"):
            client.api.connect_container_to_network("upstream", "bridge", ipv4_address="10.0.0.1")
        quiet = client.api.create_container("busybox", "true", name="ep2")
        with pytest.raises(docker.errors.APIError, match="no configured subnet or ip-range"):
            client.api.connect_container_to_network(quiet, net["Id"], ipv4_address="10.9.9.9")
        # a created container connected with a MAC address shows it
        client.api.connect_container_to_network(quiet, net["Id"], mac_address="02:42:ac:11:00:03")
        assert client.api.inspect_container(quiet)["NetworkSettings"]["Networks"]["pools 1"][
            "MacAddress"] == "02:42:ac:11:00:03"
    finally:
        for name in ("ep1", "ep2", "upstream"):
            daemon.docker("rm", "-f", name)
        for net_id in [net["Id"], *created]:
            client.api.remove_network(net_id)


def test_legacy_links(daemon, client):
    try:
        client.containers.run("busybox", "sleep 30", name="lk1", detach=True,
                              environment={"FOO": "1"}, ports={"80/tcp": 18480})
        client.containers.run("busybox", "sleep 30", name="lk2", detach=True,
                              environment={"FOO": "2"})
        out = daemon.ok("run", "--name", "lk3", "--link", "lk1:one", "--link", "lk2:two-b",
                        "busybox", "sh", "-c", "env; cat /etc/hosts")
        lines = out.split("\n")
        # as root a linked container is at its address and port; unprivileged on
        # loopback at its published port
        ip, port = (client.api.inspect_container("lk1")["NetworkSettings"]["IPAddress"], "80") \
            if daemon.netns else ("127.0.0.1", "18480")
        for var in ("ONE_NAME=/lk3/one", "ONE_ENV_FOO=1", "TWO_B_NAME=/lk3/two-b",
                    "TWO_B_ENV_FOO=2", f"ONE_PORT=tcp://{ip}:{port}",
                    f"ONE_PORT_80_TCP_PORT={port}", "ONE_PORT_80_TCP_PROTO=tcp"):
            assert var in lines, (var, out)
        assert any(line.split()[1:] == ["one"] for line in lines if line.startswith(ip + "\t"))
        names = {n for c in client.api.containers(all=True) for n in c["Names"]}
        assert {"/lk1", "/lk3/one", "/lk3/two-b"} <= names
        # docker rm --link: the link goes, the containers stay
        client.api.remove_container("lk3/one", link=True)
        assert client.api.inspect_container("lk3")["HostConfig"]["Links"] == ["lk2:two-b"]
        assert "/lk3/one" not in {n for c in client.api.containers(all=True) for n in c["Names"]}
        assert len(client.api.containers(all=True, filters={"name": "lk"})) == 3
        r = daemon.docker("create", "--link", "nosuch:x", "busybox", "true")
        assert r.status != 0 and "could not get container for nosuch" in r.err
        daemon.ok("stop", "-t", "0", "lk2")
        r = daemon.docker("start", "lk3")
        assert r.status != 0 and "Cannot link to a non running container: /lk2 AS /lk3/two-b" \
            in r.err
    finally:
        daemon.docker("rm", "-f", "lk1", "lk2", "lk3")


def build_lines(client, dockerfile: str, **kw) -> list[dict]:
    return list(client.api.build(fileobj=io.BytesIO(dockerfile.encode()), decode=True, rm=True,
                                 **kw))


def test_build_options(daemon, client, tmp_path):
    # .dockerignore: what it names stays out of the image, the Dockerfile and itself too
    (tmp_path / "Dockerfile").write_text("FROM busybox\nADD . /test\n")
    (tmp_path / ".dockerignore").write_text("Dockerfile\n.dockerignore\nsecret*\n!secret-ok\n")
    for name in ("kept", "secret", "secret-ok"):
        (tmp_path / name).write_text(name)
    daemon.ok("build", "-q", "-t", "ignored:1", str(tmp_path), env={"DOCKER_BUILDKIT": "0"})
    assert daemon.ok("run", "--rm", "ignored:1", "ls", "-A", "/test").split() == [
        "kept", "secret-ok"]
    # cache_from: only those images (and their parents) are a cache
    script = "FROM busybox\nENV FOO=bar\nRUN touch /baz\nRUN touch /bax\n"
    build_lines(client, script, tag="cached:1")
    hits = sum("Using cache" in line.get("stream", "")
               for line in build_lines(client, script, tag="cached:2", cache_from=["cached:1"]))
    assert hits == 3
    hits = sum("Using cache" in line.get("stream", "")
               for line in build_lines(client, script, tag="cached:3", cache_from=["nosuch"]))
    assert hits == 0
    # extra_hosts and network_mode reach the RUN containers
    build_lines(client, "FROM busybox\nRUN grep -w extra.test /etc/hosts\n", tag="hosts:1",
                extra_hosts={"extra.test": "127.0.0.1"})
    assert client.images.get("hosts:1")
    net = client.networks.create("buildnet")
    peer = client.containers.run("busybox", "sleep 30", detach=True)
    try:
        client.api.connect_container_to_network(peer.id, net.id, aliases=["pingtarget.docker"])
        # as root the network's resolver names the peer, unprivileged /etc/hosts
        lookup = "nslookup pingtarget.docker" if daemon.netns else \
            "grep -w pingtarget.docker /etc/hosts"
        script = f"FROM busybox\nRUN {lookup}\n"
        assert "errorDetail" not in build_lines(client, script, network_mode=net.id,
                                                tag="withnet:1")[-1]
        failed = build_lines(client, script, network_mode="none", nocache=True)
        assert failed[-1]["errorDetail"] == {
            "message": f"The command '/bin/sh -c {lookup}' returned a non-zero code: 1",
            "code": 1}
    finally:
        peer.remove(force=True)
        net.remove()
    # a step's stderr in red, as dockerd shows it
    lines = build_lines(client, "FROM busybox\nRUN sh -c '>&2 echo to stderr'\n", nocache=True)
    assert "\x1b[91mto stderr\n\x1b[0m" in [line.get("stream") for line in lines]
    for tag in ("ignored:1", "cached:1", "cached:2", "cached:3", "hosts:1", "withnet:1"):
        client.images.remove(tag)


def test_answers_docker_py_reads(daemon, client):
    """Fields and messages docker-py's tests read, as dockerd 20.10 gives them."""
    c = client.api.create_container("busybox", ["touch", "/test"])
    client.api.start(c)
    client.api.wait(c)
    image = client.api.inspect_image(client.api.commit(c)["Id"])
    try:
        # a committed image names its container and keeps its config
        assert image["Container"] == c["Id"] and image["ContainerConfig"]["Image"] == "busybox"
        assert image["Config"]["OnBuild"] is None and "Entrypoint" in image["Config"]
    finally:
        client.api.remove_container(c)
        client.api.remove_image(image["Id"])
    # an exec that cannot start ends with 126, as on dockerd
    runner = client.containers.run("busybox", "sleep 30", detach=True)
    try:
        assert runner.exec_run("nosuch command")[0] == 126
        with pytest.raises(docker.errors.APIError, match="You cannot remove a running container"):
            runner.remove()
    finally:
        runner.remove(force=True)
    # a container between two runs of its restart policy is restarting, not removable
    c = client.api.create_container("busybox", ["sleep", "1"], host_config=client.api.
                                    create_host_config(restart_policy={"Name": "always"}))
    client.api.start(c)
    client.api.wait(c)
    try:
        with pytest.raises(docker.errors.APIError, match="You cannot remove a (restarting|running) "):
            client.api.remove_container(c)
    finally:
        client.api.remove_container(c, force=True)
    with pytest.raises(docker.errors.NotFound, match="error looking up volume plugin"):
        client.api.create_volume("vol-x", "invalid.driver")
