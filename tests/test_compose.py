"""Composition and the override grammar: what a command line means (dlrun/compose.py)."""

from __future__ import annotations

import re

import pytest
from hydra._internal.utils import get_args_parser

from dlrun import runs
from dlrun.compose import (
    EXCLUDE_KEYS,
    compose,
    override_values,
    quick_size,
    split_argv,
    train_argv,
)
from dlrun.errors import UsageError
from dlrun.experiments import quick_overrides
from dlrun.hydra_errors import describe_hydra_error


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


def test_override_values_are_parsed_as_hydra_parses_them():
    values = override_values(
        ["optimizer=adam", "+seed=1", "data.classes=[0,1]", "name='a b'", "~trainer.threads"]
    )
    assert values == {
        "optimizer": "adam",
        "seed": "1",
        "data.classes": "[0,1]",
        "name": "'a b'",
    }


def test_a_bad_override_is_one_usage_line():
    with pytest.raises(UsageError, match="cannot parse override 'seed=\\[1'") as e:
        train_argv(["seed=[1"])
    assert "\n" not in str(e.value)


def test_resume_needs_a_run_folder_with_a_last_checkpoint(tmp_path):
    with pytest.raises(UsageError, match=f"no run folder with {runs.CHECKPOINTS}/{runs.LAST}"):
        train_argv([f"resume={tmp_path}"])
    runs.last_checkpoint(tmp_path).parent.mkdir()
    runs.last_checkpoint(tmp_path).write_bytes(b"")
    assert train_argv([f"resume={tmp_path}"])[-1] == f"hydra.run.dir={tmp_path}"


def test_unknown_choices_and_bad_types_are_described_in_one_line():
    with pytest.raises(Exception) as e:
        compose(["optimizer=adamm"])
    message = describe_hydra_error(e.value)
    assert message.startswith("unknown optimizer 'adamm'; choose from:") and "adamw" in message
    with pytest.raises(Exception) as e:
        compose(["trainer.epochs=abc"])
    assert describe_hydra_error(e.value).startswith("trainer.epochs: Value 'abc'")


def test_defaults_live_once():
    # The dataclass default is what a user gets; choices set only what makes them that choice.
    cfg = compose([])
    assert cfg.name == "mlp-mnist1d" and cfg.model.width == 512 and cfg.model.dropout == 0.3
    assert compose(["model=cnn1d"]).model.dropout == 0.0
    assert compose(["optimizer=adamw"]).optimizer.lr == compose([]).optimizer.lr
    # every experiment includes the shared base diff instead of repeating it
    base = compose(["experiment=init_symmetry"])
    assert base.model.dropout == 0.0 and base.trainer.early_stopping.patience is None


def test_job_folder_names_keep_four_significant_digits():
    from dlrun.compose import _slug

    name = _slug(
        "model.depth=3,optimizer.lr=0.0012345678901234,optimizer.weight_decay=2.3456789e-05"
    )
    assert name == "model.depth=3,optimizer.lr=0.001235,optimizer.weight_decay=2.346e-05"
    assert (
        _slug("seed=1,optimizer=adam,x=0.5") == "seed=1,optimizer=adam,x=0.5"
    )  # short ones as typed
