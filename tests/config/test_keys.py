"""Every key a user can type and what a mistyped one meant (dlrun/config/keys.py)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dlrun.config.compose import compose
from dlrun.config.keys import all_keys, choices_with, did_you_mean, no_such_key
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
    ("key", "line"),
    [
        ("trainer.epoch", "trainer.epoch: no such key; did you mean trainer.epochs?"),
        ("model.kernel_siz", "model.kernel_siz: no such key; did you mean model.kernel_size?"),
        ("data._target_", "data._target_: not a key of this data; only data=custom has it"),
        ("model.width", "model.width: not a key of model=custom; +model.width=... if your class"),
        (
            "model.zzz",
            "model.zzz: no such key (a key of your own class or function: +model.zzz=...",
        ),
        ("claims.c.tool", "claims.c.tool: a claim has no such field; did you mean claims.c.tol?"),
    ],
)
def test_a_missing_key_is_named_by_its_path_and_what_was_meant(key, line):
    assert no_such_key(key).startswith(line)


def test_choices_with_names_the_choices_that_have_a_key():
    assert choices_with("model.kernel_size")[0] == "model"
    assert "model=cnn1d" in choices_with("model.kernel_size")
    assert choices_with("trainer.epochs") == []  # no group: trainer is not a choice


def test_a_built_in_choice_refuses_a_key_it_does_not_have_in_the_users_words(make_cfg):
    from dlrun.config.keys import check_types
    from dlrun.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        check_types(make_cfg("+model.widht=3"))
    assert str(e.value) == "model.widht: no such key; did you mean model.width?"
