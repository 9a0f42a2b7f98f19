"""The coverage run: every test module under every runner, one at a time,
in a private copy of the Debian rootfs; then each test that passes
natively but not under brandpy is run again on its own with `--report`,
so the ledger names the unsupported or denied calls that test made."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from . import offline
from .coverage_modules import BASELINE, EXCLUDED, regrtest_args
from .coverage_results import NOT_RUN, Attribution, CoverageResults, ModuleRun
from .execute import Outcome, become_subreaper, execute
from .ledger import parse_ledger
from .regrtest_records import parse
from .runners import Brandpy, Runner
from .stopstats import split_stats
from .suite import Log, git_commit, usable
from .syscall_trace import failed_calls
from .workspace import IMAGES, Workspace

HERE = Path(__file__).resolve().parent
DRIVER = "/bench/regrtest_driver.py"
IMAGE = "debian"
STDERR_TAIL = 30             # lines kept of a run's own stderr
DEFAULT_PER_TEST = 300.0
DEFAULT_MODULE_TIMEOUT = 3600.0
DEFAULT_ATTRIBUTE = 40       # reruns per (module, runner)


@dataclass
class CoverageConfig:
    modules: list[str]
    runners: list[Runner]
    per_test: float = DEFAULT_PER_TEST           # the guest's watchdog, per test
    module_timeout: float = DEFAULT_MODULE_TIMEOUT   # the host's backstop, per module
    attribute: int = DEFAULT_ATTRIBUTE
    offline: bool = True                         # own network namespace, loopback only
    images: Path = IMAGES


PRIVILEGED = ("--cap-add", "ALL", "--security-opt", "seccomp=unconfined")
# host devices the suite uses that are not in a container's /dev (the other
# runners see the host's /dev, or in runsc none)
DEVICES = ("/dev/vsock",)


def privileged() -> tuple[str, ...]:
    return PRIVILEGED + tuple(opt for dev in DEVICES if os.path.exists(dev)
                              for opt in ("--device", dev))


def run_coverage(config: CoverageConfig, log: Log,
                 progress: Callable[[CoverageResults], object] = lambda results: None
                 ) -> CoverageResults:
    """Each module under every runner, then its lost tests run again alone;
    progress gets the results so far after each module, so a run stopped
    early still leaves the modules it finished."""
    become_subreaper()
    network = offline.network(config.offline)
    started, commit = time.time(), git_commit()
    # brandpy prints its ledger at exit; the other runners have none. It runs
    # as privileged as they do (every capability the machine's root has, no
    # seccomp profile): the benchmark measures emulation, not Docker's
    # default policy. What brandpy never emulates (module loading, reboot...)
    # stays denied and shows in the ledger.
    options = privileged()
    chosen = with_report(config.runners, options)
    with Workspace(config.images) as ws:
        rootfs = prepare_rootfs(ws)
        available, unavailable = usable(chosen, ws, log, IMAGE, ["python3", "-c", "pass"])
        results = CoverageResults(
            meta={}, modules=[], runners=[r.name for r in available],
            labels={r.name: r.label for r in chosen}, unavailable=unavailable,
            excluded={m: EXCLUDED[m] for m in config.modules if m in EXCLUDED})
        baselined: set[str] = set()
        for i, module in enumerate(config.modules):
            for runner in available:
                run = run_module(runner, rootfs, ws.state, module, regrtest_args(module), config)
                results.runs[module, runner.name] = run
                c = run.counts()
                log(f"[{i + 1}/{len(config.modules)}] {module:<26}{runner.name:<16}"
                    f"{run.wall:8.1f} s  {run.verdict:<11} {c['passed']} passed, "
                    f"{c['failed']} failed, {c['error']} errors, {c['skipped']} skipped")
            results.modules.append(module)
            for runner in available:
                if isinstance(runner, Brandpy) and config.attribute > 0:
                    attribute(results, runner, module, rootfs, ws.state, config, log, baselined)
            results.meta = {
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "duration_s": round(time.time() - started, 1), "kernel": platform.release(),
                "cpus": os.cpu_count(), "commit": commit, "user": os.geteuid(),
                "pythonpath": os.environ.get("PYTHONPATH"), "network": network,
                "per_test_timeout_s": config.per_test, "module_timeout_s": config.module_timeout,
                "modules_planned": list(config.modules), "brandpy_options": list(options),
            }
            progress(results)
    return results


def prepare_rootfs(ws: Workspace) -> Path:
    """The workspace's Debian copy, with the driver in /bench."""
    root = ws.rootfs(IMAGE)
    shutil.copy(HERE / "regrtest_driver.py", root / DRIVER.lstrip("/"))
    write_hosts(root)
    return root


