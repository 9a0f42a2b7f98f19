"""Output normalisation for the correctness check: each cell's stdout is
compared with native's after removing what legitimately differs between
runs (timings, throughputs), and nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable

Normaliser = Callable[[str], str]

_NUMBER = re.compile(r"\d+(\.\d+)?")
# coreutils dd: "4096000 bytes (4.1 MB, 3.9 MiB) copied, 0.0123 s, 333 MB/s"
_DD_TIMING = re.compile(r"(copied), [\d.e+-]+ s, [\d.,]+ [kMGTP]?B/s")


def plain(text: str) -> str:
    """Trailing whitespace and trailing empty lines do not count."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def numbers(text: str) -> str:
    """Every number becomes '#': for outputs that are measurements (micro)."""
    return _NUMBER.sub("#", plain(text))


def dd(text: str) -> str:
    """dd's summary without its elapsed time and throughput."""
    return _DD_TIMING.sub(r"\1", plain(text))
