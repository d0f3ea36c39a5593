"""model=custom and data=custom: the user's own code, from a file outside the package (docs/custom.md)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from dlrun.errors import ConfigError, DataError, ModelError, TransferError
from dlrun.folders import runs
from dlrun.run.runner import run, setup

USER_CODE = '''
import warnings

import torch
from torch import nn


class TinyNet(nn.Module):
    """No features/head split: a body and an `out` layer, as a user might write it."""

    def __init__(self, input_shape, n_outputs, hidden=16):
        super().__init__()
        n_in = 1
        for d in input_shape:
            n_in *= d
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.Tanh())
        self.out = nn.Linear(hidden, n_outputs)

    def forward(self, x):
        return self.out(self.body(x))


class NoShapes(nn.Module):
    """Takes neither input_shape nor n_outputs: dlrun offers them only when asked."""

    def __init__(self, n_in=40, n_out=10):
        super().__init__()
        self.net = nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.net(x)


def blobs(n=300, classes=3):
    """Three Gaussian blobs in 5-D, as tensors."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) + 3.0 * y[:, None].float()
    return x, y


def split_blobs():
    x, y = blobs(400)
    return {"x": x[:300], "y": y[:300], "x_test": x[300:], "y_test": y[300:]}


def not_data():
    return 42
