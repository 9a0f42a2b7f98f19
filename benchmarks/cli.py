"""What the two suites' command lines (benchmarks.run, benchmarks.coverage)
share: their comma-separated lists, and the tail that runs the suite and
publishes its results."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .suite import Log

R = TypeVar("R")


def comma_list(text: str) -> list[str]:
    """--runners, --workloads, --modules: comma-separated names, blanks dropped."""
    return [n.strip() for n in text.split(",") if n.strip()]


def log_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_and_publish(run: Callable[[Log], R], write: Callable[[R], list[Path]],
                    markdown: Callable[[R], str]) -> int:
    """Run the suite (progress lines on stderr), write its results and print
    their Markdown. SIGTERM unwinds like Ctrl-C: the running command is
    killed, the workspace removed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    results = run(log_line)
    written = write(results)
    print(markdown(results))
    print("written: " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0
