"""Ratios, geometric means, verdicts, claims and the Markdown/JSON output,
on results made up here (no runner involved)."""

import json

import pytest

from benchmarks import claims
from benchmarks.report import to_json, to_markdown
from benchmarks.results import Cell, Floor, Results, Run
from benchmarks.runners import RUNNERS, Proot
from benchmarks.workloads import Workload

pytestmark = pytest.mark.bench

LABELS = {"native": "native", "proot": "proot", "brandpy-python": "brandpy python",
          "brandpy-native": "brandpy native"}
WORK = [Workload("a", "work a", "busybox", ("/bin/a",)),
        Workload("b", "work b", "debian", ("/bin/b",)),
        Workload("startup", "start-up", "busybox", ("/bin/true",), in_geomean=False)]


def run(wall: float, output: str = "out", status: int = 0, **kw) -> Run:
    return Run(wall=wall, seconds=wall, cpu=wall, status=status, timed_out=False, output=output,
               stderr_head="boom" if status else "", **kw)


def make(cells: dict[tuple[str, str], list[Run]]) -> Results:
    made = {}
    for (w, r), runs in cells.items():
        cell = Cell(next(x for x in WORK if x.name == w), r, runs)
        cell.reference = "out"
        made[w, r] = cell
    return Results(meta={"started": "2026-01-01T00:00:00Z", "duration_s": 1.0, "reps": 3,
                         "timeout_s": 10, "kernel": "6.x", "cpus": 2, "commit": "abc",
                         "user": 0},
                   workloads=WORK, runners=["native", "proot", "brandpy-python"], labels=LABELS,
                   unavailable={"brandpy-native": "trial run of /bin/true exited 2: "
                                "invalid choice: 'native'"},
                   cells=made, floor=Floor(any_cpu=[5.0], same_cpu=[3.0], native=[0.1]))


@pytest.fixture
def results() -> Results:
    return make({
        ("a", "native"): [run(1.0), run(3.0), run(2.0)],
        ("a", "proot"): [run(4.0), run(40.0), run(8.0)],
        ("a", "brandpy-python"): [run(2.0), run(2.0), run(2.0, output="other")],
        ("b", "native"): [run(1.0)],
        ("b", "proot"): [run(2.0)],
        ("b", "brandpy-python"): [run(1.0), run(9.0, status=1)],
        ("startup", "native"): [run(0.01)],
        ("startup", "proot"): [run(1.0)],
        ("startup", "brandpy-python"): [run(0.1)],
    })


def test_medians_ratios_and_verdicts(results):
    assert results.native_time("a") == 2.0
    assert results.ratio("a", "proot") == 4.0            # median 8 / median 2
    assert results.cell("a", "brandpy-python").verdict == "mismatch"
    assert results.cell("b", "brandpy-python").verdict == "failed"
    assert results.ratio("b", "brandpy-python") is None  # a failed cell has no ratio


def test_ratio_past_startup_takes_out_the_runners_extra_start_up(results):
    # proot on a: median 8 s, start-up 1 s against native's 0.01 s
    assert results.ratio_past_startup("a", "proot") == pytest.approx((8.0 - 0.99) / 2.0)
    assert results.ratio_past_startup("b", "brandpy-python") is None   # failed cell


def test_geomean_counts_only_usable_workloads_in_it(results):
    value, got, of = results.geomean("proot")
    assert (got, of) == (2, 2)                            # start-up is left out
    assert value == pytest.approx((4.0 * 2.0) ** 0.5)
    assert results.geomean("brandpy-python")[1:] == (1, 2)


def test_markdown_has_a_column_per_runner_and_reports_the_unavailable(results):
    md = to_markdown(results)
    header = next(line for line in md.splitlines() if line.startswith("| workload | rootfs"))
    assert header.count("|") == 2 + 1 + len(LABELS)
    assert "brandpy native" in header
    row_a = next(line for line in md.splitlines() if line.startswith("| work a"))
    assert "4.00×" in row_a and "≠" in row_a and row_a.rstrip(" |").endswith("unavailable")
    assert "invalid choice: 'native'" in md
    assert "exit 1 in 1 of 2 runs" in md
    assert "**geometric mean**" in md


def test_json_is_complete_and_serialisable(results):
    data = json.loads(json.dumps(to_json(results)))
    assert {r["name"]: r["available"] for r in data["runners"]} == {
        "native": True, "proot": True, "brandpy-python": True, "brandpy-native": False}
    cell = next(c for c in data["cells"] if (c["workload"], c["runner"]) == ("a", "proot"))
    assert (cell["median_s"], cell["ratio"], cell["verdict"]) == (8.0, 4.0, "ok")
    assert [r["wall_s"] for r in cell["runs"]] == [4.0, 40.0, 8.0]
    assert data["geomean"]["proot"]["of"] == 2
    assert data["floor"]["stop_same_cpu"] == 3.0


def test_claims_about_an_unavailable_runner_are_not_applicable(results):
    verdicts = {c.text: c.verdict for c in claims.check(results)}
    assert list(verdicts.values()).count("n/a") == 4
    assert verdicts["every cell's output matches native's"] == "no"


def test_a_runner_with_a_missing_binary_says_so():
    fake = Proot("fake", "fake", binary="no-such-binary-for-brandpy-bench")
    assert fake.missing() == "`no-such-binary-for-brandpy-bench` is not installed"
    assert [r.name for r in RUNNERS][0] == "native"
