"""The workloads: what runs inside the container, in which rootfs, and how
its output is compared with native's.

Sizes are a compromise. A workload must last long enough natively that a
runner's fixed start-up cost (shown on its own by `startup`, which stays
out of the geometric mean) does not decide its ratio — above all the
pass-through ones, which back the "within 1.1x" claim: compute runs ~1.5 s,
and dd is timed by its own report. But runners that trap every syscall
(proot 5.1, runsc-ptrace) take 100-300x native on syscall-heavy ones, and
`make bench` should finish in about 15 minutes: those (find, tar, dd) get
~0.1-0.3 s natively, where trapped calls, not start-up, make the overhead.

Files the workloads read are put in the rootfs copies by `workspace.py`
under /bench; they write only below /tmp/bench, emptied before every run."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import normalise
from .normalise import Normaliser

FORK_EXEC_LOOPS = 500
FIND_PASSES = 10
TAR_CREATE_PASSES = 3
TAR_EXTRACT_PASSES = 2
PYTHON_IMPORTS = 10
DD_BLOCKS = 200_000
PIPELINE_LINES = 2_000_000
COMPUTE_LOOPS = 5_000_000
SCRATCH = "/tmp/bench"

_DD_SECONDS = re.compile(r"copied, ([\d.e+-]+) s,")


def dd_seconds(stdout: str) -> float | None:
    """The time dd reports for its copy loop (coreutils: "..., 0.0632 s, 13 GB/s")."""
    m = _DD_SECONDS.search(stdout)
    return float(m.group(1)) if m else None


@dataclass(frozen=True)
class Workload:
    name: str
    title: str                     # row title in the tables
    image: str                     # "busybox" or "debian"
    argv: tuple[str, ...]
    normalise: Normaliser = normalise.plain
    in_geomean: bool = True
    micro: bool = False            # stdout is "OP USEC" lines, one metric per OP
    scratch: tuple[str, ...] = field(default=(SCRATCH,))
    # The workload's own report of its duration, read from stdout; None: wall clock.
    timing: Callable[[str], float | None] | None = None


def sh(script: str) -> tuple[str, ...]:
    return ("/bin/sh", "-c", script)


def micro(seconds: float) -> Workload:
    """The static C micro-benchmark (micro.c): µs per call of a few syscalls."""
    return Workload("micro", "micro-benchmark", "busybox",
                    ("/bench/micro", "/bench/small.txt", str(seconds)),
                    normalise=normalise.numbers, in_geomean=False, micro=True)


WORKLOADS: list[Workload] = [
    Workload("startup", "start-up (/bin/true)", "busybox", ("/bin/true",), in_geomean=False),
    Workload("fork-exec", f"fork+exec ×{FORK_EXEC_LOOPS}", "busybox",
             sh(f"i=0; while [ $i -lt {FORK_EXEC_LOOPS} ]; do /bin/true; i=$((i+1)); done; "
                "echo $i")),
    Workload("find", f"find /usr ×{FIND_PASSES}", "debian",
             sh(f"for i in $(seq {FIND_PASSES}); do find /usr; done | wc -l")),
    Workload("tar-create", f"tar create ×{TAR_CREATE_PASSES}", "busybox",
             sh(f"for i in $(seq {TAR_CREATE_PASSES}); do tar cf - -C /bench tree | md5sum; "
                "done")),
    Workload("tar-extract", f"tar extract ×{TAR_EXTRACT_PASSES}", "busybox",
             sh(f"for i in $(seq {TAR_EXTRACT_PASSES}); do mkdir -p {SCRATCH}/$i && "
                f"tar xf /bench/tree.tar -C {SCRATCH}/$i && set -- {SCRATCH}/$i/tree/*/* && "
                "echo $#; done")),
    Workload("python-import", f"python3 import ×{PYTHON_IMPORTS}", "debian",
             sh(f"for i in $(seq {PYTHON_IMPORTS}); do "
                "python3 -c 'import json, email, http.client; print(json.dumps([1]))'; done")),
    # Timed by dd itself: the row measures read/write pass-through, which
    # is what it is for; sized by wall clock it would need a 1 s copy to
    # hide start-up, and that copy takes minutes under proot and runsc.
    Workload("dd", "dd 4 KiB → /dev/null", "debian",
             sh(f"dd if=/dev/zero of=/dev/null bs=4096 count={DD_BLOCKS} 2>&1"),
             normalise=normalise.dd, timing=dd_seconds),
    Workload("pipeline", "shell pipeline", "debian",
             sh(f"seq {PIPELINE_LINES} | grep 7 | sort -r | uniq | wc -l")),
    Workload("compute", "pure compute (awk)", "busybox",
             ("/usr/bin/awk", f"BEGIN {{ for (i = 0; i < {COMPUTE_LOOPS}; i++) s += i % 7; "
              "print s }")),
]


def by_names(names: list[str], micro_seconds: float) -> list[Workload]:
    """The named workloads in suite order ("micro" included)."""
    known = {w.name: w for w in [micro(micro_seconds), *WORKLOADS]}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [w for w in known.values() if w.name in names]


def all_names() -> list[str]:
    return ["micro", *(w.name for w in WORKLOADS)]
