"""brandpy's research tools over the API, driven by the real docker CLI:
the trace (brandpy.trace labels, GET /brandpy/containers/{id}/trace), the
statistics and ledger (docker inspect's Brandpy key, GET .../syscalls),
docker events for unsupported calls, and seeded fault injection."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from tests.api.conftest import wait_for

# [pid     1] 12:00:00.123456 openat(AT_FDCWD, "/", O_RDONLY|...) = 3 <performed>
LINE = re.compile(r"^\[pid +(\d+)\] \d\d:\d\d:\d\d\.\d{6} (\w+)\((.*)\) = (.+) <([\w-]+)>$")


def brandpy(daemon, ref: str) -> dict:
    return json.loads(daemon.ok("inspect", ref))[0]["Brandpy"]


@pytest.mark.parametrize("engine", ["native", "python"])
def test_trace_of_ls_reads_as_strace_and_adds_up_to_the_stats(daemon, engine):
    name = f"traced-{engine}"
    r = daemon.docker("run", "--name", name, "--label", "brandpy.trace=1",
                      "--label", "brandpy.trace-all=1", "--label", f"brandpy.engine={engine}",
                      "busybox", "ls", "/")
    try:
        assert r.status == 0 and "etc\nhome\n" in r.out, r
        status, ctype, body = daemon.api("GET", f"/brandpy/containers/{name}/trace")
        assert (status, ctype) == (200, "text/plain; charset=utf-8")
        lines = body.decode().splitlines()
        parsed = [LINE.match(line) for line in lines]
        assert all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m][:5]
        assert ' execve("/bin/ls", ["ls", "/"], ' in lines[0]
        assert lines[0].endswith(" = 0 <translated>")
        assert any(re.search(r'openat\(AT_FDCWD, "/", .*\) = 3 <performed>$', line)
                   for line in lines), lines
        assert lines[-1].endswith("exit_group(0) = ? <native>"), lines[-1]
        assert {m.group(1) for m in parsed} == {"1"}

        info = brandpy(daemon, name)
        assert (info["Engine"], info["Snapshot"]) == (engine, "final")
        assert info["Research"] == {"Trace": True, "TraceFilter": [], "TraceAll": True,
                                    "Inject": [], "Seed": 0}
        # with trace-all every call stops once or notifies the supervisor once
        # (performed calls): the stats count the trace's lines
        per_call = Counter(m.group(2) for m in parsed)
        counted = Counter({n: s["Calls"] for n, s in info["Syscalls"].items()})
        counted.update({n: s["Calls"] for n, s in info["Notified"].items()})
        assert counted == per_call
        assert sum(info["Handled"].values()) == len(lines)
        assert info["Handled"] == dict(Counter(m.group(5) for m in parsed))

        status, ctype, body = daemon.api("GET", f"/v1.50/brandpy/containers/{name}/trace"
                                                "?format=json")
        assert (status, ctype) == (200, "application/x-ndjson")
        records = [json.loads(line) for line in body.decode().splitlines()]
        assert [(r["pid"], r["syscall"]) for r in records] == \
            [(int(m.group(1)), m.group(2)) for m in parsed]
        assert records[-1]["result"] is None

        status, ctype, body = daemon.api("GET", f"/brandpy/containers/{name}/syscalls")
        assert (status, ctype) == (200, "application/json")
        assert json.loads(body) == info
    finally:
        daemon.ok("rm", name)


def test_trace_filter_and_untraced_containers(daemon):
    r = daemon.docker("run", "--name", "filtered", "--label", "brandpy.trace=openat,execve",
                      "busybox", "cat", "/etc/hostname")
    try:
        assert r.status == 0, r
        _, _, body = daemon.api("GET", "/brandpy/containers/filtered/trace")
        names = [LINE.match(line).group(2) for line in body.decode().splitlines()]
        assert names[0] == "execve" and "openat" in names and set(names) == {"execve", "openat"}
        assert brandpy(daemon, "filtered")["Research"]["TraceFilter"] == ["openat", "execve"]
    finally:
        daemon.ok("rm", "filtered")
    cid = daemon.ok("create", "busybox", "true").strip()
    try:
        status, _, body = daemon.api("GET", f"/brandpy/containers/{cid}/trace")
        assert status == 404 and "--label brandpy.trace=1" in json.loads(body)["message"]
        info = brandpy(daemon, cid)     # never run: empty statistics
        assert (info["Snapshot"], info["Syscalls"], info["Ledger"]) == ("none", {}, [])
    finally:
        daemon.ok("rm", cid)
    for path in ("/brandpy/containers/nosuch/syscalls", "/brandpy/containers/nosuch/trace"):
        status, ctype, body = daemon.api("GET", path)
        assert (status, ctype, json.loads(body)) == (
            404, "application/json", {"message": "No such container: nosuch"})


def test_trace_follow_streams_until_the_container_ends(daemon):
    cid = daemon.ok("run", "-d", "--label", "brandpy.trace=openat", "busybox", "sh", "-c",
                    "sleep 1; cat /etc/hostname").strip()
    try:
        status, _, body = daemon.api("GET", f"/brandpy/containers/{cid}/trace?follow=1")
        assert status == 200
        # written after the request began, and the stream ended with the container
        assert 'openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3 <performed>' in body.decode()
        assert daemon.ok("inspect", "-f", "{{.State.Status}}", cid) == "exited\n"
    finally:
        daemon.ok("rm", "-f", cid)


def test_ledger_live_in_inspect_and_unsupported_calls_in_docker_events(daemon):
    since = str(time.time() - 1)
    cid = daemon.ok("run", "-d", "--name", "mounter", "busybox", "sh", "-c",
                    "pivot_root / /mnt; echo tried; sleep 30").strip()
    try:
        wait_for(lambda: "tried" in daemon.ok("logs", cid))
        info = brandpy(daemon, cid)
        assert info["Snapshot"] == "live"
        entry = next(e for e in info["Ledger"] if e["Syscall"] == "pivot_root")
        assert entry["Errno"] == 1 and entry["Calls"] == 1 and "Docker" in entry["Reason"]
        assert daemon.ok("inspect", "-f", "{{.Brandpy.Snapshot}}", cid) == "live\n"
        out = daemon.ok("events", "--since", since, "--until", str(time.time() + 1),
                        "--filter", "event=brandpy-unsupported", "--format", "{{json .}}")
        events = [json.loads(line) for line in out.splitlines()]
        assert len(events) == 1, events
        ev = events[0]
        assert (ev["Type"], ev["Action"], ev["Actor"]["ID"]) == \
            ("container", "brandpy-unsupported", cid)
        attrs = ev["Actor"]["Attributes"]
        assert (attrs["syscall"], attrs["errno"], attrs["name"], attrs["image"]) == \
            ("pivot_root", "EPERM", "mounter", "busybox")
        assert attrs["reason"] == entry["Reason"]
    finally:
        daemon.ok("rm", "-f", cid)


SCRIPT = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do wc -c /etc/passwd 2>&1; done; exit 0"


def test_injected_faults_repeat_with_the_same_seed(daemon):
    def run(seed: int, name: str) -> list[str]:
        r = daemon.docker("run", "--name", name, "--label",
                          "brandpy.inject=openat:error=ENOENT:prob=0.5",
                          "--label", f"brandpy.seed={seed}", "busybox", "sh", "-c", SCRIPT)
        assert r.status == 0, r
        return r.out.splitlines()

    try:
        first, again, other = run(7, "inj-a"), run(7, "inj-b"), run(8, "inj-c")
        failed = [line for line in first if "No such file or directory" in line]
        assert first == again and len(first) == 12
        assert 0 < len(failed) < 12, first
        assert other != first
        info = brandpy(daemon, "inj-a")
        assert info["Research"]["Inject"] == ["openat:error=ENOENT:prob=0.5"]
        assert info["Research"]["Seed"] == 7
        assert info["Syscalls"]["openat"]["Injected"] == len(failed)
    finally:
        daemon.docker("rm", "inj-a", "inj-b", "inj-c")


@pytest.mark.parametrize("label, message", [
    ("brandpy.inject=openat:error=EBOGUS", "invalid label brandpy.inject: --inject "
                                           "openat:error=EBOGUS: unknown errno 'EBOGUS'"),
    ("brandpy.inject=nosuchcall:error=EIO", "unknown syscall 'nosuchcall'"),
    ("brandpy.seed=abc", "invalid label brandpy.seed='abc': the seed is an integer"),
    ("brandpy.engine=rust", "invalid label brandpy.engine='rust': use native or python"),
    ("brandpy.trace=nosuchcall", "unknown syscall 'nosuchcall'"),
    ("brandpy.trace-all=maybe", "invalid label brandpy.trace-all='maybe': use 1"),
    ("brandpy.tracing=1", "unknown label brandpy.tracing: the labels brandpy reads are"),
])
def test_bad_research_labels_are_refused_at_create(daemon, label, message):
    r = daemon.docker("run", "--rm", "--label", label, "busybox", "true")
    assert r.status == 125 and message in r.err, r
    key, _, value = label.partition("=")
    status, _, body = daemon.api("POST", "/containers/create",
                                 {"Image": "busybox", "Cmd": ["true"], "Labels": {key: value}})
    assert status == 400 and message in json.loads(body)["message"]
