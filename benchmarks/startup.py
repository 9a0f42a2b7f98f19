"""`python -m benchmarks.startup`: start-up and memory per container
(issue 16), written to benchmarks/results/startup.{md,json}.

Start-up of `brandpy run --rootfs busybox -- /bin/true` in two
configurations, root and unprivileged (uid 65534 through setpriv; both with
the host's network, as every `brandpy run`): the C launcher with its zygote
warm, the same with the zygote stopped before each run (the first run's
cost), Python in-process (`python -m brandpy run`), CPython's own start
(`python -c pass`) and native chroot (root only). Runs interleaved, medians.

Through brandpyd (as root, host network): `docker run --rm busybox true`;
the unique memory (USS, /proc/PID/smaps_rollup) of every process brandpy
adds per running container (the shim, which is the supervisor too, and any
child of it that is not a container process) for 20 `sleep` containers;
then 50 `sleep` containers started at once and stopped, with `docker ps`
timed meanwhile. Timings here are wall-clock on a shared machine: quote
medians and ratios, never thresholds."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import brandpy

from .publish import RESULTS
from .runners import NOBODY, SETPRIV
from .workspace import IMAGES, scratch_base

LAUNCHER = Path(brandpy.__file__).resolve().parent / "_launcher"
DOCKER = shutil.which("docker") or "docker"
COLD = "launcher, zygote cold (first run)"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, cwd="/")
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.decode()[-500:]}")
    return wall


def zygotes(runtime: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"brandpy.zygote" in cmdline and bytes(runtime) in cmdline:
            found.append(int(entry))
    return found


def stop_zygotes(runtime: Path) -> None:
    """SIGTERM: a zygote retires at once and removes its files."""
    for pid in zygotes(runtime):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while zygotes(runtime) and time.monotonic() < deadline:
        time.sleep(0.02)


def startup(reps: int, rootfs: Path, scratch: Path) -> dict[str, Any]:
    """Per configuration, per way of starting: seconds of each run."""
    python = sys.executable
    env0 = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG")}
    run = ["run", "--rootfs", str(rootfs), "--", "/bin/true"]
    results: dict[str, Any] = {}
    for config, prefix, uid in (("root", [], 0), ("unprivileged", SETPRIV, NOBODY)):
        runtime = scratch / f"runtime-{config}"
        runtime.mkdir(mode=0o700)
        os.chown(runtime, uid, uid)
        env = {**env0, "XDG_RUNTIME_DIR": str(runtime)}
        launcher = [*prefix, str(LAUNCHER), *run]
        ways = {COLD: launcher, "launcher, zygote warm": launcher,
                "python -m brandpy run": [*prefix, python, "-m", "brandpy", *run],
                "python -c pass": [*prefix, python, "-c", "pass"]}
        if uid == 0:
            ways["native chroot"] = ["chroot", str(rootfs), "/bin/true"]
        samples: dict[str, list[float]] = {name: [] for name in ways}
        timed(launcher, env)     # the zygote starts
        for _ in range(reps):
            for name, argv in ways.items():   # cold first: it leaves the zygote warm
                if name == COLD:
                    stop_zygotes(runtime)
                samples[name].append(timed(argv, env))
        stop_zygotes(runtime)
        results[config] = samples
    return results


# -- brandpyd ------------------------------------------------------------------


class Daemon:
    """brandpyd; as root inside a network namespace of its own (its
    containers' bridges and rules never touch the machine's network)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = f"unix://{root}/d.sock"
        self.netns = f"brandpy-bench-{os.getpid()}" if os.geteuid() == 0 else ""
        enter = []
        if self.netns:
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
            subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"],
                           check=True)
            enter = ["nsenter", f"--net=/run/netns/{self.netns}"]
        log = open(root / "daemon.log", "ab")
        self.proc = subprocess.Popen([*enter, sys.executable, "-m", "brandpy", "daemon",
                                      "--data-root", str(root / "data"), "-H", self.host],
                                     stdout=subprocess.PIPE, stderr=log, cwd="/")
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("export DOCKER_HOST="):
            self.proc.kill()
            if self.netns:
                subprocess.run(["ip", "netns", "del", self.netns], check=False)
            raise RuntimeError(f"brandpyd did not start: {(root / 'daemon.log').read_text()[-1000:]}")

    def docker(self, *args: str) -> str:
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.root / "cfg")}
        p = subprocess.run([DOCKER, *args], capture_output=True, text=True, env=env, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {p.stderr.strip()[-500:]}")
        return p.stdout

    def shims(self) -> list[int]:
        pids = []
        for state in (self.root / "data" / "containers").glob("*/state.json"):
            try:
                pid = int(json.loads(state.read_text()).get("ShimPid") or 0)
            except (OSError, ValueError):
                continue
            if pid and Path(f"/proc/{pid}").exists():
                pids.append(pid)
        return pids

    def close(self) -> None:
        for pid in self.shims():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.terminate()
        self.proc.wait(30)
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], check=False)


def uss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(line.split()[1]) for line in f
                       if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except OSError:
        return 0


def brandpy_processes(shim: int) -> list[int]:
    """The shim and its descendants that are brandpy's (not traced by it:
    the container's own processes are)."""
    found, todo = [], [shim]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except OSError:
                continue
            tracer = next(int(line.split()[1]) for line in status.splitlines()
                          if line.startswith("TracerPid:"))
            if tracer != shim:
                todo.append(child)
    return found


