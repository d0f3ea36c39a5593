"""Transfer learning: load, freeze, reset the head, pretrain the source (dlrun/toolbox/transfer.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch
import yaml
from filelock import FileLock

from dlrun.errors import ConfigError
from dlrun.folders import runs
from dlrun.run.runner import run
from dlrun.toolbox.transfer import pretrain_source

from conftest import QUICK

SMALL = ["data=spirals", "data.n_samples=600", "model.width=16", "model.dropout=0"]


def best_weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def source_run(make_cfg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    run(
        make_cfg(
            "data=moons",
            "data.n_samples=600",
            "model.width=16",
            "model.dropout=0",
            "trainer.epochs=2",
        ),
        folder,
    )
    return folder


def test_transfer_loads_freezes_and_trains(make_cfg, tmp_path, source_run, capsys):
    # From moons (2 classes) to spirals (3 classes): the features fit, the head does not.
    cfg = make_cfg(
        *SMALL, f"transfer.source={source_run}", "transfer.freeze=[features]", "trainer.epochs=2"
    )
    summary = run(cfg, tmp_path)
    report = json.loads((tmp_path / "summary.json").read_text())["transfer"]
    assert report == summary["transfer"]
    features = [
        "features.fc1.weight",
        "features.fc1.bias",
        "features.fc2.weight",
        "features.fc2.bias",
    ]
    assert report["loaded"] == features
    assert {s["name"]: s["reason"] for s in report["skipped"]} == {
        "head.weight": "shape (2, 16) in source, (3, 16) here",
        "head.bias": "shape (2,) in source, (3,) here",
    }
    assert report["frozen"] == features
    assert "loaded 4 tensors, skipped 2" in capsys.readouterr().out
    source, trained = best_weights(source_run), best_weights(tmp_path)
    for name in features:  # frozen: still the source's weights after training
        assert torch.equal(trained[name], source[name])
    first = [r for r in read_csv(tmp_path / "layers.csv") if r["epoch"] == "1"]
    assert [r["grad_norm"] for r in first if r["layer"] != "head"] == ["nan", "nan"]


def test_transfer_reset_head_keeps_the_fresh_head(make_cfg, tmp_path, source_run):
    cfg = make_cfg("data=moons", "data.n_samples=600", "model.width=16", "model.dropout=0",
                   f"transfer.source={source_run}", "transfer.reset_head=true",
                   "transfer.freeze=[features.fc1]", "trainer.epochs=1")  # fmt: skip
    summary = run(cfg, tmp_path)
    report = summary["transfer"]
    assert [s["name"] for s in report["skipped"]] == ["head.weight", "head.bias"]
    assert report["frozen"] == ["features.fc1.weight", "features.fc1.bias"]
    source, trained = best_weights(source_run), best_weights(tmp_path)
    assert torch.equal(trained["features.fc1.weight"], source["features.fc1.weight"])
    assert not torch.equal(trained["features.fc2.weight"], source["features.fc2.weight"])


def test_transfer_with_other_widths_reports_mismatches(make_cfg, tmp_path, source_run):
    cfg = make_cfg(
        "data=moons",
        "data.n_samples=600",
        "model.width=24",
        f"transfer.source={source_run}",
        "trainer.epochs=1",
    )
    report = run(cfg, tmp_path)["transfer"]
    assert report["loaded"] == ["head.bias"]  # the only tensor whose shape still fits
    assert len(report["skipped"]) == 5 and all(
        s["reason"].startswith("shape") for s in report["skipped"]
    )


def test_transfer_errors_are_one_line_config_errors(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="no such run folder"):
        run(make_cfg(*SMALL, f"transfer.source={tmp_path / 'nowhere'}"), tmp_path / "run")
    with pytest.raises(ConfigError, match="no checkpoints/best.pt"):
        run(make_cfg(*SMALL, f"transfer.source={tmp_path}"), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written before the error


def pretrained_run(make_cfg, run_dir, *overrides: str) -> dict:
    """What `dlrun train <overrides>` does: pretrain the source if needed, then run."""
    cfg = make_cfg(*overrides)
    pretrain_source(cfg, [*QUICK, *overrides], run)
    return run(cfg, run_dir)


def test_transfer_pretrain_trains_the_source_once_then_reuses_it(make_cfg, tmp_path):
    source = tmp_path / "pretrained" / "digits0-4"
    overrides = (
        "data.classes=[5,6,7,8,9]",
        f"transfer.source={source}",
        "transfer.reset_head=true",
        'transfer.pretrain=["data.classes=[0,1,2,3,4]"]',
    )
    first = pretrained_run(make_cfg, tmp_path / "a", *overrides)
    made = (source / "checkpoints" / "best.pt").stat().st_mtime_ns
    source_cfg = (source / "config.yaml").read_text()
    assert "- 0" in source_cfg and "- 5" not in source_cfg  # trained on the other classes
    assert "source: null" in source_cfg  # the source is an ordinary run
    assert first["transfer"]["loaded"] and "head.weight" not in first["transfer"]["loaded"]
    second = pretrained_run(make_cfg, tmp_path / "b", *overrides)
    assert (source / "checkpoints" / "best.pt").stat().st_mtime_ns == made  # not trained again
    assert second["transfer"]["loaded"] == first["transfer"]["loaded"]
    FileLock(tmp_path / "pretrained" / "digits0-4.lock", timeout=0).acquire()  # released


def test_pretrain_takes_group_choices_as_the_command_line_does(make_cfg, tmp_path):
    # The source is pretrained with another data set and another optimizer, chosen
    # by group: a dotlist merge could not express `data=moons`.
    source = tmp_path / "moons-source"
    pretrained_run(
        make_cfg,
        tmp_path / "a",
        *SMALL,
        f"transfer.source={source}",
        'transfer.pretrain=["data=moons","optimizer=sgd","data.n_samples=400"]',
    )
    source_cfg = yaml.safe_load((source / "config.yaml").read_text())
    assert source_cfg["data"]["name"] == "moons" and source_cfg["data"]["n_samples"] == 400
    assert source_cfg["optimizer"] == make_cfg("optimizer=sgd").optimizer


def test_a_bad_pretrain_override_is_one_line(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="transfer.pretrain: .*optimizer"):
        pretrained_run(
            make_cfg,
            tmp_path / "a",
            f"transfer.source={tmp_path / 'src'}",
            'transfer.pretrain=["optimizer=adamm"]',
        )


def test_a_pretraining_job_killed_with_its_lock_does_not_block_the_next(make_cfg, tmp_path):
    source = tmp_path / "src"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(source) + ".lock"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # kill -9 while "pretraining": the lock file stays, the lock does not
    holder.wait()
    assert (tmp_path / "src.lock").exists()
    summary = pretrained_run(
        make_cfg,
        tmp_path / "a",
        *SMALL,
        f"transfer.source={source}",
        'transfer.pretrain=["trainer.epochs=1"]',
    )
    assert summary["transfer"]["loaded"] and runs.is_finished(source)


HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""
