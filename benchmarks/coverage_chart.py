"""The coverage PNG: per module, the share of the tests passing natively
that pass under each runner, and each module's wall time relative to
native's."""

from __future__ import annotations

import math
from pathlib import Path

from .coverage_results import CoverageResults
from .runners import NATIVE


def write_chart(results: CoverageResults, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modules = results.modules
    others = [r for r in results.runners if r != NATIVE]
    fig, (kept, slow) = plt.subplots(1, 2, figsize=(15, 1.2 + 0.42 * len(modules)),
                                     sharey=True)
    height = 0.8 / max(len(others), 1)
    for i, runner in enumerate(others):
        ys = [m + (i - (len(others) - 1) / 2) * height for m in range(len(modules))]
        colour = f"C{results.columns.index(runner)}"
        kept.barh(ys, [_kept(results, m, runner) for m in modules], height,
                  color=colour, label=results.labels[runner])
        slow.barh(ys, [_slowdown(results, m, runner) for m in modules], height, color=colour)
    kept.set_yticks(range(len(modules)), modules, fontsize=8)
    kept.invert_yaxis()
    kept.set_xlim(0, 100)
    kept.set_xlabel("% of the natively passing tests that pass")
    kept.grid(axis="x", alpha=0.3)
    slow.set_xscale("log")
    slow.axvline(1.0, color="black", linewidth=0.8)
    slow.set_xlabel("module wall time / native (log scale)")
    slow.grid(axis="x", which="both", alpha=0.3)
    totals = ", ".join(f"{results.labels[r]} {results.total(r)['passed']}"
                       for r in results.runners)
    fig.suptitle(f"CPython 3.11 regression tests — {results.meta['started']}; "
                 f"tests passed: {totals}", fontsize=10)
    fig.legend(*kept.get_legend_handles_labels(), loc="upper center", ncol=len(others),
               fontsize=8, bbox_to_anchor=(0.5, 0.97))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _kept(results: CoverageResults, module: str, runner: str) -> float:
    native = len(results.native_passes(module))
    if not native or results.run(module, runner) is None:
        return math.nan
    return 100.0 * (native - len(results.lost(module, runner))) / native


def _slowdown(results: CoverageResults, module: str, runner: str) -> float:
    run, native = results.run(module, runner), results.run(module, NATIVE)
    if run is None or native is None or native.wall <= 0:
        return math.nan
    return run.wall / native.wall
