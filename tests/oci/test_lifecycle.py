"""The OCI lifecycle through brandpy-runc: create → created → start →
running → stopped → delete, with run, exec, ps, pause/resume, kill,
list, events --stats and the pid file, as containerd drives them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .conftest import Bundle, Runc, monitors, runtime_env

LOOP = ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; while :; do sleep 0.05; done"]


def proc_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def test_create_waits_for_start_then_runs_to_stopped(runc: Runc, bundle: Bundle, tmp_path):
    b = bundle(["sh", "-c", "echo ran > /tmp/ran; exit 3"])
    runc.ok("create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "c1")
    state = runc.state("c1")
    assert state["status"] == "created"
    assert state["bundle"] == str(b) and state["rootfs"] == str(b / "rootfs")
    pid = int((tmp_path / "pid").read_text())
    assert state["pid"] == pid and os.path.exists(f"/proc/{pid}")
    # the entrypoint exists, traced by the monitor, but its program has not run
    init = state["brandpy"]["initPid"]
    assert int(proc_field(init, "TracerPid")) == pid
    time.sleep(0.3)
    assert not (b / "rootfs" / "tmp" / "ran").exists()
    runc.ok("start", "c1")
    runc.wait_status("c1", "stopped")
    state = runc.state("c1")
    assert state["pid"] == 0 and state["brandpy"]["exitStatus"] == 3
    assert (b / "rootfs" / "tmp" / "ran").read_text() == "ran\n"
    runc.ok("delete", "c1")
    assert runc.fails("state", "c1") == "container c1 does not exist"
    assert not (runc.root / "c1").exists()


def test_run_in_the_foreground_passes_stdio_and_the_exit_status(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "read line; echo got $line; echo oops >&2; exit 42"])
    r = runc("run", "--bundle", str(b), "fg", input="hello\n")
    assert (r.status, r.out) == (42, "got hello\n"), r
    assert "oops" in r.err
    assert runc.ok("list", "-q") == ""   # run deletes what it created


def test_the_monitor_pid_exits_with_the_containers_status(runc: Runc, bundle: Bundle):
    """The pid a caller reaps stands for the container: killed by a
    signal, it exits 128+N, as containerd's shim then reports it."""
    b = bundle(["sleep", "30"])
    run = subprocess.Popen(runc.cmd("run", "--bundle", str(b), "sig"), env=runtime_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not (runc.root / "sig" / "state.json").exists() or runc.status("sig") != "running":
        time.sleep(0.05)
    runc.ok("kill", "sig", "KILL")
    assert run.wait(10) == 128 + signal.SIGKILL


def test_kill_signals_by_name_and_number_and_init_ignores_unhandled(runc: Runc, bundle: Bundle):
    b = bundle(LOOP)
    runc.ok("run", "--detach", "--bundle", str(b), "k")
    assert runc.status("k") == "running"
    # a namespace's init only gets signals it handles: HUP is dropped
    runc.ok("kill", "k", "HUP")
    time.sleep(0.3)
    assert runc.status("k") == "running"
    runc.ok("kill", "k", str(int(signal.SIGTERM)))
    runc.wait_status("k", "stopped")
    assert runc.state("k")["brandpy"]["exitStatus"] == 7
    runc.ok("delete", "k")


def test_kill_all_reaches_every_process(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    runc.ok("run", "-d", "--bundle", str(b), "ka")
    time.sleep(0.5)
    assert len(json.loads(runc.ok("ps", "--format", "json", "ka"))) == 3
    runc.ok("kill", "--all", "ka", "SIGKILL")
    runc.wait_status("ka", "stopped")
    runc.ok("kill", "--all", "ka", "KILL")   # --all only suppresses "not running"
    runc.ok("delete", "ka")


def test_ps_lists_host_pids(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "sleep 30"])
    runc.ok("run", "-d", "--bundle", str(b), "p")
    state = runc.state("p")
    pids = json.loads(runc.ok("ps", "--format", "json", "p"))
    assert state["brandpy"]["initPid"] in pids
    table = runc.ok("ps", "p").splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert {int(line.split()[1]) for line in table[1:]} == set(pids)
    runc.ok("delete", "--force", "p")


def test_exec_foreground_with_args_and_with_a_process_file(runc: Runc, bundle: Bundle,
                                                           tmp_path):
    b = bundle(["sleep", "30"], process_env=["PATH=/bin:/usr/bin", "A=from-config"])
    runc.ok("run", "-d", "--bundle", str(b), "e")
    r = runc("exec", "--cwd", "/etc", "--env", "B=flag", "e", "sh", "-c",
             "pwd; echo $A $B; exit 9")
    assert (r.status, r.out) == (9, "/etc\nfrom-config flag\n"), r
    # a process.json's env is the whole environment (nothing of the init's added)
    process = {"args": ["env"], "env": ["ONLY=this"], "cwd": "/", "user": {"uid": 0,
                                                                                 "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    out = runc.ok("exec", "--process", str(tmp_path / "process.json"), "e")
    assert out == "ONLY=this\n"
    assert runc.ok("exec", "--user", "65534:65534", "e", "id").startswith(
        "uid=65534(nobody) gid=65534(nogroup)")
    assert "executable file not found" in runc.fails("exec", "e", "nosuch")
    runc.ok("delete", "--force", "e")


# containerd's shim in miniature: a child subreaper runs a command and
# reports the exit status of the pid it wrote to the pid file
SHIM = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1)   # PR_SET_CHILD_SUBREAPER
subprocess.run(sys.argv[2:], check=True)
pid = int(open(sys.argv[1]).read())
print(pid, flush=True)
while (got := os.waitpid(-1, 0))[0] != pid:
    pass
print(os.waitstatus_to_exitcode(got[1]))
"""


def shim(runc: Runc, pidfile: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([runc.cmd()[0], "-c", SHIM, str(pidfile), *runc.cmd(*args)],
                            stdout=subprocess.PIPE, text=True, env=runtime_env())


def test_exec_detached_leaves_a_proxy_that_stands_for_the_process(runc: Runc, bundle: Bundle,
                                                                  tmp_path):
    """containerd reaps (and signals) the pid in --pid-file: the proxy exits
    with the process's status, and killing it kills the process."""
    b = bundle(["sleep", "30"])
    runc.ok("run", "-d", "--bundle", str(b), "d")
    pidfile = tmp_path / "exec.pid"
    reaper = shim(runc, pidfile, "exec", "--detach", "--pid-file", str(pidfile), "d", "sh",
                  "-c", "sleep 0.3; exit 5")
    out, _ = reaper.communicate(timeout=20)
    assert out.split()[1] == "5"
    reaper = shim(runc, pidfile, "exec", "-d", "--pid-file", str(pidfile), "d", "sleep", "30")
    proxy = int(reaper.stdout.readline())
    assert len(json.loads(runc.ok("ps", "--format", "json", "d"))) == 2
    os.kill(proxy, signal.SIGKILL)
    assert reaper.stdout.readline().strip() == str(-signal.SIGKILL)   # killed, as we did
    reaper.wait(10)
    deadline = time.monotonic() + 10
    while len(json.loads(runc.ok("ps", "--format", "json", "d"))) != 1:
        assert time.monotonic() < deadline, "the exec'd process outlived its proxy"
        time.sleep(0.05)
    runc.ok("delete", "--force", "d")


def test_pause_freezes_and_resume_thaws(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "while :; do sleep 0.05; done"])
    runc.ok("run", "-d", "--bundle", str(b), "pz")
    runc.ok("pause", "pz")
    assert runc.status("pz") == "paused"
    time.sleep(0.2)
    init = runc.state("pz")["brandpy"]["initPid"]
    assert proc_field(init, "State").startswith("t")
    assert runc.fails("pause", "pz") == "container not running"
    assert "cannot exec in a paused container" in runc.fails("exec", "pz", "true")
    assert "not stopped: paused" in runc.fails("delete", "pz")
    runc.ok("resume", "pz")
    assert runc.status("pz") == "running"
    assert runc.fails("resume", "pz") == "container not paused"
    runc.ok("delete", "--force", "pz")


def test_delete_of_a_created_container_kills_its_waiting_process(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "echo ran > /tmp/ran"])
    runc.ok("create", "--bundle", str(b), "cr")
    runc.ok("delete", "cr")
    assert not (b / "rootfs" / "tmp" / "ran").exists()
    assert [m for m in monitors() if str(runc.root) in m] == []   # delete waited for it


