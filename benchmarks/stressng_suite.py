"""The stress-ng run: Debian's stress-ng unpacked into a private copy of
the Debian rootfs, every stressor of the chosen classes run alone with
`--verify` under every runner, three times. Natively first: a stressor
that does not pass every native repeat (skipped for want of hardware or
kernel support, failing, or flaky) is set aside and not run elsewhere.
Then the others, round-robin; each stressor brandpy loses is run once
more with `--trace`, so the ledger and the failed trapped calls name the
calls behind the loss."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import offline
from .confine import Confinement, group_name
from .coverage_results import Attribution
from .coverage_suite import clear_tmp, privileged, with_report, with_trace, write_hosts
from .execute import become_subreaper, drop_stray_signals, execute
from .ledger import parse_ledger
from .runners import NATIVE, Brandpy, Runner
from .stopstats import split_stats
from .stressng_results import BASELINE, PASSED, StressResults, StressRun, classify, problems
from .suite import Log, git_commit, rotate, usable
from .syscall_trace import failed_calls
from .workspace import IMAGES, Workspace

IMAGE = "debian"
# Made by `make bench-debs` (benchmarks/fetch_debs.sh): stress-ng and what it
# needs beyond the Debian test image, as .debs.
DEBS = Path(os.environ.get("BRANDPY_BENCH_DEBS", "/var/cache/brandpy/bench-debs"))
# stress-ng 0.15 (bookworm) has no `signal` class: its signal stressors are `interrupt`'s.
CLASSES = ["os", "filesystem", "scheduler", "pipe", "interrupt", "memory"]
REPEATS = 3
DEFAULT_OPS = 100            # bogo operations per stressor: the same work for every runner
DEFAULT_TIMEOUT = 2          # stress-ng's own --timeout, seconds, for the slow stressors
DEFAULT_BACKSTOP = 60.0      # the host's kill, seconds
DEFAULT_ATTRIBUTE = 60       # traced reruns per brandpy engine
LIST_TIMEOUT = 60.0


@dataclass
class StressConfig:
    runners: list[Runner]
    classes: list[str]
    stressors: list[str] | None = None     # only these (None: every stressor of the classes)
    repeats: int = REPEATS
    ops: int = DEFAULT_OPS
    timeout: int = DEFAULT_TIMEOUT
    backstop: float = DEFAULT_BACKSTOP
    attribute: int = DEFAULT_ATTRIBUTE
    offline: bool = True                   # own network namespace, loopback only
    confine: bool = True                   # runs in a cgroup with memory and PID limits
    images: Path = IMAGES
    debs: Path = DEBS


def stress_argv(stressor: str, config: StressConfig) -> list[str]:
    """One instance of the stressor, bounded by bogo operations and time,
    checking its own results; scratch files in /tmp."""
    return ["stress-ng", f"--{stressor}", "1", f"--{stressor}-ops", str(config.ops),
            "--timeout", f"{config.timeout}s", "--verify", "--metrics-brief",
            "--temp-path", "/tmp"]


def run_stressng(config: StressConfig, log: Log,
                 progress: Callable[[StressResults], object] = lambda results: None
                 ) -> StressResults:
    become_subreaper()
    drop_stray_signals()
    network = offline.network(config.offline)
    started, commit = time.time(), git_commit()
    # As in the CPython suite: brandpy as privileged as the others, its ledger printed.
    options = privileged()
    chosen = with_report(config.runners, options)
    with contextlib.ExitStack() as stack:
        confinement = stack.enter_context(Confinement(group_name())) if config.confine else None
        limits = (f"memory {confinement.memory >> 20} MiB, {confinement.pids} PIDs"
                  if confinement else "none")
        ws = stack.enter_context(Workspace(config.images))
        root = prepare_rootfs(ws, config.debs)
        available, unavailable = usable(chosen, ws, log, IMAGE, ["stress-ng", "--version"])
        native = next((r for r in available if r.name == NATIVE), None)
        if native is None:
            raise RuntimeError(f"the native runner is needed to enumerate and judge the "
                               f"stressors: {unavailable.get(NATIVE)}")
        classes = list_classes(native, root, ws.state, config.classes)
        stressors = choose(classes, config.stressors)
        results = StressResults(
            meta={}, classes=classes, stressors=stressors, runners=[r.name for r in available],
            labels={r.name: r.label for r in chosen}, unavailable=unavailable,
            argv=stress_argv("STRESSOR", config))

        def publish() -> None:
            results.meta = {
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "duration_s": round(time.time() - started, 1), "kernel": platform.release(),
                "cpus": os.cpu_count(), "commit": commit, "user": os.geteuid(),
                "pythonpath": os.environ.get("PYTHONPATH"), "network": network,
                "stress_ng": stress_ng_version(native, root, ws.state),
                "repeats": config.repeats, "ops": config.ops, "timeout_s": config.timeout,
                "backstop_s": config.backstop, "brandpy_options": list(options),
                "cgroup_limits": limits,
            }
            progress(results)

        def one(runner: Runner, stressor: str, rep: int, n: int, of: int) -> None:
            run = run_stressor(runner, root, ws.state, stressor, rep, config, confinement)
            results.runs.setdefault((stressor, runner.name), []).append(run)
            first = run.detail.splitlines()[0] if run.detail else ""
            log(f"[{rep + 1}/{config.repeats} {n + 1}/{of}] {stressor:<16}{runner.name:<16}"
                f"{run.wall:7.2f} s  {run.outcome:<8}{first[:100]}")

        for rep in range(config.repeats):
            for i, stressor in enumerate(stressors):
                one(native, stressor, rep, i, len(stressors))
        publish()
        eligible = results.eligible()
        others = [r for r in available if r is not native]
        log(f"{len(eligible)} of {len(stressors)} stressors pass natively every time; "
            f"running them under {', '.join(r.name for r in others)}")
        for rep in range(config.repeats):
            for i, stressor in enumerate(eligible):
                for runner in rotate(others, rep + i):
                    one(runner, stressor, rep, i, len(eligible))
            publish()
        for runner in others:
            if isinstance(runner, Brandpy) and config.attribute > 0:
                attribute(results, runner, root, ws.state, config, log, confinement)
        publish()
    return results


def prepare_rootfs(ws: Workspace, debs: Path) -> Path:
    """The workspace's Debian copy with the fetched packages unpacked into it."""
    if not (debs / "READY").exists():
        raise FileNotFoundError(f"{debs} holds no fetched packages: run `make bench-debs`")
    root = ws.rootfs(IMAGE)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    write_hosts(root)
    return root


