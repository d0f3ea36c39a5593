"""dlrun train's command line: flags anywhere, quick sizes, resume, job folders (dlrun/argv.py)."""

from __future__ import annotations

import re

import pytest
from hydra._internal.utils import get_args_parser

from dlrun import runs
from dlrun.argv import EXCLUDE_KEYS, quick_size, split_argv, train_argv
from dlrun.errors import UsageError
from dlrun.experiments import quick_overrides


def hydra_args(argv: list[str]):
    """What Hydra's own argument parser makes of an argv."""
    return get_args_parser().parse_args(argv)


def test_flags_may_come_after_the_overrides():
    args = hydra_args(train_argv(["optimizer=sgd,adam", "trainer.epochs=1", "-m"]))
    assert args.multirun and args.overrides[:2] == ["optimizer=sgd,adam", "trainer.epochs=1"]
    args = hydra_args(train_argv(["trainer.epochs=1", "--cfg", "job", "seed=2"]))
    assert args.cfg == "job" and args.overrides == ["trainer.epochs=1", "seed=2"]


def test_split_argv_keeps_each_flag_with_its_value():
    flags, overrides = split_argv(["a=1", "--info", "defaults", "-c", "job", "b=2", "--resolve"])
    assert flags == ["--info", "defaults", "-c", "job", "--resolve"]
    assert overrides == ["a=1", "b=2"]
    # --info's value is optional: an override after it stays an override
    assert split_argv(["--info", "a=1"]) == (["--info"], ["a=1"])


def test_job_folders_are_named_by_what_each_job_varies():
    args = train_argv(["-m", "optimizer=sgd,adam", "device=cpu", "+foo=1", "hydra/launcher=joblib"])
    assert args[-1].startswith(f"{EXCLUDE_KEYS}=[")
    excluded = set(re.findall(r"'([^']+)'", args[-1]))
    assert {"device", "foo", "name"} <= excluded and "optimizer" not in excluded
    assert train_argv(["device=cpu"]) == ["device=cpu"]  # single runs are left alone


@pytest.mark.parametrize("spelling", ["quick=true", "quick=True", "quick=TRUE"])
def test_quick_size_is_read_from_the_composed_config_and_the_user_wins(spelling):
    args = train_argv(["-m", "experiment=double_descent", spelling, "seed=5"])
    header = quick_overrides("double_descent")
    assert "model.width=4,16,64" in header and "model.width=4,16,64" in args
    assert "seed=5" in args and "seed=0" not in args
    assert all(o in args for o in header if not o.startswith("seed="))


def test_no_quick_size_unless_asked():
    assert quick_size(["experiment=double_descent"]) == []
    assert quick_size(["experiment=double_descent", "quick=false"]) == []
    assert quick_size(["quick=true"]) == []  # no experiment, no quick size


def test_resume_needs_a_run_folder_with_a_last_checkpoint(tmp_path):
    with pytest.raises(UsageError, match=f"no run folder with {runs.CHECKPOINTS}/{runs.LAST}"):
        train_argv([f"resume={tmp_path}"])
    runs.last_checkpoint(tmp_path).parent.mkdir()
    runs.last_checkpoint(tmp_path).write_bytes(b"")
    assert train_argv([f"resume={tmp_path}"])[-1] == f"hydra.run.dir={tmp_path}"
