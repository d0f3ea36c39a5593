"""Composition and the override grammar: what a command line means (dlrun/config/compose.py)."""

from __future__ import annotations

import pytest

from dlrun.cli.argv import train_argv
from dlrun.config.compose import compose, override_values
from dlrun.config.hydra_errors import describe_hydra_error
from dlrun.errors import UsageError


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


def test_unknown_choices_and_bad_types_are_described_in_one_line():
    with pytest.raises(Exception) as e:
        compose(["optimizer=adamm"])
    message = describe_hydra_error(e.value)
    assert message.startswith("unknown optimizer 'adamm'; did you mean adam? (choose from:")
    assert "adamw" in message
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


def test_hydra_composes_once_and_still_reads_hydra_mode_from_the_command_line():
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    from dlrun.config.compose import compose_once

    compose_once()
    assert Hydra.get_mode(None, "train", ["seed=1"]) is None  # -m or not decides
    assert Hydra.get_mode(None, "train", ["hydra.mode=MULTIRUN"]) == RunMode.MULTIRUN
    assert Hydra.get_mode(None, "train", ["hydra.mode=RUN", "seed=1"]) == RunMode.RUN


@pytest.mark.parametrize(
    ("target", "line"),
    [
        ("nopkg_zz.nets.MyNet", "no module named 'nopkg_zz' (install it, or run dlrun from the"),
        ("torch.nn.Linearr", "torch.nn has no 'Linearr'; did you mean torch.nn.Linear?"),
        ("torch.nn..Linear", "not a dotted path like mypkg.nets.MyNet"),
        ("usermods_zz.needs.Net", "importing usermods_zz.needs needs 'absent_zz', not installed"),
        ("usermods_zz.broken.Net", "importing usermods_zz.broken raised ZeroDivisionError"),
        (
            "usermods_zz.nets.Nett",
            "usermods_zz.nets has no 'Nett'; did you mean usermods_zz.nets.Net?",
        ),
    ],
)
def test_a_target_that_cannot_be_imported_is_one_line_with_its_cause(
    tmp_path, monkeypatch, target, line
):
    from dlrun.config.compose import locate
    from dlrun.errors import ConfigError

    package = tmp_path / "usermods_zz"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "needs.py").write_text("import absent_zz\n")
    (package / "broken.py").write_text("1 / 0\n")
    (package / "nets.py").write_text("class Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as e:
        locate(target)
    assert str(e.value) == f"_target_={target}: cannot import it: " + str(e.value).split(": ", 2)[2]
    assert line in str(e.value) and "\n" not in str(e.value)
    assert locate("usermods_zz.nets.Net").__name__ == "Net"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: bad\nclaims: [\n",
            "(line 3): did not find expected node content; fix it or remove it",
        ),
        ("- a\n- b\n", "an experiment file is a YAML mapping (key: value), not list"),
        ("name: \xff\xfe\n", "not a readable YAML file"),
    ],
)
def test_an_experiment_file_that_is_not_yaml_is_one_line_naming_it(
    tmp_path, monkeypatch, text, expected
):
    import dlrun.config.compose as compose_module
    import dlrun.config.experiments as experiments
    from dlrun.errors import UsageError

    bad = tmp_path / "zz_bad.yaml"
    bad.write_bytes(text.encode("latin-1"))
    monkeypatch.setattr(experiments, "experiment_files", lambda shared=False: [bad])
    monkeypatch.setattr(compose_module, "_registered", [])
    with pytest.raises(UsageError) as error:
        compose_module.setup_hydra()
    message = str(error.value)
    assert message.startswith(f"{bad}: ") and expected in message and "\n" not in message
