"""The claim form: a typo or an impossible claim fails at compose time in one line (dlrun/config/claims.py)."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from dlrun.cli.main import main
from dlrun.config.claims import check_claims, known_metric
from dlrun.errors import ConfigError


def with_claim(cfg, fields: dict):
    """The composed config with one more claim `c`, typed by the schema as a file's would be."""
    OmegaConf.set_struct(cfg, False)  # Hydra's struct flag: only for adding the key
    return OmegaConf.merge(cfg, {"claims": {"c": fields}})


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"near": 0.1}, "near needs tol"),
        ({"above": 0.1, "slope": "model.width", "minus": {"init": "he"}}, "one quantity per claim"),
        ({"metric": "tset_acc", "above": 0}, "metric='tset_acc' is not a known measure"),
        ({"above": 0, "of": {"modle.width": 3}}, "'modle.width' is not a config key"),
        ({"minus": {"init": "he"}, "above": 0}, "compares with the setting `of`, which is empty"),
        ({"near": 0.1, "tol": 0.1, "above": 0}, "near (with tol) is a bound of its own"),
        ({}, "no bound"),
        ({"order": [{"init": "he"}], "says": "x"}, "order needs two settings"),
        ({"above": 0, "given": {"metric": "train_loss"}}, "given: no bound"),
        ({"above": 0, "given": {"metric": "trian_loss", "below": 2}}, "given: metric='trian_loss'"),
        (
            {"above": 0, "given": {"below": 2, "of": {"ini": "he"}}},
            "given: 'ini' is not a config key",
        ),
        ({"above": 0, "given": {"below": 2, "tol": 1}}, "given: unknown field 'tol'"),
        (
            {"above": 0, "of": {"init": "he"}, "than": {"of": {"init": "he"}, "minus": {}}},
            "than subtracts a difference from the claim's: give minus too",
        ),
        (
            {"above": 0, "of": {"init": "he"}, "minus": {"init": "zeros"}, "than": {"of": {}}},
            "than: give {of: {...}, minus: {...}}",
        ),
        (
            {
                "above": 0,
                "of": {"init": "he"},
                "minus": {"init": "zeros"},
                "than": {"of": {"init": "he"}, "minus": {"modle.width": 2}},
            },
            "'modle.width' is not a config key",
        ),
    ],
)
def test_impossible_claims_are_config_errors(make_cfg, fields, message):
    cfg = with_claim(make_cfg(), {"says": "x", **fields})
    with pytest.raises(ConfigError, match=f"^claims.c: .*{re.escape(message)}"):
        check_claims(cfg)
    check_claims(make_cfg("experiment=init_symmetry"))  # a real experiment's claims pass


def test_a_misspelt_field_in_an_experiment_file_fails_against_the_schema():
    from dlrun.config.schema import TrainConfig

    experiment = {"claims": {"c": {"says": "x", "nera": 0.1}}}  # as setup_hydra stores a file
    with pytest.raises(Exception, match="Key 'nera' not in 'ClaimConfig'"):
        OmegaConf.merge(OmegaConf.structured(TrainConfig), experiment)


def test_a_claim_needs_its_words(make_cfg):
    cfg = with_claim(make_cfg(), {"above": 0})
    with pytest.raises(ConfigError, match="`says` is missing"):
        check_claims(cfg)


def test_measures_are_named_as_docs_claims_md_lists_them():
    for metric in (
        "test_acc",
        "best_val_loss",
        "test_error",
        "gap",
        "act_std@features.fc30",
        "bias2",
    ):
        assert known_metric(metric), metric
    for metric in ("acc", "act_std@", "weight@features.fc1", "bias"):
        assert not known_metric(metric), metric


def test_check_rejects_bad_input_in_one_line_before_running(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = [
        (["nope"], "unknown experiment 'nope' (choose from: augmentation,"),
        (["init_symetry"], "unknown experiment 'init_symetry'; did you mean init_symmetry?"),
        (
            ["init_symmetry", "claims.zeros_stay_at_chance.metric=tset_acc"],
            "claims.zeros_stay_at_chance: metric=",
        ),
        (
            ["init_symmetry", "+claims.zeros_stay_at_chance.nera=0.1"],
            "claims.zeros_stay_at_chance: unknown field 'nera'",
        ),
        (
            ["init_symmetry", "claims.zeros_stay_at_chance.nera=0.1"],
            "claims.zeros_stay_at_chance.nera: a claim has no such field; "
            "did you mean claims.zeros_stay_at_chance.near?",
        ),
        (["--all", "--fast"], "unknown option --fast"),
        ([], None),
    ]
    for args, message in cases:
        code = main(["check", *args])
        err = capsys.readouterr().err
        if message is None:
            assert code == 0  # usage
            continue
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "outputs").exists()  # nothing ran