def test_list_and_state_json(runc: Runc, bundle: Bundle):
    runc.ok("run", "-d", "--bundle", str(bundle(["sleep", "30"], name="a")), "one")
    runc.ok("create", "--bundle", str(bundle(["true"], name="b",
                                             annotations={"team": "x"})), "two")
    listed = {s["id"]: s for s in json.loads(runc.ok("list", "--format", "json"))}
    assert {k: v["status"] for k, v in listed.items()} == {"one": "running", "two": "created"}
    assert listed["two"]["annotations"] == {"team": "x"}
    assert runc.ok("list", "-q").split() == ["one", "two"]
    for cid in ("one", "two"):
        runc.ok("delete", "--force", cid)


def test_events_stats_count_the_syscalls_brandpy_trapped(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "while :; do uname -r >/dev/null; sleep 0.05; done"])
    runc.ok("run", "-d", "--bundle", str(b), "st")
    time.sleep(0.5)
    live = json.loads(runc.ok("events", "--stats", "st"))
    assert live["type"] == "stats" and live["id"] == "st"
    assert live["data"]["brandpy"]["PtraceStops"] > 0
    assert live["data"]["brandpy"]["Syscalls"]["execve"]["Calls"] > 0
    runc.ok("kill", "st", "KILL")
    runc.wait_status("st", "stopped")
    final = json.loads(runc.ok("events", "--stats", "st"))["data"]["brandpy"]
    assert final["PtraceStops"] >= live["data"]["brandpy"]["PtraceStops"]
    runc.ok("delete", "st")


def test_the_python_engine_runs_too(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "echo $((6*7))"])
    r = runc("--engine", "python", "run", "--bundle", str(b), "py")
    assert (r.status, r.out) == (0, "42\n"), r


def test_features_says_what_brandpy_honours(runc: Runc):
    features = json.loads(runc.ok("features"))
    assert features["ociVersionMin"] == "1.0.0"
    assert "startContainer" in features["hooks"]
    assert features["linux"]["cgroup"]["v2"] is False
    assert set(features["linux"]["namespaces"]) == {"mount", "network", "pid", "uts"}
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]


def test_version_and_brandpy_oci_subcommand(runc: Runc):
    out = subprocess.run(runc.cmd("--version")[:3] + ["--version"], capture_output=True,
                         text=True, env=runtime_env()).stdout
    assert out.startswith("brandpy-runc version ") and "spec: 1." in out
    r = subprocess.run([runc.cmd()[0], "-m", "brandpy", "oci", "--root", str(runc.root), "list"],
                       capture_output=True, text=True, env=runtime_env())
    assert r.returncode == 0 and r.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE",
                                                      "CREATED", "OWNER"]
