"""Output normalisation and the parsing of brandpy's `--stats` report."""

import pytest

from benchmarks import normalise
from benchmarks.stopstats import split_stats
from benchmarks.suite import parse_pairs
from benchmarks.workloads import dd_seconds

pytestmark = pytest.mark.bench

STATS = """\
syscall                 calls  exit stops  emulated  errors
newfstatat                 18           0         0       0
openat                      3           1         0       1
total                      21           1         0       1
ptrace stops per trapped syscall: 1.048; other stops (fork/exec/signals): 9
"""


def test_plain_ignores_trailing_whitespace_only():
    assert normalise.plain("a  \nb\n\n") == normalise.plain("a\nb")
    assert normalise.plain(" a") != normalise.plain("a")


def test_numbers_hides_measurements_but_not_names():
    assert normalise.numbers("getppid 0.1021\nstat 12.5\n") == "getppid #\nstat #"
    assert normalise.numbers("stat 1") != normalise.numbers("open 1")


def test_dd_drops_time_and_throughput_only():
    a = ("500000+0 records in\n500000+0 records out\n"
         "2048000000 bytes (2.0 GB, 1.9 GiB) copied, 0.162 s, 12.6 GB/s\n")
    b = a.replace("0.162 s, 12.6 GB/s", "31.5 s, 65.0 MB/s")
    assert normalise.dd(a) == normalise.dd(b)
    assert normalise.dd(a) != normalise.dd(a.replace("500000+0 records out", "499999+0 records out"))


def test_split_stats_separates_program_stderr_from_report():
    own, stats = split_stats("warning: something\n" + STATS)
    assert own == "warning: something\n"
    assert stats is not None
    assert (stats.calls, stats.stops_per_call, stats.event_stops) == (21, 1.048, 9)
    assert stats.per_syscall["openat"] == {"calls": 3, "exit stops": 1, "emulated": 0,
                                           "errors": 1}


def test_split_stats_reads_columns_by_name_and_tolerates_new_ones():
    report = ("syscall   calls  notified  stops  emulated  errors\n"
              "openat       10         8      2         0       0\n"
              "total        10         8      2         0       0\n"
              "ptrace stops per trapped syscall: 0.200\n")
    _, stats = split_stats(report)
    assert stats is not None
    assert (stats.calls, stats.stops_per_call, stats.totals["notified"]) == (10, 0.2, 8)
    assert stats.event_stops is None


def test_split_stats_without_summary_line_counts_calls_only():
    _, stats = split_stats("syscall calls stops\ntotal 5 5\n")
    assert stats is not None and (stats.calls, stats.stops_per_call) == (5, None)


def test_split_stats_without_report():
    assert split_stats("just an error\n") == ("just an error\n", None)


def test_parse_pairs_skips_other_lines():
    assert parse_pairs("getppid 0.10\nnoise\nstat 1.5\n") == {"getppid": 0.10, "stat": 1.5}


def test_dd_seconds_reads_the_copy_time():
    assert dd_seconds("1+0 records out\n4096 bytes (4.1 kB) copied, 0.0632 s, 64.8 MB/s\n") \
        == 0.0632
    assert dd_seconds("dd: failed\n") is None
