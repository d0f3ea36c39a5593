"""run.log and the lines a run prints (dlrun/run/runlog.py, dlrun/run/progress.py)."""

from __future__ import annotations

import csv
import io
import sys
import warnings

import pytest

from dlrun.folders import runs
from dlrun.run import runlog
from dlrun.run.progress import Progress, epoch_line, print_summary
from dlrun.run.runner import run


def test_tee_labels_a_jobs_lines_and_keeps_them_plain_in_the_log():
    shown = io.StringIO()
    log = runlog.Log()
    tee = runlog.Tee(shown, log, label="[job 3] ")
    tee.write("first\nsec")
    tee.write("ond\n\x1b[1mbold\x1b[0m\n")
    assert shown.getvalue() == "[job 3] first\n[job 3] second\n[job 3] \x1b[1mbold\x1b[0m\n"
    assert "".join(log.held) == "first\nsecond\nbold\n"  # held until the run folder exists


def test_capture_keeps_lines_before_the_folder_and_a_traceback(tmp_path, capsys):
    path = tmp_path / "run.log"
    with pytest.raises(ValueError), runlog.capture() as log:
        print("before the folder")
        log.open(path)
        print("after", file=sys.stderr)
        raise ValueError("boom")
    text = path.read_text()
    assert text.startswith("before the folder\nafter\nTraceback")
    assert "ValueError: boom" in text
    assert capsys.readouterr().out == "before the folder\n"  # the terminal is not changed


def test_off_a_terminal_each_epoch_is_one_plain_line(capsys):
    rows = [
        {"epoch": e, "step": 4 * e, "train_loss": 1 / e, "val_loss": 2 / e}
        | {"train_acc": 0.5, "val_acc": 0.25, "lr": 0.01, "time_s": 0.5 * e}
        for e in (1, 2)
    ]
    with Progress(2) as progress:  # capsys' stdout is no terminal
        for row in rows:
            progress.update(row)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "epoch 1/2  train loss  1.0000 acc  0.5000  val loss  2.0000 acc  0.2500  lr 1.00e-02"
        "     0.5 s  eta 0s",
        "epoch 2/2  train loss  0.5000 acc  0.5000  val loss  1.0000 acc  0.2500  lr 1.00e-02"
        "     1.0 s",
    ]
    assert out[0].startswith(epoch_line(rows[0], 2))


def test_epoch_lines_keep_their_width_and_say_what_a_user_plans_with(capsys):
    from dlrun.run.train import EarlyStopping

    stopper = EarlyStopping(patience=5)
    losses = [2.31, 0.0123, 0.5, 12.5]
    with Progress(1000) as progress:
        for epoch, loss in enumerate(losses, 1):
            stopper.step(loss, epoch)
            row = {"epoch": epoch, "step": epoch, "train_loss": loss, "val_loss": loss}
            row |= {
                "train_acc": 0.1 * epoch,
                "val_acc": 1.0,
                "lr": 0.5 / epoch,
                "time_s": 60.0 * epoch,
            }
            progress.update(row, stopper=stopper, monitor="val_loss")
    out = capsys.readouterr().out.splitlines()
    # every field at the same column on every line, whatever the numbers
    assert len({line.index("val loss") for line in out}) == 1
    assert len({line.index(" s ") for line in out}) == 1
    assert out[0].startswith("epoch    1/1000")
    assert out[1].endswith("best val_loss 0.0123 @2  patience 5/5  eta 16h38m")  # 998 x 60 s
    assert out[3].endswith("best val_loss 0.0123 @2  patience 3/5  eta 16h36m")


def test_a_run_without_a_validation_split_prints_no_val_columns():
    nan = float("nan")
    row = {"epoch": 3, "step": 30, "train_loss": 0.25, "train_acc": 0.9, "val_loss": nan}
    row |= {"val_acc": nan, "lr": 0.01, "time_s": 2.5}
    line = epoch_line(row, 150)
    assert line.startswith("epoch   3/150  train loss  0.2500 acc  0.9000  lr 1.00e-02")
    assert "val" not in line and "nan" not in line
    diverged = row | {"train_loss": nan, "val_loss": nan, "val_acc": 0.1}  # a split with a number
    assert "train loss     nan" in epoch_line(diverged, 150)
    assert "val loss     nan acc  0.1000" in epoch_line(diverged, 150)


def test_a_sweep_job_ends_with_one_line(tmp_path, capsys):
    summary = {
        "status": "completed",
        "epochs_run": 12,
        "best_epoch": 9,
        "monitor": "val_loss",
        "best_val_loss": 1.23456,
        "task": "classification",
        "test_acc": 0.66123,
        "wall_s": 4.2,
        "name": "mlp",
    }
    with runlog.job(3, parallel=True):
        print_summary(summary, tmp_path / "3_optimizer=adam")
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (
        "completed after 12 epochs, best val_loss 1.235 (epoch 9), test_acc 0.6612, 4.2 s  "
        "3_optimizer=adam"
    )


def test_run_log_keeps_every_line_and_warning_of_a_run(make_cfg, tmp_path, capsys, monkeypatch):
    import dlrun.run.runner as runner

    real_setup = runner.setup

    def setup_that_warns(cfg):
        warnings.warn("a warning from set-up", UserWarning, stacklevel=1)
        return real_setup(cfg)

    monkeypatch.setattr(runner, "setup", setup_that_warns)
    with runlog.job(5, parallel=True):
        run(make_cfg("trainer.epochs=2", "trainer.progress=true"), tmp_path)
    log = (tmp_path / runs.RUN_LOG).read_text().splitlines()
    captured = capsys.readouterr()
    with open(tmp_path / runs.METRICS, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    epochs = [line for line in log if line.startswith("epoch ")]
    assert len(epochs) == len(rows)
    for line, r in zip(epochs, rows):  # the epoch's numbers, then the outlook
        assert line.startswith(epoch_line(r | {"epoch": int(r["epoch"])}, 2))
    assert any("a warning from set-up" in line for line in log)  # held, then written
    assert any(line.startswith("dlrun: mlp with") for line in log)  # the details: log only
    assert log[-1].startswith("completed after 2 epochs")
    # the terminal: every line labelled with the job; where it runs, its epochs, one line at the end
    out = captured.out.splitlines()
    assert all(line.startswith("[job 5] ") for line in out)
    assert [line[8:] for line in out] == [f"dlrun: run folder {tmp_path}", *epochs, log[-1]]
    assert "[job 5] " in captured.err and "a warning from set-up" in captured.err


def test_on_a_terminal_a_jobs_bar_says_its_number_and_parallel_workers_get_no_bar(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(runlog, "terminal", lambda: Terminal())
    monkeypatch.delenv("TERM", raising=False)
    with runlog.job(3, parallel=False):
        progress = Progress(5)
    assert progress.live
    label = progress.bar.columns[0].render(progress.bar.tasks[0])
    assert label.plain == "[job 3] epoch"
    with runlog.job(3, parallel=True):
        assert not Progress(5).live  # workers' bars would interleave: plain lines instead
