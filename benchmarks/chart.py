"""The PNG bar chart: each runner's time relative to native per workload
(and its geometric mean), and beside it the micro-benchmark's µs per call
against the bare ptrace stop."""

from __future__ import annotations

import math
from pathlib import Path

from .results import Results
from .runners import NATIVE
from .stats import median

NAN = math.nan


def write_chart(results: Results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = results.micro_ops()
    fig, axes = plt.subplots(1, 2 if ops else 1, figsize=(15 if ops else 10, 6.5),
                             gridspec_kw={"width_ratios": [3, 1.3] if ops else [1]},
                             squeeze=False)
    _ratios(results, axes[0][0])
    if ops:
        _micro(results, ops, axes[0][1])
    fig.suptitle(f"brandpy benchmarks — {results.meta['started']}, {results.meta['reps']} runs "
                 "per cell (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax, results: Results, groups: list[str],
          series: dict[str, list[float | None]]) -> None:
    """Grouped bars, one series per runner; a runner keeps its colour in
    both panels (matplotlib's default cycle, by column order)."""
    width = 0.8 / max(len(series), 1)
    for i, (runner, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [NAN if v is None else v for v in values], width,
               label=results.labels[runner], color=f"C{results.columns.index(runner)}")
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.grid(axis="y", which="both", alpha=0.3)


def _ratios(results: Results, ax) -> None:
    timed = [w for w in results.workloads if not w.micro]
    series = {}
    for r in results.runners:
        if r == NATIVE:
            continue
        series[r] = [results.ratio(w.name, r) for w in timed] + [results.geomean(r)[0]]
    _bars(ax, results, [w.title for w in timed] + ["geometric mean"], series)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("median time / native median (log scale)")
    ax.set_title("workloads")
    ax.legend(fontsize=8)


def _micro(results: Results, ops: list[str], ax) -> None:
    series = {}
    for r in results.runners:
        cell = results.cell("micro", r)
        ok = cell is not None and cell.verdict not in ("failed", "timeout")
        series[r] = [cell.metric(op) if cell is not None and ok else None for op in ops]
    _bars(ax, results, ops, series)
    if (floor := results.floor) is not None:
        for samples, style, where in ((floor.any_cpu, "--", "any CPU"),
                                      (floor.same_cpu, ":", "one CPU")):
            if (stop := median(samples)) is not None:
                ax.axhline(stop, color="red", linestyle=style, linewidth=1,
                           label=f"bare ptrace stop, {where}: {stop:.1f} µs")
    ax.set_ylabel("µs per call (log scale)")
    ax.set_title("micro-benchmark")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