_CLASS = re.compile(r"class '([\w-]+)' stressors: (.*)")


def list_classes(native: Runner, root: Path, state: Path,
                 names: list[str]) -> dict[str, list[str]]:
    """Each class's stressors, as the image's stress-ng lists them."""
    found = {}
    for name in names:
        out = execute(native.command(root, ["stress-ng", "--class", f"{name}?"], state),
                      native.env(state), LIST_TIMEOUT)
        text = out.stdout + out.stderr
        m = _CLASS.search(text)
        if out.status != 0 or m is None or m.group(1) != name:
            raise ValueError(f"stress-ng --class {name}? said: {text.strip()[:300]}")
        found[name] = m.group(2).split()
    return found


def choose(classes: dict[str, list[str]], only: list[str] | None) -> list[str]:
    """Every stressor of the classes once, in name order; or only the named
    ones, which must belong to one of the classes."""
    every = sorted({s for members in classes.values() for s in members})
    if only is None:
        return every
    if unknown := [s for s in only if s not in every]:
        raise ValueError(f"not a stressor of the classes {', '.join(classes)}: "
                         f"{', '.join(unknown)}")
    return [s for s in every if s in only]


def stress_ng_version(native: Runner, root: Path, state: Path) -> str:
    out = execute(native.command(root, ["stress-ng", "--version"], state), native.env(state),
                  LIST_TIMEOUT)
    return out.stdout.strip() or out.stderr.strip()


def run_stressor(runner: Runner, root: Path, state: Path, stressor: str, rep: int,
                 config: StressConfig, confinement: Confinement | None) -> StressRun:
    clear_tmp(root)
    argv = runner.command(root, stress_argv(stressor, config), state)
    if confinement is not None:
        argv = confinement.wrap(argv)
    out = execute(argv, runner.env(state), config.backstop)
    stderr, ledger = out.stderr, None
    if isinstance(runner, Brandpy):
        ledger = parse_ledger(stderr)
        stderr, _ = split_stats(stderr)     # the stats table, and the ledger after it
    text = out.stdout + stderr
    outcome = classify(out.status, text, out.timed_out)
    detail = "" if outcome == PASSED else (problems(text) or f"exit {out.status}")
    return StressRun(stressor=stressor, runner=runner.name, repeat=rep, status=out.status,
                     wall=out.wall, outcome=outcome, detail=detail, ledger=ledger)


def attribute(results: StressResults, runner: Brandpy, root: Path, state: Path,
              config: StressConfig, log: Log, confinement: Confinement | None) -> None:
    """Each stressor the runner lost, run once more traced, after (once) the
    baseline stressor that shows what the harness itself makes fail."""
    lost = results.lost(runner.name)
    if not lost:
        return
    base = traced_run(runner, root, state, BASELINE, config, confinement)
    results.baselines[runner.name] = base
    log(f"  baseline {runner.name:<16}{BASELINE}: {base.traced}")
    for stressor in lost[:config.attribute]:
        plain = next(r for r in results.runs[stressor, runner.name] if r.outcome != PASSED)
        a = traced_run(runner, root, state, stressor, config, confinement, plain)
        results.attributions.append(a)
        failed = ", ".join(f"{c.syscall} {c.errno}" for c in results.own_failures(a)[:8])
        log(f"  traced {runner.name:<16}{stressor}: {a.traced}; failed trapped calls: "
            f"{failed or 'none'}")
    if len(lost) > config.attribute:
        log(f"  {len(lost) - config.attribute} more stressors lost under {runner.name} "
            f"not run again (--attribute {config.attribute})")


def traced_run(runner: Brandpy, root: Path, state: Path, stressor: str,
               config: StressConfig, confinement: Confinement | None,
               plain: StressRun | None = None) -> Attribution:
    """The stressor once more under --trace, for the trapped calls that
    failed; the ledger and the failure are the plain run's when there is
    one (tracing turns the native engine's user notification off, so only
    the plain runs are the benchmark's conditions)."""
    path = state / "stressng-trace.jsonl"
    path.unlink(missing_ok=True)
    traced = run_stressor(with_trace(runner, path), root, state, stressor, 0, config,
                          confinement)
    shown = plain or traced
    a = Attribution(module="stress-ng", runner=runner.name, test_id=stressor,
                    outcome=shown.outcome, ledger=shown.ledger, detail=shown.detail,
                    traced=traced.outcome, failed=failed_calls(path))
    path.unlink(missing_ok=True)
    return a
