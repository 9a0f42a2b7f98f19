"""brandpy-runc under Debian's dockerd 20.10 (`runtimes` in daemon.json,
`docker run --runtime brandpy`), driven by the real docker CLI. The sign
that a container runs under brandpy: its uname is the kernel release brandpy
translates (runtimeArgs --kernel-release), its processes are traced by the
monitor while they see TracerPid 0, and the monitor counts their syscalls."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import monitors, wait_for_none
from .daemons import KERNEL_RELEASE
from .test_console import read_until

RUN = ("run", "--runtime", "brandpy")


@pytest.fixture(autouse=True)
def no_container_left(dockerd):
    yield
    assert dockerd.docker("ps", "-aq").out.split() == []
    assert wait_for_none(lambda: [m for m in monitors() if str(dockerd.base) in m]) == []


def brandpy_runc(dockerd, *args: str) -> str:
    """brandpy-runc on the state dockerd gave it."""
    p = subprocess.run([sys.executable, "-m", "brandpy.oci", "--root", str(dockerd.runtime_root),
                        *args], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    return p.stdout


def test_run_rm_echo(dockerd):
    out = dockerd.ok(*RUN, "--rm", "busybox", "sh", "-c",
                     "echo hi; uname -r; grep TracerPid /proc/self/status")
    assert out.split("\n") == ["hi", KERNEL_RELEASE, "TracerPid:\t0", ""]


def test_run_as_a_non_root_user(dockerd):
    """dockerd keeps the rootfs below 0710 directories: brandpy's container
    processes, which use real host paths, still reach it."""
    assert dockerd.ok(*RUN, "--rm", "-u", "nobody", "busybox", "id").startswith(
        "uid=65534(nobody) gid=65534(nogroup)")


def test_detached_logs_exec_top_stop(dockerd):
    cid = dockerd.ok(*RUN, "-d", "busybox", "sh", "-c",
                     "trap 'echo bye; exit 0' TERM; i=0; "
                     "while :; do echo tick $i; i=$((i+1)); sleep 0.1; done").strip()
    try:
        deadline = time.monotonic() + 20
        while "tick 2" not in dockerd.ok("logs", cid):
            assert time.monotonic() < deadline, dockerd.docker("logs", cid)
            time.sleep(0.1)
        r = dockerd.docker("exec", cid, "sh", "-c", "echo in exec; uname -r; exit 5")
        assert (r.status, r.out) == (5, f"in exec\n{KERNEL_RELEASE}\n"), r
        # the host's view: every process of the container is traced by its monitor
        state = json.loads(brandpy_runc(dockerd, "state", cid))
        assert state["status"] == "running"
        top = dockerd.ok("top", cid).splitlines()
        pids = [int(line.split()[1]) for line in top[1:]]
        assert state["brandpy"]["initPid"] in pids
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue   # a `sleep 0.1` of the loop, gone since `docker top`
            assert f"TracerPid:\t{state['pid']}\n" in status
        stats = json.loads(brandpy_runc(dockerd, "events", "--stats", cid))["data"]["brandpy"]
        assert stats["PtraceStops"] > 0 and stats["Syscalls"]["execve"]["Calls"] > 0
        dockerd.ok("stop", "-t", "10", cid)   # the entrypoint handles TERM: forwarded to it
        assert dockerd.ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "0"
        assert "bye" in dockerd.ok("logs", cid)
    finally:
        dockerd.docker("rm", "-f", cid)   # a failure above must not leave it to later tests


def test_stop_kills_an_entrypoint_that_ignores_term(dockerd):
    cid = dockerd.ok(*RUN, "-d", "busybox", "sleep", "60").strip()
    dockerd.ok("stop", "-t", "1", cid)
    assert dockerd.ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "137"
    dockerd.ok("rm", cid)


def test_exit_statuses_and_a_missing_command(dockerd):
    assert dockerd.docker(*RUN, "--rm", "busybox", "sh", "-c", "exit 3").status == 3
    r = dockerd.docker(*RUN, "--rm", "busybox", "nosuch")
    assert r.status == 127 and "executable file not found" in r.err, r


def test_run_it_and_exec_it_through_a_terminal(dockerd):
    out, status = interact(dockerd, [*RUN, "-it", "--rm", "busybox", "sh", "-c",
                                     "tty; read x; echo got $x; exit 4"],
                           b"/dev/pts/", b"hello\r", b"got hello")
    assert status == 4, out
    # an interactive shell: job control on the container's terminal
    out, status = interact(dockerd, [*RUN, "-it", "--rm", "busybox", "sh"],
                           b"# ", b"echo $((6*7)); exit 3\r", b"42")
    assert status == 3, out
    cid = dockerd.ok(*RUN, "-d", "busybox", "sleep", "60").strip()
    out, status = interact(dockerd, ["exec", "-it", cid, "sh", "-c",
                                     "tty; read x; echo exec got $x"],
                           b"/dev/pts/", b"there\r", b"exec got there")
    assert status == 0, out
    dockerd.ok("rm", "-f", cid)


def interact(dockerd, args: list[str], ready: bytes, typed: bytes,
             answer: bytes) -> tuple[bytes, int]:
    """The docker CLI on a terminal (a pty here): once `ready` shows, type a
    line, read up to the container's `answer`; its output and exit status."""
    pid, master = pty.fork()
    if pid == 0:
        os.execvp("docker", ["docker", "-H", dockerd.host, *args])
    try:
        out = read_until(master, ready)
        os.write(master, typed)
        out += read_until(master, answer)
        assert answer in out, out
        out += read_until(master, b"\0", timeout=5)   # until the terminal closes
        deadline = time.monotonic() + 20
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            assert time.monotonic() < deadline, out
            time.sleep(0.05)
        return out, os.waitstatus_to_exitcode(done[1])
    finally:
        os.close(master)


def test_loopback_and_exec_without_stdin(dockerd):
    """A container in a network namespace brandpy-runc makes has its
    loopback up, as runc's does (dockerd without a bridge configures
    nothing else); `docker exec` without -i (stdin /dev/null) of a client
    reaching a server in the container works (issue 18)."""
    cid = dockerd.ok(*RUN, "-d", "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc").strip()
    try:
        deadline = time.monotonic() + 20
        while True:
            r = dockerd.docker("exec", cid, "wget", "-q", "-O", "-",
                               "http://127.0.0.1:8080/hostname")
            if r.status == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status == 0 and r.out.strip() == cid[:12], r
        assert dockerd.docker("exec", "-i", cid, "wget", "-q", "-O", "-",
                              "http://127.0.0.1:8080/hostname", input="").status == 0
    finally:
        dockerd.docker("rm", "-f", cid)


def test_add_host_dns_and_hostname_reach_the_container(dockerd):
    """dockerd writes /etc/hosts (with --add-host's entries), /etc/resolv.conf
    (--dns) and /etc/hostname and binds them in: the container sees them,
    and its resolver finds the added name."""
    out = dockerd.ok(*RUN, "--rm", "--add-host", "added.example:10.1.2.3", "--dns", "10.9.9.9",
                     "--hostname", "named", "busybox", "sh", "-c",
                     "grep added /etc/hosts; grep nameserver /etc/resolv.conf; "
                     "cat /etc/hostname; hostname; ping -c 1 -W 1 added.example 2>&1 | head -1")
    assert out.splitlines() == ["10.1.2.3\tadded.example", "nameserver 10.9.9.9", "named",
                                "named", "PING added.example (10.1.2.3): 56 data bytes"], out
