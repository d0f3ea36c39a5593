"""The numbers a tracker shows (dlrun/trackers/numbers.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlrun.trackers.numbers import epoch_ms, shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float(np.float32(0.653)), 0.653),  # 0.652999997138977: float32's rounding, dropped
        (float(np.float32(0.85)), 0.85),
        (float(np.float32(1e-7)), 1e-7),
        (0.1234567890123, 0.1234567890123),  # a float64 value keeps every digit
        (3.0, 3.0),
    ],
)
def test_a_float32_is_shown_as_its_shortest_decimal(value, expected):
    assert shown(value) == expected
    assert np.float32(shown(value)) == np.float32(value)  # the same float32: nothing lost


def test_non_finite_values_pass_through():
    assert math.isnan(shown(float("nan"))) and shown(float("inf")) == float("inf")


def test_an_epoch_is_dated_from_the_runs_start_else_now():
    assert epoch_ms(1000.0, 2.5, now_ms=7) == 1_002_500
    assert epoch_ms(None, 2.5, now_ms=7) == 7
