"""Run folders compared number by number: a stack's replica against its solo run."""

from __future__ import annotations

import csv

import pytest

TIMES = {"wall_s", "total_s", "time_s", "run_dir"}  # the stack's clock, the folder's own path


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_same_csv(mine, theirs, rel=1e-5, rows=None):
    """The same rows (the first `rows` of `theirs`), number by number."""
    a, b = read_rows(mine), read_rows(theirs)
    b = b if rows is None else [r for r in b if int(r["epoch"]) <= rows]
    assert len(a) == len(b) and a and list(a[0]) == list(b[0])
    for x, y in zip(a, b):
        assert x.get("layer") == y.get("layer")
        for k in x.keys() - TIMES - {"layer"}:
            # nan: update_cos at a run's first epoch (no earlier update)
            expected = pytest.approx(float(y[k]), rel=rel, abs=1e-7, nan_ok=True)
            assert float(x[k]) == expected, (mine, k)
