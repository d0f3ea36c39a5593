"""dlrun train's command line: flags anywhere, quick sizes, resume, job folders (dlrun/cli/argv.py)."""

from __future__ import annotations

import re

import pytest
from hydra._internal.utils import get_args_parser

from dlrun.cli.argv import EXCLUDE_KEYS, quick_size, resume_request, split_argv, train_argv
from dlrun.config.experiments import quick_overrides
from dlrun.errors import UsageError


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
    args = train_argv(
        ["-m", "optimizer=sgd,adam", "device=cpu", "+model.hidden=1", "hydra/launcher=joblib"]
    )
    assert args[-1].startswith(f"{EXCLUDE_KEYS}=[")
    excluded = set(re.findall(r"'([^']+)'", args[-1]))
    assert {"device", "model.hidden", "name"} <= excluded and "optimizer" not in excluded
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


def test_a_resume_request_holds_config_paths_and_parsed_values():
    folder, values = resume_request(["resume=/r", "trainer.epochs=300", "device=cpu", "data=moons"])
    assert folder == "/r"
    assert values == {
        "resume": "/r",
        "trainer.epochs": 300,
        "device.name": "cpu",
        "data.name": "moons",
    }
    assert resume_request(["trainer.epochs=3"]) is None
    for bad in (["-m", "resume=/r"], ["resume=/r", "seed=1,2"], ["resume=/r", "~trainer.threads"]):
        with pytest.raises(UsageError, match="continues one run"):
            resume_request(bad)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["experiment=init_symmetry"], "init=zeros,constant,xavier,he seed=0,1,2,3): add -m"),
        (
            ["experiment=init_symmetry", "quick=true"],
            "fix init= and seed= to train one of its jobs",
        ),
        (["experiment=init_symmetry", "init=he"], "(seed=0,1,2,3): add -m to run it"),
        (["experiment=double_descent", "quick=true"], "(model.width=4,16,64 seed=0,1,2): add -m"),
        (["experiment=augmentation"], "fix data/augment=, data.n_train= and seed= to train"),
    ],
)
def test_an_experiment_without_m_says_add_m(argv, message):
    with pytest.raises(UsageError, match="is a sweep") as error:
        train_argv(argv)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_experiment_runs_with_m_or_as_one_job_of_it():
    assert "experiment=init_symmetry" in train_argv(["-m", "experiment=init_symmetry"])
    assert train_argv(["experiment=init_symmetry", "init=he", "seed=1"])[-1] == "seed=1"
    assert train_argv(["experiment=init_symmetry", "--cfg", "job"])  # printing runs nothing


@pytest.mark.parametrize(
    "folder",
    ["/s/0_seed=0", "/s/3_optimizer=adam,seed=1", "/s/a b/2_lr=0.1", "runs/x'y", "/s/[1]"],
)
def test_resume_takes_a_folder_as_dlrun_names_it(folder):
    # reproduction 5 of issue 20: `resume=<sweep>/0_seed=0` failed in Hydra's grammar
    assert resume_request([f"resume={folder}", "trainer.epochs=5"]) == (
        folder,
        {"resume": folder, "trainer.epochs": 5},
    )
    quoted = resume_request([f"resume='{folder}'"]) if "'" not in folder else None
    assert quoted is None or quoted[0] == folder  # the quoted form Hydra unquotes still works
