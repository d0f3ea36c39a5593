"""Resume from the run's own folder: its config, its last.pt, nothing else (dlrun/run/resume.py)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from dlrun.errors import ConfigError
from dlrun.folders import runs
from dlrun.run.resume import RESUMABLE, folder_config, refuse_code, resume_run
from dlrun.run.runner import run

EXACT = (
    "data=moons",
    "data.n_samples=400",
    "model.width=16",
    "trainer.deterministic=true",
    "trainer.early_stopping.patience=null",
)


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / runs.METRICS, newline="") as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


def results(summary: dict) -> dict:
    keys = ("status", "epochs_run", "steps", "best_epoch", "best_val_loss", "test_loss", "test_acc")
    return {key: summary[key] for key in keys}


def test_a_finished_run_resumed_with_more_epochs_equals_the_longer_run(make_cfg, tmp_path):
    longer = run(make_cfg(*EXACT, "trainer.epochs=6"), tmp_path / "six")
    run(make_cfg(*EXACT, "trainer.epochs=3"), tmp_path / "three")
    config = (tmp_path / "three" / runs.CONFIG).read_bytes()
    resumed = resume_run(tmp_path / "three", {"trainer.epochs": 6})
    assert rows(tmp_path / "three") == rows(tmp_path / "six")
    assert results(resumed) == results(longer)
    assert (tmp_path / "three" / runs.CONFIG).read_bytes() == config  # never rewritten
    (record,) = resumed["resumes"]
    assert record["from_epoch"] == 3 and record["overrides"] == {"trainer.epochs": 6}
    assert set(record) == {"at", "host", "from_epoch", "overrides"}


@pytest.mark.parametrize("altered", [None, "text", [1.0, 2.0]])
def test_a_last_pt_whose_update_does_not_fit_resumes_without_that_cosine(
    make_cfg, tmp_path, altered
):
    import torch

    longer = run(make_cfg(*EXACT, "trainer.epochs=4"), tmp_path / "four")
    run(make_cfg(*EXACT, "trainer.epochs=2"), tmp_path / "two")
    last = tmp_path / "two" / runs.CHECKPOINTS / runs.LAST
    ckpt = torch.load(last, weights_only=True)
    ckpt["update"] = torch.tensor(altered) if isinstance(altered, list) else altered
    torch.save(ckpt, last)
    assert results(resume_run(tmp_path / "two", {"trainer.epochs": 4})) == results(longer)
    mine, theirs = rows(tmp_path / "two"), rows(tmp_path / "four")
    assert mine[2]["update_cos"] == "nan" != theirs[2]["update_cos"]  # no earlier change known
    assert mine[:2] + mine[3:] == theirs[:2] + theirs[3:]  # and everything else as before


def test_a_run_moved_to_another_machine_resumes_where_it_is(make_cfg, tmp_path):
    straight = run(make_cfg(*EXACT, "trainer.epochs=4"), tmp_path / "straight")
    run(make_cfg(*EXACT, "trainer.epochs=2"), tmp_path / "here")
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(tmp_path / "here", moved)
    shutil.rmtree(tmp_path / "here")  # nothing of the old place is left
    resumed = resume_run(moved, {"trainer.epochs": 4, "device.name": "cpu"})
    assert results(resumed) == results(straight)
    assert resumed["run_dir"] == str(moved.resolve())


def test_later_resumes_keep_what_earlier_ones_changed(make_cfg, tmp_path):
    # A requeued cluster job resumes with no overrides: it must still run to epoch 5.
    run(make_cfg(*EXACT, "trainer.epochs=2"), tmp_path)
    cfg = folder_config(tmp_path, {})
    assert cfg.trainer.epochs == 2 and cfg.resume == str(tmp_path)
    runs.write_json(
        tmp_path / runs.SUMMARY,
        {**runs.read_summary(tmp_path), "resumes": [{"overrides": {"trainer.epochs": 5}}]},
    )
    assert folder_config(tmp_path, {}).trainer.epochs == 5
    assert folder_config(tmp_path, {"trainer.epochs": 7}).trainer.epochs == 7


def test_only_what_leaves_the_experiment_alone_may_change(make_cfg, tmp_path):
    run(make_cfg(*EXACT, "trainer.epochs=2"), tmp_path)
    for key, value in (("data.name", "circles"), ("model.width", 512), ("seed", 3), ("name", "x")):
        with pytest.raises(ConfigError, match=f"{key} would change the experiment") as e:
            folder_config(tmp_path, {key: value})
        assert "\n" not in str(e.value)
    same = folder_config(tmp_path, {"data.name": "moons", "model.width": 16})  # as it was
    assert same.data.name == "moons"
    changed = folder_config(tmp_path, dict.fromkeys(RESUMABLE[:1], 9))
    assert changed.trainer.epochs == 9
    with pytest.raises(ConfigError, match="trainer.epochs=0 must be at least 1"):
        folder_config(tmp_path, {"trainer.epochs": 0})  # a resume is range-checked too


def test_an_early_stopped_run_resumed_as_it_was_trains_no_further(make_cfg, tmp_path):
    first = run(
        make_cfg("data=moons", "trainer.early_stopping.patience=1", "trainer.epochs=30"), tmp_path
    )
    assert first["status"] == runs.EARLY_STOPPED
    again = resume_run(tmp_path, {"trainer.epochs": 60})
    assert again["status"] == runs.EARLY_STOPPED and again["epochs_run"] == first["epochs_run"]


def test_a_schedule_over_the_run_length_cannot_be_stretched(make_cfg, tmp_path):
    run(make_cfg(*EXACT, "schedule=cosine", "trainer.epochs=2"), tmp_path)
    with pytest.raises(ConfigError, match="schedule=cosine"):
        folder_config(tmp_path, {"trainer.epochs": 4})


def test_a_transfer_run_resumes_without_its_source(make_cfg, tmp_path):
    run(make_cfg(*EXACT, "trainer.epochs=2"), tmp_path / "source")
    common = (*EXACT, f"transfer.source={tmp_path / 'source'}", "transfer.freeze=[features]")
    straight = run(make_cfg(*common, "trainer.epochs=4"), tmp_path / "straight")
    run(make_cfg(*common, "trainer.epochs=2"), tmp_path / "split")
    shutil.rmtree(tmp_path / "source")
    resumed = resume_run(tmp_path / "split", {"trainer.epochs": 4})
    assert results(resumed) == results(straight)
    assert resumed["transfer"]["loaded"] == straight["transfer"]["loaded"]  # the first report


def test_code_named_by_a_folder_runs_only_when_typed():
    raw = {"model": {"_target_": "pkg.Net", "width": 3}, "data": {"name": "moons"}}
    with pytest.raises(ConfigError, match=r"model\._target_=pkg\.Net"):
        refuse_code(raw, {}, "resume=x")
    with pytest.raises(ConfigError, match="_target_"):
        refuse_code(raw, {"model._target_": "other.Net"}, "resume=x")
    refuse_code(raw, {"model._target_": "pkg.Net"}, "resume=x")  # typed: the user's own choice
    nested = {"transfer": {"freeze": [{"_target_": "os.system"}]}}
    with pytest.raises(ConfigError, match="_target_"):
        refuse_code(nested, {}, "resume=x")


def test_a_folder_config_must_be_plain_values_of_the_schema(make_cfg, tmp_path):
    run(make_cfg(*EXACT, "trainer.epochs=1"), tmp_path)
    config = tmp_path / runs.CONFIG
    original = yaml.safe_load(config.read_text())
    for change, words in (
        ({"name": "${oc.env:HOME}"}, "interpolation"),
        ({"model": {**original["model"], "depth": "many"}}, "model.depth"),
        ({"surprise": 1}, "surprise"),
    ):
        config.write_text(yaml.safe_dump({**original, **change}))
        with pytest.raises(ConfigError, match=words) as e:
            folder_config(tmp_path, {})
        assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "value", ["${oc.env:HOME}", "${dlrun_unique:SPOT/deep}", "x${oc.env:HOME}"], ids=str
)
def test_a_resume_recorded_in_the_summary_is_data_never_an_expression(
    make_cfg, tmp_path, capsys, value
):
    # reproduction 1 of issue 20: summary.json's `resumes` was interpolated on resume
    from dlrun.cli.main import main

    folder = tmp_path / "run"
    run(make_cfg(*EXACT, "trainer.epochs=1"), folder)
    spot = tmp_path / "spot"
    summary = runs.read_summary(folder)
    summary["resumes"] = [{"overrides": {"device.name": value.replace("SPOT", str(spot))}}]
    runs.write_json(folder / runs.SUMMARY, summary)
    assert main(["train", f"resume={folder}", "trainer.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "interpolation" in err and "summary.json" in err and len(err.splitlines()) == 1
    assert str(Path.home()) not in err.replace(str(tmp_path), "")
    assert not spot.exists()
    assert runs.read_summary(folder)["epochs_run"] == 1
