"""`python -m benchmarks.run`: run the suite, write benchmarks/results/
(latest.md, latest.json, latest.png, and timestamped copies in history/)
and print the Markdown tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import runners, workloads
from .chart import write_chart
from .cli import comma_list, run_and_publish
from .publish import RESULTS, publish
from .report import to_json, to_markdown
from .results import Results
from .suite import DEFAULT_REPS, DEFAULT_TIMEOUT, Config, run_suite


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                description="brandpy's benchmark suite: workloads under "
                                "native, proot, runsc-ptrace and brandpy, interleaved.")
    p.add_argument("--reps", type=int, default=DEFAULT_REPS,
                   help=f"runs per cell, of which the median is taken (default {DEFAULT_REPS})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds before one run of a cell is killed, after which the cell's "
                   f"remaining runs are skipped (default {DEFAULT_TIMEOUT:.0f})")
    p.add_argument("--workloads", default=",".join(workloads.all_names()),
                   help="comma-separated (default: all): " + ", ".join(workloads.all_names()))
    p.add_argument("--runners", default=",".join(r.name for r in runners.RUNNERS),
                   help="comma-separated (default: all; native is always included): "
                   + ", ".join(r.name for r in runners.RUNNERS))
    p.add_argument("--micro-seconds", type=float, default=0.3,
                   help="seconds each micro-benchmark call runs for (default 0.3)")
    p.add_argument("--no-floor", action="store_true", help="skip the bare ptrace stop")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"output directory ({RESULTS})")
    return p


def write(results: Results, out: Path) -> list[Path]:
    return publish(out, "latest", results.meta["started"], to_markdown(results),
                   to_json(results), lambda png: write_chart(results, png))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        chosen = runners.by_names(comma_list(args.runners))
        loads = workloads.by_names(comma_list(args.workloads), args.micro_seconds)
    except ValueError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    if args.reps < 1:
        print("benchmarks: --reps must be at least 1", file=sys.stderr)
        return 2
    config = Config(workloads=loads, runners=chosen, reps=args.reps, timeout=args.timeout,
                    floor=not args.no_floor, floor_seconds=args.micro_seconds)
    return run_and_publish(lambda log: run_suite(config, log=log),
                           lambda results: write(results, args.out), to_markdown)


if __name__ == "__main__":
    sys.exit(main())
