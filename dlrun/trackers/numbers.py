"""The numbers a tracker shows: as short as the run computed them, at the time they were made.

Training numbers are float32 on the device; read back as Python floats they
carry float32's rounding in full (0.653 becomes 0.652999997138977), which a
tracker's table prints as is. A value that is exactly a float32 is sent as the
shortest decimal that reads back as that float32 (0.653); any other value
(seconds, a float64 statistic) as it is.
"""

from __future__ import annotations

import math

import numpy as np


def shown(value: float) -> float:
    """The value as short as its precision: 0.652999997138977 (a float32) -> 0.653."""
    value = float(value)
    if not math.isfinite(value):
        return value
    single = np.float32(value)
    if float(single) != value:  # not a float32: keep every digit it has
        return value
    return float(np.format_float_positional(single, unique=True, trim="-"))


def epoch_ms(started: float | None, seconds: float, now_ms: int) -> int:
    """When an epoch ended, in ms since 1970: the run's start plus its time_s, else now.

    A copied run (dlrun export) keeps the times it had; a live run logs as it goes.
    """
    if started is None:
        return now_ms
    return int((started + max(0.0, seconds)) * 1000)
