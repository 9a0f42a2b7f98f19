"""Smoke tests of the benchmark harness itself (benchmarks/): each is quick,
and none times anything — the numbers live in the suite's output."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: quick tests of the benchmark harness "
                            "(benchmarks/), selected with -m bench")
