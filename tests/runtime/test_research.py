"""Research tools (issue 7): the trace, statistics that add up to it,
deterministic fault injection, record/replay, coverage."""

import json
import subprocess
from collections import Counter

import pytest

from tests.conftest import install_probe


def test_trace_reads_like_strace(brandpy, busybox, outdir):
    out = outdir / "trace.txt"
    r = brandpy(busybox, ["/bin/ls", "/"], "--trace", str(out))
    assert r.status == 0 and "etc" in r.out.split()
    lines = out.read_text().splitlines()
    execve = next(line for line in lines if " execve(" in line)
    assert execve.startswith("[pid     1] ")
    assert 'execve("/bin/ls", ["/bin/ls", "/"], ["PATH=' in execve
    assert execve.endswith("= 0 <translated>")
    opens = [line for line in lines if ' openat(AT_FDCWD, "/", O_RDONLY|' in line]
    assert opens and opens[0].split(" = ")[1].split()[0].isdigit()
    assert any(" getpid() = 1 <emulated>" in line or "getpid" not in line for line in lines)
    prctl = next(line for line in lines if " prctl(" in line)     # busybox asks for its name
    assert " prctl(PR_GET_NAME, 0x" in prctl, prctl


def test_trace_into_a_closed_pipe(brandpy, busybox):
    """`brandpy trace ... | head`: the container runs on untraced when the
    trace's reader goes away, as under strace."""
    p = subprocess.Popen(brandpy.cli("trace", "--engine", brandpy.engine, "--rootfs",
                                     str(busybox), "--", "/bin/sh", "-c",
                                     "ls / > /dev/null; echo done > /tmp/traced"),
                         stderr=subprocess.PIPE, env=brandpy.env(), cwd="/")
    p.stderr.readline()
    p.stderr.close()
    assert p.wait(60) == 0
    assert (busybox / "tmp" / "traced").read_text() == "done\n"


def test_stats_add_up_to_the_trace(brandpy, busybox, outdir):
    trace, stats = outdir / "trace.jsonl", outdir / "stats.json"
    r = brandpy.sh(busybox, "ls / >/dev/null; head -n1 /etc/passwd >/dev/null; pivot_root / /tmp",
                   "--trace", str(trace), "--trace-json", "--trace-all", "--stats-json",
                   str(stats))
    assert r.status != 0   # pivot_root fails, as it should
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    traced = Counter(rec["syscall"] for rec in records)
    # a call stops the supervisor (ptrace) or notifies it (performed calls)
    data = json.loads(stats.read_text())
    counted = Counter({name: s["Calls"] for name, s in data["Syscalls"].items()})
    counted.update({name: s["Calls"] for name, s in data["Notified"].items()})
    assert traced == counted
    assert {"read", "write", "close"} <= set(traced)    # --trace-all shows native calls too
    assert any(r["syscall"] == "pivot_root" and r["disposition"] == "unsupported" and
               r["errno"] == "EPERM" for r in records)
    ledger = json.loads(stats.read_text())["Ledger"]
    assert [e["Syscall"] for e in ledger] == ["pivot_root"]


def test_trace_filter_and_follow(brandpy, busybox):
    r = brandpy.sh(busybox, "cat /etc/hostname >/dev/null; true", "--trace", "-",
                   "--trace-filter", "execve")
    assert [line.split(") = ")[1] for line in r.err.splitlines() if "execve(" in line] == \
        ["0 <translated>", "0 <translated>"]


@pytest.mark.parametrize("seed", [1, 2])
def test_fault_injection_is_deterministic(brandpy, busybox, seed):
    script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do cat /etc/hostname >/dev/null 2>&1 " \
             "&& echo ok || echo fail; done"
    opts = ("--inject", "openat:error=EACCES:when=1+:prob=0.5", "--seed", str(seed))
    first = brandpy.sh(busybox, script, *opts)
    second = brandpy.sh(busybox, script, *opts)
    assert first.out == second.out
    assert "ok" in first.out and "fail" in first.out, first
    other = brandpy.sh(busybox, script, "--inject", "openat:error=EACCES:when=1+:prob=0.5",
                       "--seed", str(seed + 100))
    assert other.out != first.out


def test_fault_injection_kinds(brandpy, busybox):
    (busybox / "etc" / "hostname").write_text("one\n")
    r = brandpy(busybox, ["/bin/cat", "/etc/hostname", "/etc/hostname", "/etc/hostname"],
                "--inject", "openat:error=ENOENT:when=2", "--hostname", "one")
    assert r.status == 1 and r.out == "one\none\n" and r.err.count("No such file") == 1, r
    r = brandpy.sh(busybox, "cat /etc/hostname >/dev/null && echo ok",
                   "--inject", "openat:delay=200ms:when=2")
    assert r.out == "ok\n"
    r = brandpy(busybox, ["/bin/sh", "-c", "echo $$"], "--inject", "getpid:retval=4242")
    assert r.out == "4242\n"
    r = brandpy(busybox, ["/bin/true"], "--inject", "nosuch:error=EPERM")
    assert r.status == 125 and "unknown syscall 'nosuch'" in r.err


def test_replay_is_byte_identical(brandpy, debian_shared, outdir):
    code = ("import os, random, time; print(time.time(), time.monotonic_ns(), "
            "os.urandom(16).hex(), random.random(), os.getpid(), id(object()))")
    rec = outdir / "rec.json"
    live = brandpy(debian_shared, ["/usr/bin/python3", "-c", code], "--record", str(rec))
    replayed = brandpy(debian_shared, ["/usr/bin/python3", "-c", code], "--replay", str(rec))
    again = brandpy(debian_shared, ["/usr/bin/python3", "-c", code], "--replay", str(rec))
    other = brandpy(debian_shared, ["/usr/bin/python3", "-c", code])
    assert live.status == replayed.status == 0, (live, replayed)
    assert replayed.out == live.out == again.out
    assert other.out != live.out


def test_replay_of_busybox_shell(brandpy, busybox, outdir):
    script = "date +%s%N; head -c 8 /dev/urandom | od -An -tx1; echo $$; hostname"
    rec = outdir / "rec.json"
    live = brandpy.sh(busybox, script, "--record", str(rec))
    replayed = brandpy.sh(busybox, script, "--replay", str(rec))
    assert replayed.out == live.out and live.status == 0


def test_coverage_static_and_workload(brandpy, probed_busybox):
    static = brandpy.call("coverage")
    assert static.out.splitlines()[1].split()[0] == "brandpy"
    assert "gVisor (runsc)" in static.out and "illumos LX" in static.out
    cov = brandpy.call("coverage", "--json", "--engine", brandpy.engine, "--rootfs",
                       str(probed_busybox), "--", "/usr/bin/probe", "denied")
    result = json.loads(cov.out)
    assert cov.status == 1 and not result["WillRun"]
    assert {"mount", "reboot", "bpf"} <= {f["Syscall"] for f in result["WouldFail"]}
    assert result["Used"]["execve"]["Calls"] == 1
    ok = brandpy.call("coverage", "--engine", brandpy.engine, "--rootfs",
                      str(probed_busybox), "--", "/bin/true")
    assert ok.status == 0 and "verdict: will run" in ok.out


@pytest.fixture
def probed_busybox(busybox, probe_bin):
    install_probe(busybox, probe_bin)
    return busybox
