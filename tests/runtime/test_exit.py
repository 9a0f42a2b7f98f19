"""Exit statuses and start-up errors as docker reports them."""

import os
import signal
import subprocess
import time

from tests.conftest import leftovers


def test_exit_code(brandpy, busybox):
    assert brandpy.sh(busybox, "exit 7").status == 7


def test_killed_by_sigkill_is_137(brandpy, busybox):
    """From outside (as docker kill does); from inside, PID 1 ignores it."""
    assert brandpy.sh(busybox, "kill -KILL $$; echo ignored").out == "ignored\n"
    p = subprocess.Popen(brandpy.cmd(busybox, ["/bin/sh", "-c", "echo ready; sleep 30"]),
                         env=brandpy.env(), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    init = min(int(entry.split()[0]) for entry in leftovers(busybox))
    os.kill(init, signal.SIGKILL)
    assert p.wait(30) == 137
    assert leftovers(busybox) == []


def _scratch() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("brandpy-")}


def test_a_supervisor_killed_leaves_no_scratch(brandpy, busybox):
    """SIGKILL runs no cleanup: its janitor (brandpy/scratch.py) removes
    the run's /dev and /proc views, and the container goes with it."""
    before = _scratch()
    p = subprocess.Popen(brandpy.cmd(busybox, ["/bin/sh", "-c", "ls /proc >/dev/null; echo ready; "
                                               "sleep 30"]),
                         env=brandpy.env(), stdout=subprocess.PIPE, text=True, cwd="/")
    assert p.stdout.readline() == "ready\n"
    assert _scratch() - before, "the run made no scratch directory to test with"
    p.kill()
    p.wait(30)
    deadline = time.monotonic() + 10
    while (_scratch() - before or leftovers(busybox)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _scratch() - before == set()
    assert leftovers(busybox) == []


def test_output_and_stdin_pass_through(brandpy, busybox):
    r = brandpy(busybox, ["/bin/cat"], "-i", input="through stdin\n")
    assert (r.status, r.out) == (0, "through stdin\n")
    r = brandpy.sh(busybox, "echo out; echo err >&2")
    assert (r.out, r.err) == ("out\n", "err\n")


def test_sigterm_is_forwarded_to_the_entrypoint(brandpy, busybox):
    script = "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.05; done"
    p = subprocess.Popen(brandpy.cmd(busybox, ["/bin/sh", "-c", script]), env=brandpy.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out) == (3, "got TERM\n"), err
    assert leftovers(busybox) == []


def test_children_are_killed_when_the_entrypoint_exits(brandpy, busybox):
    r = brandpy.sh(busybox, "sleep 60 & sleep 60 & (sleep 60 &) ; echo started")
    assert (r.status, r.out) == (0, "started\n")
    time.sleep(0.2)
    assert leftovers(busybox) == []


def test_missing_command_is_127(brandpy, busybox):
    r = brandpy(busybox, ["nosuchcommand"])
    assert r.status == 127
    assert r.err.strip() == 'brandpy: exec: "nosuchcommand": executable file not found in $PATH'
    assert brandpy(busybox, ["/no/such/file"]).status == 127


def test_non_executable_is_126(brandpy, busybox):
    (busybox / "etc" / "plain").write_text("x")
    r = brandpy(busybox, ["/etc/plain"])
    assert r.status == 126 and "permission denied" in r.err
    assert brandpy(busybox, ["/etc"]).status == 126


def test_missing_rootfs_is_125(brandpy, world_tmp):
    r = brandpy(world_tmp / "does-not-exist", ["/bin/true"])
    assert r.status == 125
    assert len(r.err.strip().splitlines()) == 1 and "rootfs" in r.err


def test_bad_volume_spec_is_125(brandpy, busybox):
    r = brandpy(busybox, ["/bin/true"], "-v", "nocolon")
    assert r.status == 125 and "invalid volume" in r.err


def test_environment_and_workdir(brandpy, busybox):
    r = brandpy.sh(busybox, 'echo "$FOO $PATH"; pwd', "-e", "FOO=bar", "-w", "/new/dir")
    assert r.out == "bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/new/dir\n"
    assert (busybox / "new" / "dir").is_dir()


# calls whose result the kernel computes and the container must see translated
NEEDS_EXIT_STOP = {"wait4", "waitid", "set_tid_address", "accept", "accept4", "recvfrom"}


def test_stats_show_one_stop_per_trapped_call(brandpy, busybox):
    r = brandpy.sh(busybox, "ls / >/dev/null; cat /etc/passwd >/dev/null; ls -l /bin | wc -l",
                   "--stats")
    assert r.status == 0
    lines = r.err.splitlines()
    rows = [line.split() for line in lines[1:lines.index(next(x for x in lines if x.startswith("total")))]]
    assert rows   # (execve alone in a kernel PID namespace)
    # busybox's prctl(PR_GET_NAME) at each start is performed: no stop
    assert "prctl" not in {row[0] for row in rows}
    for name, _calls, exit_stops, *_ in rows:
        if name not in NEEDS_EXIT_STOP:
            assert exit_stops == "0", f"{name} took a second stop"
    # in the kernel's PID namespace waits run natively (an emulated
    # tracer's alone are trapped: test_ptrace.py)
    assert ("wait4" in {row[0] for row in rows}) == (not brandpy.namespaced)


def test_a_wait_without_children_takes_no_exit_stop(brandpy, busybox):
    """A shell's wait4(-1, WNOHANG) after each command finds no child: it
    is answered ECHILD at entry; only a wait that reaps a child takes the
    exit stop its PID needs."""
    r = brandpy.sh(busybox, "for i in 1 2 3 4 5; do /bin/true; done; echo done", "--stats")
    assert (r.status, r.out) == (0, "done\n"), r
    wait4 = [line.split() for line in r.err.splitlines() if line.startswith("wait4 ")]
    if brandpy.namespaced:
        # in the kernel's PID namespace (as root, and unprivileged in a user
        # namespace) a wait runs natively, not trapped
        assert wait4 == [], r.err
    else:
        calls, exit_stops, emulated, errors = map(int, wait4[0][1:5])
        assert (calls, exit_stops, emulated, errors) == (10, 5, 5, 5), r.err
    # each command: the fork event, fork's exit stop (its PID; as root, in
    # the kernel's PID namespace, the kernel's is right and there is none),
    # the child's first stop, its exec event, the parent's SIGCHLD; plus the
    # shell's exec
    others = 21 if brandpy.namespaced else 26
    assert f"other stops (fork/exec/signals): {others}" in r.err, r.err
