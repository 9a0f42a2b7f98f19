"""Real programs from the Debian rootfs: bash, coreutils, dpkg, python3
with threads, subprocess and multiprocessing, job-control signals."""

import os
import uuid

import pytest

from tests.conftest import chroot_run

PY_WORKLOAD = r"""
import multiprocessing, os, signal, subprocess, sys, threading, time

results = []
def work(i):
    results.append(sum(range(i * 1000)))
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print("threads", len(results), sum(results))

out = subprocess.run(["/bin/sh", "-c", "echo from sh; exit 4"], capture_output=True, text=True)
print("subprocess", out.returncode, out.stdout.strip())

def square(x):
    return x * x
with multiprocessing.Pool(3) as pool:
    print("pool", pool.map(square, range(10)))

pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
os.kill(pid, signal.SIGSTOP)
_, st = os.waitpid(pid, os.WUNTRACED)
print("stopped", os.WIFSTOPPED(st), os.WSTOPSIG(st) == signal.SIGSTOP)
os.kill(pid, signal.SIGCONT)
_, st = os.waitpid(pid, os.WCONTINUED)
print("continued", os.WIFCONTINUED(st))
os.kill(pid, signal.SIGTERM)
_, st = os.waitpid(pid, 0)
print("terminated", os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGTERM)
print("cwd", os.getcwd(), "exe", os.readlink("/proc/self/exe"), sys.executable)
"""

BASH = r"""
set -euo pipefail
cd /tmp
declare -A m=([a]=1 [b]=2); echo "${!m[@]}" | tr ' ' '\n' | sort | tr '\n' ' '; echo
seq 1 5 | paste -sd+ | bc 2>/dev/null || seq 1 5 | awk '{s+=$1} END {print s}'
printf '%s\n' one two three | sort -r | head -1
d=$(mktemp -d); touch "$d/f"; stat -c '%F %s' "$d/f"; rm -r "$d"
readlink -f /bin/sh; realpath /usr/bin/../bin/ls
du -s /etc/apt >/dev/null && echo du-ok
ls /usr/share/doc | wc -l | awk '{print ($1 > 10)}'
env -i /usr/bin/env | wc -l
id -un
dpkg -l | awk '$1=="ii"{n++} END {print (n > 50)}'
dpkg -L coreutils | grep -c '^/usr/bin/' | awk '{print ($1 > 50)}'
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the chroot reference needs root")
def test_bash_and_coreutils_match_chroot(brandpy_root, debian_shared):
    native = chroot_run(debian_shared, ["/bin/bash", "-c", BASH])
    mine = brandpy_root(debian_shared, ["/bin/bash", "-c", BASH])
    assert native.status == 0, native
    assert (mine.status, mine.out, mine.err) == (native.status, native.out, native.err)


def test_bash_as_any_user(brandpy, debian_shared):
    r = brandpy(debian_shared, ["/bin/bash", "-c", BASH.replace("id -un", "true")])
    assert r.status == 0, r
    assert r.out.splitlines()[:3] == ["a b ", "15", "two"]


def test_python_threads_subprocess_multiprocessing(brandpy, debian_shared):
    script = debian_shared / "tmp" / f"w-{uuid.uuid4().hex[:8]}.py"
    script.write_text(PY_WORKLOAD)
    try:
        r = brandpy(debian_shared, ["/usr/bin/python3", "/tmp/" + script.name], "-w", "/tmp")
    finally:
        script.unlink()
    assert r.status == 0, r
    assert r.out.splitlines() == [
        "threads 8 " + str(sum(sum(range(i * 1000)) for i in range(8))),
        "subprocess 4 from sh",
        "pool [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "stopped True True",
        "continued True",
        "terminated True",
        "cwd /tmp exe /usr/bin/python3.11 /usr/bin/python3",
    ]


# Found by the coverage benchmark (CPython's test_fileio, test_resource,
# test_os and test_time).
BAD_ARGS = """
import errno, io, os, resource, threading, time
fd = os.open("/etc/passwd", os.O_RDONLY)
os.close(fd)
def err(f, *a):
    try:
        f(*a)
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok"
print(err(os.fstat, fd), err(os.stat, fd), err(io.FileIO, fd))
print(err(resource.prlimit, -1, resource.RLIMIT_AS), err(os.sched_getscheduler, -1),
      err(os.sched_getaffinity, -1), err(os.tcsetpgrp, fd, 0))
child = os.fork()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
print(err(os.waitpid, child, os.WNOHANG), err(os.waitid, os.P_PID, child, os.WEXITED))
clock = time.pthread_getcpuclockid(threading.get_ident())
print(err(time.clock_gettime, clock), err(time.clock_getres, clock),
      err(time.clock_gettime, ~12345 << 3 | 6))
"""


# Children of another (live) thread count for a wait, but not with
# __WNOTHREAD; a thread's children go to a sibling when it ends.
WAITS = """
import errno, os, threading
WNOTHREAD = 0x20000000
def wait(pid, options):
    try:
        return str(os.waitpid(pid, options)[0])
    except OSError as e:
        return errno.errorcode[e.errno]
def waitid(idtype, options):
    try:
        return str(os.waitid(idtype, 0, options))
    except OSError as e:
        return errno.errorcode[e.errno]
got, forked, done = [], threading.Event(), threading.Event()
print(wait(-1, 0), wait(-1, os.WNOHANG), wait(12345, os.WNOHANG))
print(waitid(os.P_ALL, os.WEXITED), waitid(os.P_PGID, os.WEXITED | os.WNOHANG),
      waitid(os.P_ALL, os.WNOHANG))
r, w = os.pipe()
def spawn():
    got.append(os.fork())
    if got[0] == 0:
        os.read(r, 1)
        os._exit(3)
    forked.set()
    done.wait()
t = threading.Thread(target=spawn)
t.start()
forked.wait()
print(wait(-1, os.WNOHANG), wait(-1, os.WNOHANG | WNOTHREAD), wait(-1, 0xff0000))
print(waitid(os.P_ALL, os.WEXITED | os.WNOHANG), waitid(os.P_ALL, os.WEXITED | os.WNOHANG | WNOTHREAD))
done.set()
t.join()
os.write(w, b"x")
pid, status = os.waitpid(-1, 0)
print(pid == got[0], os.waitstatus_to_exitcode(status), wait(-1, 0))
"""


def test_waits_without_children_fail_with_echild(brandpy, debian_shared):
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c", WAITS])
    assert (r.status, r.out.splitlines()) == (0, [
        "ECHILD ECHILD ECHILD", "ECHILD ECHILD EINVAL", "0 ECHILD EINVAL", "None ECHILD",
        "True 3 ECHILD"]), r


def test_bad_fds_and_pids_get_the_kernels_errors(brandpy, debian_shared):
    r = brandpy(debian_shared, ["/usr/bin/python3", "-c", BAD_ARGS])
    assert r.status == 0, r
    assert r.out.splitlines() == ["EBADF EBADF EBADF", "ESRCH EINVAL ESRCH EBADF",
                                  "ECHILD ECHILD", "ok ok EINVAL"], r
