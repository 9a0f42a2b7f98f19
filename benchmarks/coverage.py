"""`python -m benchmarks.coverage`: CPython's regression tests for the
OS-facing modules under native chroot, proot, runsc-ptrace and brandpy;
writes benchmarks/results/coverage.{md,json,png} (and timestamped copies
in history/) and prints the Markdown."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import runners
from .cli import comma_list, run_and_publish
from .coverage_chart import write_chart
from .coverage_modules import MODULES
from .coverage_report import to_json, to_markdown
from .coverage_results import CoverageResults
from .coverage_suite import (
    DEFAULT_ATTRIBUTE,
    DEFAULT_MODULE_TIMEOUT,
    DEFAULT_PER_TEST,
    CoverageConfig,
    run_coverage,
)
from .publish import RESULTS, publish

# The CPU-pinned brandpy is a speed knob of the performance suite, not a
# different emulation: it is left out unless asked for.
DEFAULT_RUNNERS = ["native", "proot", "runsc", "brandpy-python", "brandpy-native"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.coverage",
                                description="Syscall-coverage benchmark: CPython's own "
                                "regression tests under each runner, side by side.")
    p.add_argument("--modules", default=",".join(MODULES),
                   help="comma-separated test modules (default: the OS-facing list, "
                   + ", ".join(MODULES) + ")")
    p.add_argument("--runners", default=",".join(DEFAULT_RUNNERS),
                   help="comma-separated (default: " + ",".join(DEFAULT_RUNNERS)
                   + "; native is always included): "
                   + ", ".join(r.name for r in runners.RUNNERS))
    p.add_argument("--per-test-timeout", type=float, default=DEFAULT_PER_TEST,
                   help=f"seconds one test may run before its module is ended with a dump "
                   f"of its stacks (default {DEFAULT_PER_TEST:.0f})")
    p.add_argument("--module-timeout", type=float, default=DEFAULT_MODULE_TIMEOUT,
                   help=f"seconds before a whole module is killed (default "
                   f"{DEFAULT_MODULE_TIMEOUT:.0f})")
    p.add_argument("--attribute", type=int, default=DEFAULT_ATTRIBUTE,
                   help=f"tests lost under brandpy that are run again alone with --report, "
                   f"per module and engine (default {DEFAULT_ATTRIBUTE}; 0: none)")
    p.add_argument("--online", action="store_true",
                   help="keep the host's network (default, as root: a network namespace "
                   "with only loopback, so no test reaches beyond the machine)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"output directory ({RESULTS})")
    return p


def write(results: CoverageResults, out: Path) -> list[Path]:
    return publish(out, "coverage", results.meta["started"], to_markdown(results),
                   to_json(results), lambda png: write_chart(results, png))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    modules = comma_list(args.modules)
    try:
        chosen = runners.by_names(comma_list(args.runners))
    except ValueError as exc:
        print(f"benchmarks.coverage: {exc}", file=sys.stderr)
        return 2
    if unknown := [m for m in modules if not m.startswith("test_")]:
        print(f"benchmarks.coverage: not a regrtest module: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    offline = not args.online
    if offline and os.geteuid() != 0:
        print("benchmarks.coverage: keeping tests off the network needs root; run as root "
              "or pass --online", file=sys.stderr)
        return 2
    config = CoverageConfig(modules=modules, runners=chosen, per_test=args.per_test_timeout,
                            module_timeout=args.module_timeout, attribute=args.attribute,
                            offline=offline)
    return run_and_publish(
        lambda log: run_coverage(config, log=log, progress=lambda partial: write(partial, args.out)),
        lambda results: write(results, args.out), to_markdown)


if __name__ == "__main__":
    sys.exit(main())