def daemon_rows(reps: int, containers: int, concurrent: int, scratch: Path) -> dict[str, Any]:
    root = scratch / "daemon"
    root.mkdir()
    root.chmod(0o755)
    daemon = Daemon(root)
    try:
        daemon.docker("import", str(IMAGES / "busybox.tar"), "busybox")
        daemon.docker("run", "--rm", "busybox", "true")    # the shim zygote is warm
        run_rm = []
        for _ in range(reps):
            start = time.perf_counter()
            daemon.docker("run", "--rm", "busybox", "true")
            run_rm.append(time.perf_counter() - start)
        names = [f"mem{i}" for i in range(containers)]
        for name in names:
            daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "600")
        time.sleep(1)
        per_container = [sum(uss_kb(p) for p in brandpy_processes(shim)) for shim in daemon.shims()]
        zygote = [p for p in map(int, Path(f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children")
                                 .read_text().split())]
        zygote_uss = sum(uss_kb(p) for p in zygote)
        daemon.docker("rm", "-f", *names)
        ps_times: list[float] = []
        done = threading.Event()

        def poll_ps() -> None:
            while not done.is_set():
                start = time.perf_counter()
                daemon.docker("ps", "-q")
                ps_times.append(time.perf_counter() - start)

        poller = threading.Thread(target=poll_ps)
        poller.start()
        many = [f"many{i}" for i in range(concurrent)]
        started = time.perf_counter()
        errors: list[str] = []

        def start_one(name: str) -> None:
            try:
                daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "600")
            except RuntimeError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=start_one, args=(n,)) for n in many]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        all_started = time.perf_counter() - started
        running = len(daemon.docker("ps", "-q").split())
        daemon.docker("rm", "-f", *many)
        done.set()
        poller.join()
        return {"docker_run_rm_s": run_rm, "uss_kb_per_container": per_container,
                "shim_zygote_uss_kb": zygote_uss,
                "concurrent": {"containers": concurrent, "running": running,
                               "start_all_s": all_started, "errors": errors[:3],
                               "docker_ps_s": ps_times}}
    finally:
        daemon.close()


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def markdown(data: dict[str, Any]) -> str:
    lines = ["# brandpy start-up and memory per container",
             f"Run {data['meta']['started']}, commit {data['meta']['commit']}, "
             f"{data['meta']['cpus']} CPUs, load average {data['meta']['load']} at the start, "
             f"{data['meta']['reps']} runs per row (medians); network: the host's.", "",
             "## `brandpy run --rootfs busybox -- /bin/true`", "",
             "| | " + " | ".join(data["startup"]) + " |",
             "|---|" + "---:|" * len(data["startup"])]
    ways = list(next(iter(data["startup"].values())))
    for way in ways:
        row = [f"{med(data['startup'][c][way]) * 1000:.1f} ms" if way in data["startup"][c]
               else "–" for c in data["startup"]]
        lines.append(f"| {way} | " + " | ".join(row) + " |")
    d = data.get("daemon")
    if d:
        uss = d["uss_kb_per_container"]
        c = d["concurrent"]
        ps = c["docker_ps_s"]
        lines += ["", "## Through brandpyd (root, host network)", "",
                  "| | |", "|---|---:|",
                  f"| `docker run --rm busybox true` (median) | {med(d['docker_run_rm_s']):.3f} s |",
                  f"| unique memory per running container (median of {len(uss)}; shim = "
                  f"supervisor) | {med(uss) / 1024:.1f} MB |",
                  f"| the daemon's shim zygote (once per daemon) | "
                  f"{d['shim_zygote_uss_kb'] / 1024:.1f} MB |",
                  f"| {c['containers']} `sleep` containers started at once | "
                  f"{c['start_all_s']:.1f} s, {c['running']} running |",
                  f"| `docker ps` meanwhile: median / worst ({len(ps)} calls) | "
                  f"{med(ps):.3f} s / {max(ps, default=float('nan')):.3f} s |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--containers", type=int, default=20)
    p.add_argument("--concurrent", type=int, default=50)
    p.add_argument("--no-daemon", action="store_true", help="start-up rows only")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not LAUNCHER.exists():
        print(f"benchmarks: {LAUNCHER} missing: `make install` builds it", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
            "cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 2), "reps": args.reps}
    # tmpfs, as the suite's workspace: on these VMs a file made in /tmp costs
    # ~0.3 ms (10x /var/tmp), which the daemon's data root would measure
    scratch = Path(tempfile.mkdtemp(prefix="brandpy-startup-", dir=scratch_base()))
    scratch.chmod(0o755)
    try:
        data: dict[str, Any] = {"meta": meta,
                                "startup": startup(args.reps, IMAGES / "busybox", scratch)}
        if not args.no_daemon:
            data["daemon"] = daemon_rows(args.reps, args.containers, args.concurrent, scratch)
    finally:
        for config in ("root", "unprivileged"):
            stop_zygotes(scratch / f"runtime-{config}")
        shutil.rmtree(scratch, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(data, indent=1) + "\n")
    text = markdown(data)
    (args.out / "startup.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
