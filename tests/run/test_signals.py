"""Ctrl-C and SIGTERM end a run at an epoch boundary, and resuming is exact (dlrun/run/signals.py).

Signals are sent to this process from inside the loop (os.kill at a chosen
epoch), so the handler runs exactly where a real one would; tests/test_faults.py
sends them to `dlrun train` processes, as a scheduler would.
"""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest
import torch

import dlrun.run.runner
import dlrun.run.train
from dlrun.errors import Interrupted
from dlrun.folders import runs
from dlrun.run.checkpoints import Checkpointer, State
from dlrun.run.resume import resume_run
from dlrun.run.runner import run

# Deterministic, no early stopping: an interrupted and resumed run must equal this bit for bit.
EXACT = (
    "data=moons",
    "data.n_samples=400",
    "model.width=16",
    "trainer.epochs=6",
    "trainer.deterministic=true",
    "trainer.early_stopping.patience=null",
)


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / runs.METRICS, newline="") as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


def results(summary: dict) -> dict:
    keys = ("status", "epochs_run", "steps", "best_epoch", "best_val_loss", "test_loss", "test_acc")
    return {key: summary[key] for key in keys}


def signal_at(monkeypatch, epoch: int, *signums: int) -> None:
    """Send `signums` to this process when the loop judges `epoch` (after its row is logged)."""
    real = dlrun.run.train.verdict

    def verdict(row, tcfg, stopper, state):
        if state.epoch == epoch:
            for signum in signums:
                os.kill(os.getpid(), signum)
        return real(row, tcfg, stopper, state)

    monkeypatch.setattr(dlrun.run.train, "verdict", verdict)


def test_sigterm_stops_after_the_epoch_and_resume_is_bit_exact(make_cfg, tmp_path, monkeypatch):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    straight = run(make_cfg(*EXACT), tmp_path / "straight")
    signal_at(monkeypatch, 3, signal.SIGTERM)
    with pytest.raises(Interrupted) as stop:
        run(make_cfg(*EXACT), tmp_path / "split")
    assert (stop.value.signal_name, stop.value.exit_code) == ("SIGTERM", 143)
    assert f"resume={tmp_path / 'split'}" in str(stop.value)
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # put back after the run

    summary = runs.read_summary(tmp_path / "split")
    assert summary["status"] == runs.INTERRUPTED and summary["signal"] == "SIGTERM"
    assert summary["epochs_run"] == summary["checkpoint_epoch"] == 3
    assert [r["epoch"] for r in rows(tmp_path / "split")] == ["1", "2", "3"]
    last = torch.load(runs.last_checkpoint(tmp_path / "split"), weights_only=True)
    assert last["epoch"] == 3 and last["step"] == summary["steps"]

    monkeypatch.undo()
    resumed = resume_run(tmp_path / "split")
    assert rows(tmp_path / "split") == rows(tmp_path / "straight")
    assert results(resumed) == results(straight)
    assert [r["from_epoch"] for r in resumed["resumes"]] == [3]


def test_a_second_signal_stops_at_once_and_resume_drops_the_unsaved_epochs(
    make_cfg, tmp_path, monkeypatch
):
    straight = run(make_cfg(*EXACT), tmp_path / "straight")
    signal_at(monkeypatch, 3, signal.SIGINT, signal.SIGINT)
    with pytest.raises(Interrupted) as stop:
        run(make_cfg(*EXACT), tmp_path / "split")
    assert stop.value.exit_code == 130
    summary = runs.read_summary(tmp_path / "split")
    # epoch 3 was logged but never checkpointed: last.pt still holds the first epoch's state
    assert summary["status"] == runs.INTERRUPTED and summary["signal"] == "SIGINT"
    assert (summary["epochs_run"], summary["checkpoint_epoch"]) == (3, 1)
    monkeypatch.undo()
    resumed = resume_run(tmp_path / "split")
    assert rows(tmp_path / "split") == rows(tmp_path / "straight")  # rows 2-3 trained again
    assert results(resumed) == results(straight)


def test_a_signal_before_the_first_epoch_saves_epoch_0_and_resumes_exactly(
    make_cfg, tmp_path, monkeypatch
):
    straight = run(make_cfg(*EXACT), tmp_path / "straight")
    real_setup = dlrun.run.runner.setup

    def setup(cfg):
        os.kill(os.getpid(), signal.SIGTERM)  # while the data and model are being built
        return real_setup(cfg)

    monkeypatch.setattr(dlrun.run.runner, "setup", setup)
    with pytest.raises(Interrupted):
        run(make_cfg(*EXACT), tmp_path / "split")
    assert runs.read_summary(tmp_path / "split")["checkpoint_epoch"] == 0
    assert rows(tmp_path / "split") == []
    monkeypatch.undo()
    resumed = resume_run(tmp_path / "split")
    assert results(resumed) == results(straight)
    layers = (tmp_path / "split" / runs.LAYERS).read_text()
    assert layers == (tmp_path / "straight" / runs.LAYERS).read_text()  # epoch 0 once


def test_a_signal_in_the_last_epoch_keeps_the_finished_run(make_cfg, tmp_path, monkeypatch):
    signal_at(monkeypatch, 6, signal.SIGTERM)
    with pytest.raises(Interrupted, match="nothing lost"):
        run(make_cfg(*EXACT), tmp_path)
    summary = runs.read_summary(tmp_path)
    assert summary["status"] == runs.COMPLETED and "test_acc" in summary


def test_an_ignored_signal_stays_ignored(make_cfg, tmp_path, monkeypatch):
    # `nohup dlrun train`, or `dlrun train &` in a script: the shell chose to ignore it.
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        signal_at(monkeypatch, 2, signal.SIGTERM)
        assert run(make_cfg(*EXACT), tmp_path)["status"] == runs.COMPLETED
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, old)


def test_checkpoints_come_after_the_first_epoch_then_every_interval():
    saver = Checkpointer(Path("."), every_s=30)
    assert saver.due(State(epoch=1)) and not saver.due(State(epoch=2))
    saver.last -= 31
    assert saver.due(State(epoch=2))
    saver.last, saver.cost_s = time.perf_counter() - 31, 1.0  # a 1 s save: wait 50 s, 2%
    assert not saver.due(State(epoch=2))
    saver.last -= 20
    assert saver.due(State(epoch=2))