'''


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """The user's module `usernets`, importable from a folder that is not dlrun's."""
    folder = tmp_path / "userpkg"
    folder.mkdir()
    (folder / "usernets.py").write_text(textwrap.dedent(USER_CODE))
    monkeypatch.syspath_prepend(str(folder))
    return folder


TINY = ["model=custom", "model._target_=usernets.TinyNet", "+model.hidden=8"]


def test_a_users_module_trains_logs_layers_and_is_reported(make_cfg, tmp_path, user_code, capsys):
    from dlrun.report.cli import main as report

    folder = tmp_path / "run"
    summary = run(make_cfg(*TINY, "init=xavier", "trainer.epochs=3"), folder)
    assert summary["status"] == "completed"
    assert summary["n_params"] == (40 * 8 + 8) + (8 * 10 + 10)  # hidden=8 reached the class
    with open(folder / runs.LAYERS, newline="") as f:
        layers = {row["layer"] for row in csv.DictReader(f)}
    assert layers == {"body.1", "out"}  # dlrun's diagnostics find the user's Linear layers
    state = torch.load(runs.best_checkpoint(folder), weights_only=True)
    assert set(state["model"]) == {"body.1.weight", "body.1.bias", "out.weight", "out.bias"}
    assert "_target_: usernets.TinyNet" in (folder / runs.CONFIG).read_text()

    assert report([str(folder)]) == 0
    page = (folder / "report" / "index.html").read_text()
    assert 'id="curves"' in page and 'id="layers"' in page
    assert "Traceback" not in capsys.readouterr().err


def test_initializers_and_optimizers_apply_to_a_users_module(make_cfg, user_code):
    # a wide layer, so the sample std is near its formula
    wide = ["model=custom", "model._target_=usernets.TinyNet", "+model.hidden=200"]
    cfg = make_cfg(*wide, "init=xavier", "optimizer=sgd")
    parts, data, _, _ = setup(cfg)
    weight = parts.model.body[1].weight
    expected = math.sqrt(2.0 / (40 + 200))  # Glorot: 2 / (n_in + n_out)
    assert weight.std().item() == pytest.approx(expected, rel=0.05)
    assert parts.model.body[1].bias.abs().max().item() == 0.0
    assert type(parts.optimizer).__name__ == "SGD" and parts.optimizer.param_groups[0]["lr"] == 0.05


def test_input_shape_and_n_outputs_are_offered_only_when_accepted(make_cfg, tmp_path, user_code):
    summary = run(make_cfg("model=custom", "model._target_=usernets.NoShapes"), tmp_path)
    assert summary["n_params"] == 40 * 10 + 10


def test_a_users_data_function_returns_tensors(make_cfg, tmp_path, user_code):
    cfg = make_cfg("data=custom", "data._target_=usernets.blobs", "+data.n=500", "trainer.epochs=5")
    summary = run(cfg, tmp_path / "a")
    assert summary["task"] == "classification"
    assert summary["test_acc"] > 0.8  # the blobs are 3 std apart: easy
    n_test = round(500 * cfg.data.test_fraction)
    assert summary["test_acc"] * n_test == pytest.approx(round(summary["test_acc"] * n_test))
    cfg = make_cfg("data=custom", "data._target_=usernets.split_blobs", "trainer.epochs=2")
    parts, data, _, _ = setup(cfg)
    assert len(data.test) == 100 and len(data.train) + len(data.val) == 300


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["model=custom"], ModelError, "model=custom needs model._target_=<module.Class>"),
        (["model=custom", "model._target_=usernets.Nope"], ModelError, "cannot import it"),
        (
            ["model=custom", "model._target_=usernets.TinyNet", "+model.widht=3"],
            ModelError,
            "TypeError: TinyNet.__init__() got an unexpected keyword argument 'widht'",
        ),
        (
            ["model=custom", "model._target_=usernets.NoShapes", "+model.n_out=3"],
            ModelError,
            "to (2, 3); dlrun needs (2, 10) (n_outputs)",
        ),
        (["data=custom", "data._target_=usernets.not_data"], DataError, "must return (x, y)"),
    ],
)
def test_a_bad_target_is_one_line_naming_it(
    make_cfg, tmp_path, user_code, overrides, error, message
):
    with pytest.raises(error) as e:
        run(make_cfg(*overrides), tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ConfigError)  # the CLI makes it one line, exit 2
    assert not tmp_path.joinpath(runs.SUMMARY).exists()


def test_transfer_from_a_users_module_freezes_by_prefix_and_needs_a_head_to_reset(
    make_cfg, tmp_path, user_code
):
    source = tmp_path / "source"
    run(make_cfg(*TINY, "trainer.epochs=2"), source)
    summary = run(
        make_cfg(*TINY, f"transfer.source={source}", "transfer.freeze=[body]", "trainer.epochs=1"),
        tmp_path / "target",
    )
    assert summary["transfer"]["frozen"] == ["body.1.weight", "body.1.bias"]
    assert len(summary["transfer"]["loaded"]) == 4
    with pytest.raises(TransferError, match=r"no `head` module \(it has \['body', 'out'\]\)"):
        run(
            make_cfg(*TINY, f"transfer.source={source}", "transfer.reset_head=true"), tmp_path / "x"
        )


def test_a_key_of_the_users_own_class_needs_a_plus(make_cfg):
    from dlrun.config.hydra_errors import describe_hydra_error

    with pytest.raises(Exception) as e:
        make_cfg("model=custom", "model._target_=usernets.TinyNet", "model.hidden=8")
    assert describe_hydra_error(e.value) == (
        "model.hidden: no such key (a key of your own class or function: +model.hidden=... "
        "with model=custom)"
    )


# docs/custom.md shows these two files: the user's own config groups
USER_MODEL_YAML = """\
# dlrun train --config-dir myconf model=tiny data=blobs
defaults:
  - custom          # model=custom: a _target_ and any keys of your own
name: tiny          # in run folder names: <time>_tiny-blobs
_target_: usernets.TinyNet
hidden: 8
"""
USER_DATA_YAML = """\
# dlrun train --config-dir myconf data=blobs
defaults:
  - custom          # data=custom: dlrun's data keys, a _target_ and keys of your own
name: blobs
_target_: usernets.blobs
n: 500
val_fraction: 0.2
"""


def test_config_dir_adds_the_users_own_choices_and_the_cli_trains_them(tmp_path, user_code):
    """`--config-dir` with the user's model/ and data/ groups, from a file outside the package."""
    from dlrun.report.cli import main as report

    conf = tmp_path / "myconf"
    (conf / "model").mkdir(parents=True)
    (conf / "data").mkdir()
    (conf / "model" / "tiny.yaml").write_text(USER_MODEL_YAML)
    (conf / "data" / "blobs.yaml").write_text(USER_DATA_YAML)
    quick = ["device=cpu", "trainer.epochs=3", "trainer.progress=false"]
    env = {**os.environ, "PYTHONPATH": str(user_code), "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-m", "dlrun", "train", "--config-dir", str(conf), "model=tiny", "data=blobs", *quick],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    (summary_file,) = (tmp_path / "outputs" / "runs").rglob(runs.SUMMARY)
    summary = json.loads(summary_file.read_text())
    assert summary["status"] == "completed" and summary["name"] == "tiny-blobs"
    assert summary["n_params"] == (5 * 8 + 8) + (8 * 3 + 3)  # 5 features in, 3 blobs out
    assert report([str(summary_file.parent)]) == 0
