import math

import pytest

from benchmarks.stats import geomean, median, ratio

pytestmark = pytest.mark.bench


def test_median_odd_even_and_empty():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([]) is None


def test_ratio_guards_missing_and_zero_bases():
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None


def test_geomean_of_ratios():
    assert geomean([2.0, 0.5]) == pytest.approx(1.0)
    assert geomean([1.0, 10.0, 100.0]) == pytest.approx(10.0)
    assert geomean([]) is None
    with pytest.raises(ValueError):
        geomean([1.0, 0.0])
    assert math.isclose(geomean([4.0]), 4.0)
