"""`python -m benchmarks.stressng`: Debian's stress-ng, one stressor at a
time with --verify, under native chroot, proot, runsc-ptrace and brandpy;
writes benchmarks/results/stressng.{md,json} (and timestamped copies in
history/) and prints the Markdown. STRESS_CLASSES and STRESSORS (comma
lists) give the defaults of --classes and --stressors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import runners
from .cli import comma_list, run_and_publish
from .coverage import DEFAULT_RUNNERS
from .publish import RESULTS, publish
from .stressng_report import to_json, to_markdown
from .stressng_results import StressResults
from .stressng_suite import (
    CLASSES,
    DEBS,
    DEFAULT_ATTRIBUTE,
    DEFAULT_BACKSTOP,
    DEFAULT_OPS,
    DEFAULT_TIMEOUT,
    REPEATS,
    StressConfig,
    run_stressng,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stressng",
                                description="Syscall-coverage benchmark: stress-ng's stressors "
                                "with --verify under each runner, side by side.")
    p.add_argument("--classes", default=os.environ.get("STRESS_CLASSES") or ",".join(CLASSES),
                   help="comma-separated stress-ng classes (default $STRESS_CLASSES or "
                   + ",".join(CLASSES) + ")")
    p.add_argument("--stressors", default=os.environ.get("STRESSORS") or "",
                   help="comma-separated stressors of those classes to run, the others left "
                   "out (default $STRESSORS, or all)")
    p.add_argument("--runners", default=",".join(DEFAULT_RUNNERS),
                   help="comma-separated (default: " + ",".join(DEFAULT_RUNNERS)
                   + "; native is always included): "
                   + ", ".join(r.name for r in runners.RUNNERS))
    p.add_argument("--repeats", type=int, default=REPEATS,
                   help=f"runs of each stressor per runner (default {REPEATS})")
    p.add_argument("--ops", type=int, default=DEFAULT_OPS,
                   help=f"bogo operations per run (default {DEFAULT_OPS})")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                   help=f"stress-ng's --timeout, seconds (default {DEFAULT_TIMEOUT})")
    p.add_argument("--backstop", type=float, default=DEFAULT_BACKSTOP,
                   help=f"seconds before a run is killed (default {DEFAULT_BACKSTOP:.0f})")
    p.add_argument("--attribute", type=int, default=DEFAULT_ATTRIBUTE,
                   help=f"lost stressors run again traced, per brandpy engine (default "
                   f"{DEFAULT_ATTRIBUTE}; 0: none)")
    p.add_argument("--online", action="store_true",
                   help="keep the host's network (default, as root: a network namespace "
                   "with only loopback)")
    p.add_argument("--no-confine", action="store_true",
                   help="run without the cgroup that bounds every run's memory and PIDs "
                   "(a stressor may then exhaust the host)")
    p.add_argument("--debs", type=Path, default=DEBS,
                   help=f"the fetched stress-ng packages (default {DEBS}; `make bench-debs`)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"output directory ({RESULTS})")
    return p


def write(results: StressResults, out: Path) -> list[Path]:
    return publish(out, "stressng", results.meta["started"], to_markdown(results),
                   to_json(results))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        chosen = runners.by_names(comma_list(args.runners))
    except ValueError as exc:
        print(f"benchmarks.stressng: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("benchmarks.stressng: the native reference (chroot) and the same privileges "
              "for every runner need root; run as root", file=sys.stderr)
        return 2
    config = StressConfig(runners=chosen, classes=comma_list(args.classes),
                          stressors=comma_list(args.stressors) or None, repeats=args.repeats,
                          ops=args.ops, timeout=args.timeout, backstop=args.backstop,
                          attribute=args.attribute, offline=not args.online,
                          confine=not args.no_confine, debs=args.debs)
    return run_and_publish(
        lambda log: run_stressng(config, log=log, progress=lambda partial: write(partial, args.out)),
        lambda results: write(results, args.out), to_markdown)


if __name__ == "__main__":
    sys.exit(main())
