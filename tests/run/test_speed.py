"""Precision, torch.compile and where data lives (dlrun/run/speed.py); GPU-only parts in test_gpu.py."""

from __future__ import annotations

import pytest
import torch

from dlrun.errors import ConfigError
from dlrun.folders import runs
from dlrun.run import speed
from dlrun.run.runner import run

CPU = torch.device("cpu")


def test_bad_precision_or_compile_mode_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="trainer.precision='16'"):
        speed.check(make_cfg("trainer.precision=16").trainer)
    with pytest.raises(ConfigError, match="trainer.compile_mode"):
        speed.check(make_cfg("trainer.compile_mode=fastest").trainer)


def test_bf16_autocasts_the_forward_pass_only():
    layer = torch.nn.Linear(4, 3)
    with speed.autocast(CPU, "bf16"):
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    with speed.autocast(CPU, "32"):
        assert layer(torch.randn(2, 4)).dtype == torch.float32


def test_a_bf16_run_learns_with_float32_master_weights(make_cfg, tmp_path):
    overrides = ("data=moons", "model.width=32", "trainer.epochs=4", "trainer.layer_stats=false")
    exact = run(make_cfg(*overrides), tmp_path / "fp32")
    bf16 = run(make_cfg(*overrides, "trainer.precision=bf16"), tmp_path / "bf16")
    state = torch.load(runs.last_checkpoint(tmp_path / "bf16"), weights_only=True)
    assert all(t.dtype == torch.float32 for t in state["model"].values())
    assert bf16["status"] == "completed" and bf16["test_acc"] > 0.8
    # bfloat16 keeps 8 bits of mantissa: close to float32's curve, not equal to it
    assert bf16["train_loss"] == pytest.approx(exact["train_loss"], rel=0.05)
    assert bf16["train_loss"] != exact["train_loss"]


@pytest.mark.slow
def test_compiled_forward_gives_the_eager_numbers(make_cfg, tmp_path):
    # no dropout: compiled code draws its masks from its own generator
    overrides = ("data=moons", "model.width=32", "model.dropout=0", "trainer.epochs=3")
    eager = run(make_cfg(*overrides), tmp_path / "eager")
    compiled = run(make_cfg(*overrides, "trainer.compile=true"), tmp_path / "compiled")
    for key in ("train_loss", "val_loss", "test_acc"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-4), key
    # checkpoints keep the module's own names, loadable into an uncompiled model
    state = torch.load(runs.best_checkpoint(tmp_path / "compiled"), weights_only=True)["model"]
    assert not any(name.startswith("_orig_mod") for name in state)
