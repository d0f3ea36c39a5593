"""One-line errors with "did you mean" from the schema (dlrun/config/hydra_errors.py)."""

from __future__ import annotations

import re

import pytest

from dlrun.cli.argv import train_argv
from dlrun.config.compose import compose
from dlrun.config.hydra_errors import describe_hydra_error
from dlrun.errors import UsageError


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["trainer.epoch=3"],
            "trainer.epoch: no such key; did you mean trainer.epochs?",
        ),
        (["lr=0.1"], "did you mean optimizer.lr?"),
        (["optimzer=adam"], "did you mean optimizer?"),
        (["logger=wandb"], "unknown logger 'wandb' (choose from: csv, mlflow, tensorboard)"),
        (["optimizer=adm"], "unknown optimizer 'adm'; did you mean adam? (choose from: adadelta,"),
        (["experiment=init_symetry"], "unknown experiment 'init_symetry'; did you mean init_sym"),
        (["init=xavir"], "unknown init 'xavir'; did you mean xavier? (choose from: constant,"),
        (["data/augment=signl"], "unknown data/augment 'signl'; did you mean signal?"),
        (["hydra/launcher=paralel"], "unknown hydra/launcher 'paralel'; did you mean parallel?"),
        (["model.activaton=relu"], "model.activaton: no such key; did you mean model.activation?"),
        (
            ["trainer.early_stopping.patiense=3"],
            "trainer.early_stopping.patiense: no such key; "
            "did you mean trainer.early_stopping.patience?",
        ),
        (["data._target_=x.y"], "data._target_: not a key of this data; only data=custom has it"),
        (["+seed=3"], "+seed: seed is a key already; set it with seed=... (+ adds a new key)"),
        (
            ["experiment=init_symmetry", "claims.zeros_stay_at_chance.nera=0.1"],
            "claims.zeros_stay_at_chance.nera: a claim has no such field; "
            "did you mean claims.zeros_stay_at_chance.near?",
        ),
    ],
)
def test_composition_errors_suggest_the_key_meant(overrides, line):
    with pytest.raises(Exception) as e:
        compose(overrides)
    message = describe_hydra_error(e.value)
    assert line in message and "\n" not in message
    assert not re.search(r"\b[A-Z]\w*Config\b", message)  # no class of the schema


def test_a_comma_list_without_m_says_add_m():
    with pytest.raises(
        UsageError, match=r"optimizer=sgd,adam is a sweep: add -m to run one job per value"
    ):
        train_argv(["optimizer=sgd,adam", "trainer.epochs=1"])
    assert "optimizer=sgd,adam" in train_argv(["optimizer=sgd,adam", "trainer.epochs=1", "-m"])
    assert train_argv(["data.classes=[0,1]"]) == ["data.classes=[0,1]"]  # a list is no sweep


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "model.width=abc",
            "model.width: Value 'abc' of type 'str' could not be converted to Integer",
        ),
        (
            "data.augment.shift=x",
            "data.augment.shift: Value 'x' of type 'str' could not be converted to Integer",
        ),
    ],
)
def test_model_and_data_types_are_checked_before_anything_is_written(
    make_cfg, tmp_path, override, line
):
    from dlrun.errors import ConfigError
    from dlrun.run.runner import run

    with pytest.raises(ConfigError) as e:
        run(make_cfg(override), tmp_path / "run")
    assert str(e.value) == line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["+trainer.epoch=3"],
            "trainer.epoch: no such key; did you mean trainer.epochs? (+ adds keys only for your "
            "own class or function: +model.<key> with model=custom, +data.<key> with data=custom)",
        ),
        (["++optimizer.lrr=1"], "optimizer.lrr: no such key; did you mean optimizer.lr?"),
        (["+nothing_like_it=1"], "nothing_like_it: no such key (+ adds keys only for"),
    ],
)
def test_a_plus_typo_is_refused_not_added(argv, line):
    # Hydra's + adds any key: `+trainer.epoch=3` would train with the default epochs
    with pytest.raises(UsageError) as e:
        train_argv(argv)
    assert str(e.value).startswith(line) and "\n" not in str(e.value)


def test_a_plus_key_of_the_users_own_class_is_left_to_it():
    # under model. and data. the chosen class reads it (model=custom) or check_types refuses it
    assert train_argv(["model=custom", "+model.hidden=64"])[-1] == "+model.hidden=64"
