"""Containers driven by the real docker CLI: run, logs, ps, inspect, wait,
kill, pause, rename, exit codes, volumes, user, workdir, env, ports."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from tests.api.conftest import wait_for


def test_ping_and_version(daemon):
    out = json.loads(daemon.ok("version", "--format", "{{json .}}"))
    assert out["Client"]["ApiVersion"] == "1.50"
    assert out["Server"]["ApiVersion"] == "1.50"
    assert out["Server"]["MinAPIVersion"] == "1.24"


def test_run_rm_prints_and_exit_codes(daemon):
    r = daemon.docker("run", "--rm", "busybox", "echo", "hello")
    assert (r.status, r.out) == (0, "hello\n"), r
    assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").status == 3
    missing = daemon.docker("run", "--rm", "busybox", "nosuchcommand")
    assert missing.status == 127 and "executable file not found" in missing.err, missing
    unknown = daemon.docker("run", "--rm", "--pull=never", "nosuchimage")
    assert unknown.status == 125 and "No such image" in unknown.err, unknown
    # --rm removed them all, also the one that failed to start
    assert daemon.ok("ps", "-aq") == ""


def test_unknown_image_pull_failure_is_125(daemon):
    r = daemon.docker("run", "--rm", "127.0.0.1:1/nosuch")
    assert r.status == 125, r


def test_run_detached_logs_follow_stop_rm(daemon):
    cid = daemon.ok("run", "-d", "busybox", "sh", "-c",
                    "echo out1; echo err1 >&2; sleep 0.5; echo out2; trap 'exit 0' TERM; "
                    "while :; do sleep 0.1; done").strip()
    assert len(cid) == 64
    assert wait_for(lambda: "out2" in daemon.ok("logs", cid))
    r = daemon.docker("logs", cid)
    assert r.out == "out1\nout2\n" and r.err == "err1\n", r
    tail = daemon.ok("logs", "--tail", "1", "-t", cid)
    assert tail.endswith(" out2\n") and tail[:4].isdigit()
    stopped = daemon.docker("stop", "-t", "5", cid)
    assert stopped.status == 0, stopped
    info = json.loads(daemon.ok("inspect", cid))[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 0
    # logs -f of a stopped container ends at once
    assert daemon.docker("logs", "-f", cid, timeout=10).out == "out1\nout2\n"
    daemon.ok("rm", cid)
    assert daemon.docker("inspect", cid).status == 1


def test_logs_follow_ends_when_container_exits(daemon):
    cid = daemon.ok("run", "-d", "busybox", "sh", "-c",
                    "for i in 1 2 3; do echo $i; sleep 0.2; done").strip()
    r = daemon.docker("logs", "-f", cid, timeout=20)
    assert r.out == "1\n2\n3\n"
    daemon.ok("rm", cid)


def test_ps_filters_formats_and_inspect(daemon):
    a = daemon.ok("run", "-d", "--name", "ps-a", "--label", "team=x", "busybox",
                  "sleep", "60").strip()
    assert daemon.docker("run", "--name", "ps-b", "busybox", "sh", "-c", "exit 2").status == 2
    try:
        running = daemon.ok("ps", "--format", "{{.Names}}").split()
        assert "ps-a" in running and "ps-b" not in running
        everything = daemon.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines()
        assert any(line.startswith("ps-b Exited (2)") for line in everything), everything
        assert daemon.ok("ps", "-a", "--filter", "label=team=x", "--format",
                         "{{.Names}}").split() == ["ps-a"]
        assert daemon.ok("ps", "-a", "--filter", "exited=2", "--format",
                         "{{.Names}}").split() == ["ps-b"]
        assert daemon.ok("ps", "-a", "--filter", "status=running", "-q") == a[:12] + "\n"
        assert daemon.ok("ps", "-a", "--filter", "name=ps-", "-q").count("\n") == 2
        assert daemon.ok("inspect", "--format", "{{.State.Status}} {{.Config.Image}} "
                         "{{.HostConfig.LogConfig.Type}} {{.Name}}", "ps-a") == \
            "running busybox json-file /ps-a\n"
        assert daemon.ok("inspect", "-f", "{{.State.ExitCode}}", "ps-b") == "2\n"
    finally:
        daemon.ok("rm", "-f", "ps-a", "ps-b")


def test_wait_kill_pause_rename(daemon):
    trap = "trap 'exit 9' USR1; echo ready; while :; do sleep 0.1; done"
    cid = daemon.ok("run", "-d", "--name", "wk", "busybox", "sh", "-c", trap).strip()
    daemon.ok("pause", "wk")
    assert daemon.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "wk") == \
        "paused true\n"
    assert "(Paused)" in daemon.ok("ps", "--format", "{{.Status}}", "-f", "name=wk")
    daemon.ok("unpause", "wk")
    daemon.ok("rename", "wk", "wk2")
    assert daemon.ok("inspect", "-f", "{{.Name}} {{.State.Status}}", cid) == "/wk2 running\n"
    conflict = daemon.docker("rm", "wk2")
    assert conflict.status == 1 and "You cannot remove a running container" in conflict.err
    daemon.ok("rm", "-f", "wk2")
    # kill -s reaches the entrypoint once its handler is set (as in Docker,
    # PID 1 ignores signals it has no handler for)
    daemon.ok("run", "-d", "--name", "wk3", "busybox", "sh", "-c", trap)
    wait_for(lambda: daemon.ok("logs", "wk3") == "ready\n")
    daemon.ok("kill", "-s", "USR1", "wk3")
    assert daemon.ok("wait", "wk3", timeout=20) == "9\n"
    daemon.ok("rm", "wk3")


def test_stop_kills_a_container_that_ignores_sigterm(daemon):
    cid = daemon.ok("run", "-d", "busybox", "sleep", "60").strip()
    started = time.time()
    daemon.ok("stop", "-t", "1", cid)
    assert time.time() - started < 8
    assert daemon.ok("inspect", "-f", "{{.State.ExitCode}}", cid) == "137\n"
    daemon.ok("rm", cid)


def test_run_options_user_workdir_env_entrypoint(daemon, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("A=1\n# comment\nB=two words\n")
    assert daemon.ok("run", "--rm", "--env-file", str(envfile), "-e", "C=3", "busybox", "sh",
                     "-c", 'echo "$A|$B|$C"') == "1|two words|3\n"
    assert daemon.ok("run", "--rm", "--user", "nobody", "busybox", "id", "-u") == "65534\n"
    assert daemon.ok("run", "--rm", "-u", "1000:1000", "busybox", "id", "-u") == "1000\n"
    assert daemon.ok("run", "--rm", "-u", "1000:1000", "busybox", "id", "-g") == "1000\n"
    assert daemon.ok("run", "--rm", "--workdir", "/srv/app", "busybox", "pwd") == "/srv/app\n"
    assert daemon.ok("run", "--rm", "--entrypoint", "/bin/echo", "busybox", "a", "b") == "a b\n"
    assert daemon.ok("run", "--rm", "--hostname", "box1", "busybox", "hostname") == "box1\n"
    r = daemon.docker("run", "--rm", "--read-only", "--group-add", "app", "--ulimit",
                      "nofile=100:200", "--cpuset-cpus", "0", "busybox", "sh", "-c",
                      "id -G; ulimit -n; ulimit -Hn; touch /x || echo refused")
    assert r.out == "0 1000\n100\n200\nrefused\n" and "Read-only file system" in r.err, r
    r = daemon.docker("run", "--rm", "--device", "/dev/zero:/dev/z:r", "busybox", "sh", "-c",
                      "head -c 3 /dev/z | wc -c; echo x > /dev/z || echo refused")
    assert r.out == "3\nrefused\n", r
    bad = daemon.docker("run", "--rm", "--device", "/dev/nonexistent", "busybox", "true")
    # docker says 127 for any error naming a missing file, as for a missing command
    assert bad.status == 127 and "error gathering device information" in bad.err, bad
    bad = daemon.docker("run", "--rm", "--cpuset-cpus", "7-9", "busybox", "true")
    assert bad.status == 125 and "CPUs available here are" in bad.err, bad


def test_volumes_bind_and_named(daemon, tmp_path):
    host = tmp_path / "data"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = daemon.ok("run", "--rm", "-v", f"{host}:/data", "busybox", "sh", "-c",
                    "cat /data/in; echo from container > /data/out")
    assert out == "from host\n"
    assert (host / "out").read_text() == "from container\n"
    ro = daemon.docker("run", "--rm", "-v", f"{host}:/data:ro", "busybox", "sh", "-c",
                       "echo x > /data/nope")
    assert ro.status != 0 and "Read-only" in ro.err
    daemon.ok("run", "--rm", "-v", "cli-vol:/v", "busybox", "sh", "-c", "echo kept > /v/f")
    assert daemon.ok("run", "--rm", "-v", "cli-vol:/v", "busybox", "cat", "/v/f") == "kept\n"
    vol = json.loads(daemon.ok("volume", "inspect", "cli-vol"))[0]
    assert vol["Driver"] == "local" and vol["Mountpoint"].endswith("/cli-vol/_data")
    assert "cli-vol" in daemon.ok("volume", "ls", "-q").split()
    daemon.ok("volume", "rm", "cli-vol")


def test_published_port_is_reachable(daemon):
    port = _free_port()
    cid = daemon.ok("run", "-d", "-p", f"{port}:80", "busybox", "httpd", "-f", "-p", "80",
                    "-h", "/etc").strip()
    try:
        get = daemon.netns.fetch if daemon.netns else _get     # the daemon's host is there
        body = wait_for(lambda: get(f"http://127.0.0.1:{port}/hostname"), timeout=10)
        assert body.strip() == cid[:12]
        assert daemon.ok("port", cid) == f"80/tcp -> 0.0.0.0:{port}\n"
    finally:
        daemon.ok("rm", "-f", cid)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return None


def test_restart_policy_on_failure(daemon):
    cid = daemon.ok("run", "-d", "--restart", "on-failure:3", "busybox", "sh", "-c",
                    "exit 1").strip()
    wait_for(lambda: daemon.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}",
                               cid) == "3 exited\n", timeout=20)
    assert daemon.ok("inspect", "-f", "{{.State.ExitCode}}", cid) == "1\n"
    daemon.ok("rm", cid)


def test_top_and_stats(daemon):
    cid = daemon.ok("run", "-d", "busybox", "sh", "-c", "sleep 60").strip()
    try:
        top = daemon.ok("top", cid)
        assert top.splitlines()[0].split()[:3] == ["UID", "PID", "PPID"]
        assert "sleep 60" in top
        stats = daemon.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", cid)
        name = daemon.ok("inspect", "-f", "{{.Name}}", cid).strip().lstrip("/")
        assert stats.split() == [name, "1"]
    finally:
        daemon.ok("rm", "-f", cid)


def test_user_network_name_resolution(daemon):
    daemon.ok("network", "create", "appnet")
    port = _free_port()
    try:
        daemon.ok("run", "-d", "--name", "netdb", "--network", "appnet",
                  "--network-alias", "database", "busybox", "sh", "-c",
                  f"echo db-answer > /tmp/i; httpd -f -p {port} -h /tmp")
        # as root the embedded DNS names the peer, unprivileged /etc/hosts does
        lookup = "nslookup netdb | grep -c ^Name:" if daemon.netns else \
            "grep -w netdb /etc/hosts | cut -f2"
        out = daemon.ok("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                        f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://database:{port}/i "
                        f"&& break; sleep 0.2; done; {lookup}")
        assert out == ("db-answer\n1\n" if daemon.netns else "db-answer\nnetdb\n"), out
        members = daemon.ok("network", "inspect", "appnet", "--format",
                            "{{range .Containers}}{{.Name}} {{end}}")
        assert members.split() == ["netdb"]
        busy = daemon.docker("network", "rm", "appnet")
        assert busy.status == 1 and "has active endpoints" in busy.err
        outside = daemon.docker("run", "--rm", "busybox", "sh", "-c",
                                f"grep netdb /etc/hosts || timeout 3 wget -qO- http://netdb:{port}/i")
        assert outside.status != 0       # not on the default network
    finally:
        daemon.docker("rm", "-f", "netdb")
        daemon.ok("network", "rm", "appnet")
    assert "appnet" not in daemon.ok("network", "ls", "--format", "{{.Name}}").split()


def test_tmpfs_and_mount_flags(daemon):
    r = daemon.docker("run", "--rm", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                      "echo t > /scratch/f && cat /scratch/f")
    assert (r.status, r.out) == (0, "t\n"), r
    sized = daemon.docker("run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox", "true")
    assert "size limits are not enforced" in sized.err        # said, never faked
    assert daemon.ok("run", "--rm", "--mount", "type=volume,src=mnt-vol,dst=/m", "busybox",
                     "sh", "-c", "echo in > /m/x; cat /m/x") == "in\n"
    assert daemon.ok("run", "--rm", "--mount", "type=volume,src=mnt-vol,dst=/m,readonly",
                     "busybox", "cat", "/m/x") == "in\n"
    daemon.ok("volume", "rm", "mnt-vol")
    anon = daemon.ok("create", "-v", "/anon", "busybox", "true").strip()
    vol = daemon.ok("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", anon).strip()
    assert len(vol) == 64 and vol in daemon.ok("volume", "ls", "-q").split()
    daemon.ok("rm", "-v", anon)
    assert vol not in daemon.ok("volume", "ls", "-q").split()


def test_logs_since_until_and_timestamps(daemon):
    cid = daemon.ok("run", "-d", "busybox", "sh", "-c", "echo early; sleep 1.2; echo late"
                    ).strip()
    daemon.ok("wait", cid)
    lines = daemon.ok("logs", "-t", cid).splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["early", "late"]
    late_time = lines[1].split(" ", 1)[0]
    assert daemon.ok("logs", "--since", late_time, cid) == "late\n"
    assert daemon.ok("logs", "--until", lines[0].split(" ", 1)[0], cid) == "early\n"
    daemon.ok("rm", cid)


def test_security_options_and_capabilities(daemon, tmp_path):
    chown = "touch /f; chown 1:1 /f && echo changed"
    assert daemon.ok("run", "--rm", "busybox", "sh", "-c", chown) == "changed\n"
    dropped = daemon.docker("run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c", chown)
    assert dropped.status == 1 and "Operation not permitted" in dropped.err, dropped
    profile = tmp_path / "profile.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": '
                       '["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}')
    denied = daemon.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox",
                           "mkdir", "/x")
    assert denied.status == 1 and "Operation not permitted" in denied.err, denied
    assert daemon.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox",
                         "mkdir", "/x").status == 0
    bad = daemon.docker("run", "--rm", "--cap-add", "NOSUCH", "busybox", "true")
    assert bad.status == 125 and "unknown capability" in bad.err


def test_update_restart_policy_and_container_prune(daemon):
    cid = daemon.ok("create", "--label", "prune=me", "busybox", "true").strip()
    daemon.ok("update", "--restart", "on-failure:2", cid)
    assert daemon.ok("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} "
                     "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", cid) == "on-failure 2\n"
    # limits are stored, as dockerd stores them (tests/api/test_limits.py: enforced)
    limits = daemon.docker("update", "--memory", "64m", "--cpu-shares", "512", cid)
    assert limits.status == 0, limits
    assert daemon.ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} "
                     "{{.HostConfig.RestartPolicy.Name}}", cid) == "67108864 512 on-failure\n"
    keep = daemon.ok("run", "-d", "busybox", "sleep", "30").strip()
    try:
        out = daemon.ok("container", "prune", "-f", "--filter", "label=prune=me")
        assert cid in out
        assert daemon.docker("inspect", cid).status == 1
        assert daemon.ok("inspect", "-f", "{{.State.Running}}", keep) == "true\n"
    finally:
        daemon.ok("rm", "-f", keep)