def write_hosts(root: Path) -> None:
    """The /etc/hosts every Docker container gets (debootstrap writes none,
    and without it `localhost` does not resolve in the chroot)."""
    (root / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"127.0.1.1\t{socket.gethostname()}\n")


def with_report(chosen: list[Runner], options: tuple[str, ...]) -> list[Runner]:
    """The runners, brandpy's printing its ledger at exit and given options."""
    return [replace(r, options=(*r.options, "--report", *options))
            if isinstance(r, Brandpy) else r for r in chosen]


def with_trace(runner: Brandpy, path: Path) -> Brandpy:
    """The runner writing its JSON syscall trace to path."""
    return replace(runner, options=(*runner.options, "--trace", str(path), "--trace-json"))


def run_module(runner: Runner, rootfs: Path, state: Path, module: str, args: list[str],
               config: CoverageConfig) -> ModuleRun:
    clear_tmp(rootfs)
    guest = ["python3", DRIVER, "--per-test", f"{config.per_test:g}", *args]
    argv = runner.command(rootfs, guest, state)
    return to_module_run(module, runner, argv, execute(argv, runner.env(state),
                                                       config.module_timeout))


def to_module_run(module: str, runner: Runner, argv: list[str], out: Outcome) -> ModuleRun:
    stderr = out.stderr
    ledger = None
    if isinstance(runner, Brandpy):
        ledger = parse_ledger(stderr)
        stderr, _ = split_stats(stderr)     # the stats table, and the ledger after it
    tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL:])
    return ModuleRun(module=module, runner=runner.name, argv=argv, status=out.status,
                     wall=out.wall, killed=out.timed_out, regrtest=parse(out.stdout, out.stderr),
                     ledger=ledger, stderr_tail=tail)


def clear_tmp(rootfs: Path) -> None:
    """What earlier runs left in the guest's /tmp and /var/tmp (a test cut
    short does not clean up after itself)."""
    for tmp in (rootfs / "tmp", rootfs / "var/tmp"):
        for entry in tmp.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def attribute(results: CoverageResults, runner: Brandpy, module: str, rootfs: Path,
              state: Path, config: CoverageConfig, log: Log, baselined: set[str]) -> None:
    """Run each test of the module lost under the runner alone, after (once
    per runner) a baseline test that shows what every rerun shows. Tests the
    module never reached (it timed out first) are not lost to a call of
    their own: left out."""
    losses = [loss for loss in results.lost(module, runner.name) if loss.outcome != NOT_RUN]
    if not losses:
        return
    if runner.name not in baselined:
        baselined.add(runner.name)
        base = rerun(runner, rootfs, state, *BASELINE, config, trace=True)
        if base.outcome == "passed" and base.traced == "passed":
            results.baselines[runner.name] = base
        log(f"  baseline {runner.name:<16}{base.test_id}: {_calls(base)}")
    for loss in losses[:config.attribute]:
        a = rerun(runner, rootfs, state, module, loss.test_id, config)
        results.attributions.append(a)
        log(f"  rerun {runner.name:<16}{loss.test_id}: {_calls(a)}")
    if len(losses) > config.attribute:
        log(f"  {module} under {runner.name}: {len(losses) - config.attribute} more lost "
            f"tests not run again (--attribute {config.attribute})")


def rerun(runner: Brandpy, rootfs: Path, state: Path, module: str, test_id: str,
          config: CoverageConfig, trace: bool = False) -> Attribution:
    """The test alone with --report; if it fails (or trace is asked for)
    once more with --trace. Twice, not once traced: tracing turns the
    native engine's seccomp user notification off, so only the plain
    rerun repeats the module run's conditions."""
    args = regrtest_args(module, test_id)
    plain = run_module(runner, rootfs, state, module, args, config)
    got = plain.outcome(test_id)
    a = Attribution(module=module, runner=runner.name, test_id=test_id, outcome=got.outcome,
                    ledger=plain.ledger, detail=got.detail)
    if got.outcome != "passed" or trace:
        path = state / "rerun-trace.jsonl"
        path.unlink(missing_ok=True)
        a.traced = run_module(with_trace(runner, path), rootfs, state, module, args, config).outcome(test_id).outcome
        a.failed = failed_calls(path)
        path.unlink(missing_ok=True)
    return a


def _calls(a: Attribution) -> str:
    ledger = ", ".join(f"{r.syscall} {r.error}" for r in a.ledger or []) or "none"
    text = f"{a.outcome}; ledger: {ledger}"
    if a.traced is not None:
        failed = ", ".join(f"{c.syscall} {c.errno}" for c in a.failed[:8]) or "none"
        text += f"; traced: {a.traced}, failed trapped calls: {failed}"
    return text
