"""layers.csv: per-layer gradient norms and activations (dlrun/toolbox/diagnostics.py)."""

from __future__ import annotations

import csv

from dlrun.run.runner import run


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


SMALL = ["data=spirals", "data.n_samples=600", "model.width=16", "model.dropout=0"]


def test_layers_csv_has_every_weight_layer_at_epoch_0_and_every_epoch(make_cfg, tmp_path):
    run(make_cfg(*SMALL, "model.bottleneck=4", "trainer.epochs=2"), tmp_path)
    rows = read_csv(tmp_path / "layers.csv")
    expected = ["features.fc1", "features.bottleneck", "features.fc2", "head"]
    for epoch in ("0", "1", "2"):
        epoch_rows = [r for r in rows if r["epoch"] == epoch]
        assert [r["layer"] for r in epoch_rows] == expected
        assert all(float(r["grad_norm"]) > 0 and float(r["act_std"]) > 0 for r in epoch_rows)


def test_a_grus_layer_is_diagnosed_with_its_recurrent_weights(make_cfg, tmp_path):
    run(make_cfg("model=gru", "model.width=3", "trainer.epochs=1"), tmp_path)
    rows = read_csv(tmp_path / "layers.csv")
    assert [r["layer"] for r in rows if r["epoch"] == "1"] == ["features.gru", "head"]
    assert all(float(r["grad_norm"]) > 0 and float(r["act_std"]) > 0 for r in rows)
