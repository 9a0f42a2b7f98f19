"""How much of Linux brandpy covers (`brandpy coverage`, which runs the
workloads: brandpy/cli.py).

The table's counts beside gVisor's and illumos LX's (their tables,
extracted into syscalls/reference/, over the same x86_64 numbers); and
for a workload's statistics, which calls it used, how each was handled,
and whether it will run.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from .report import SUPPORT
from .table import table

REFERENCE = Path(__file__).with_name("reference")


def _tsv(name: str) -> list[dict[str, str]]:
    with (REFERENCE / name).open(encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def static_counts() -> dict[str, Counter[str]]:
    """support level -> count, per runtime, over the syscalls Linux has."""
    ours = Counter(r.support for r in table().rows if r.name)
    gvisor = Counter(row["status"] for row in _tsv("gvisor-amd64-syscalls.tsv"))
    lx = Counter("full" if row["status"] == "implemented" else "unimplemented"
                 for row in _tsv("lx-brand-amd64-syscalls.tsv"))
    return {"brandpy": ours, "gVisor (runsc)": gvisor, "illumos LX": lx}


def print_static(out: TextIO = sys.stdout) -> None:
    counts = static_counts()
    levels = [s for s in SUPPORT if any(c[s] for c in counts.values())]
    out.write(f"{'':<16}" + "".join(f"{lvl:>15}" for lvl in levels) + f"{'total':>8}\n")
    for runtime, c in counts.items():
        out.write(f"{runtime:<16}" + "".join(f"{c[lvl]:>15}" for lvl in levels)
                  + f"{sum(c.values()):>8}\n")
    out.write("\nbrandpy by disposition: " + ", ".join(
        f"{n} {d}" for d, n in Counter(r.disposition for r in table().rows if r.name)
        .most_common()) + "\n")
    out.write("(LX marks a call implemented or not; 'none' counts calls Linux itself no "
              "longer implements on x86_64.)\n")


def verdict(stats: dict[str, Any], status: int) -> dict[str, Any]:
    """Which syscalls the workload used, how each was handled, and whether it
    will run here: it will unless a call was unsupported or denied."""
    rows = {r.name: r for r in table().rows if r.name}
    used = {}
    for name, s in stats["Syscalls"].items():
        row = rows.get(name)
        used[name] = {"Calls": s["Calls"], "Support": row.support if row else "none",
                      "Disposition": row.disposition if row else "nosys",
                      "Note": row.note if row else "no such syscall"}
    failing = [{"Syscall": e["Syscall"], "Calls": e["Calls"], "Reason": e["Reason"]}
               for e in stats["Ledger"]]
    return {"ExitStatus": status, "Used": used, "WouldFail": failing,
            "WillRun": not failing}


def print_verdict(result: dict[str, Any], out: TextIO = sys.stdout) -> None:
    out.write(f"{'syscall':<22}{'calls':>8}  {'support':<14}handling\n")
    for name, u in sorted(result["Used"].items(), key=lambda kv: -kv[1]["Calls"]):
        out.write(f"{name:<22}{u['Calls']:>8}  {u['Support']:<14}{u['Disposition']}: "
                  f"{u['Note']}\n")
    out.write(f"\n{len(result['Used'])} syscalls used; exit status {result['ExitStatus']}\n")
    if result["WillRun"]:
        out.write("verdict: will run (no call was unsupported or denied)\n")
        return
    out.write("verdict: may not run; these calls failed:\n")
    for f in result["WouldFail"]:
        out.write(f"  {f['Syscall']} ×{f['Calls']}: {f['Reason']}\n")
