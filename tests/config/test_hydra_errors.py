"""One-line errors with "did you mean" from the schema (dlrun/config/hydra_errors.py)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dlrun.cli.argv import train_argv
from dlrun.config.choices import all_keys
from dlrun.config.compose import compose
from dlrun.config.hydra_errors import describe_hydra_error, did_you_mean
from dlrun.errors import UsageError
from dlrun.folders import runs


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("trainer.epoch", ["trainer.epochs"]),
        ("lr", ["optimizer.lr"]),  # a bare key: the schema key with that last part
        ("epochs", ["trainer.epochs"]),
        ("model.widht", ["model.width"]),
        ("optimzer", ["optimizer"]),  # a group
        ("trainer.early_stoping.patience", ["trainer.early_stopping.patience"]),
        ("data.n_trian", ["data.n_train"]),
        ("trainer.lr", ["optimizer.lr"]),
        ("nothing_like_it", []),
    ],
)
def test_did_you_mean_searches_every_schema_key(typed, meant):
    assert did_you_mean(typed) == meant


def test_every_key_of_every_choice_is_known():
    keys = set(all_keys())
    assert {"model._target_", "data._target_", "logger.tracking_uri", "data.augment.shift"} <= keys
    assert {"model.kernel_size", "optimizer.betas", "trainer.early_stopping.monitor"} <= keys
    for overrides in ([], ["model=custom", "data=custom", "logger=[tensorboard,mlflow]"]):
        composed = OmegaConf.to_container(compose(overrides))  # every key a config really has
        assert set(runs.flatten(composed)) <= keys


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["trainer.epoch=3"],
            "trainer.epoch: Key 'epoch' not in 'TrainerConfig'; did you mean trainer.epochs?",
        ),
        (["lr=0.1"], "did you mean optimizer.lr?"),
        (["optimzer=adam"], "did you mean optimizer?"),
        (["logger=wandb"], "unknown logger 'wandb'; choose from: csv, mlflow, tensorboard"),
    ],
)
def test_composition_errors_suggest_the_key_meant(overrides, line):
    with pytest.raises(Exception) as e:
        compose(overrides)
    message = describe_hydra_error(e.value)
    assert line in message and "\n" not in message


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
