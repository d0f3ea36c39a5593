"""Data augmentation on the device: each transform against what it promises."""

from __future__ import annotations

import math

import pytest
import torch

from dlrun.config.schema import AugmentConfig
from dlrun.errors import ConfigError
from dlrun.run.runner import run
from dlrun.toolbox.augment import build_augment


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _shifted(signal: torch.Tensor, s: int) -> torch.Tensor:
    """The signal moved s samples to the right (left for s < 0), zeros filling in."""
    out = torch.zeros_like(signal)
    if s >= 0:
        out[s:] = signal[: len(signal) - s]
    else:
        out[:s] = signal[-s:]
    return out


def test_signal_shift_translates_with_zero_padding():
    x = torch.arange(1.0, 41.0).repeat(64, 1)
    out = build_augment(AugmentConfig(name="signal", shift=3), (40,))(x, _gen())
    shifts = []
    for row in out:
        matches = [s for s in range(-3, 4) if torch.equal(row, _shifted(x[0], s))]
        assert len(matches) == 1
        shifts += matches
    assert set(shifts) == set(range(-3, 4))  # every shift in [-3, 3] is drawn


def test_noise_and_amplitude_scale_have_the_configured_size():
    x = torch.ones(2000, 40)
    noisy = build_augment(AugmentConfig(name="signal", noise=0.2), (40,))(x, _gen())
    assert (noisy - x).std().item() == pytest.approx(0.2, rel=0.02)
    scaled = build_augment(AugmentConfig(name="signal", scale=0.1), (40,))(x, _gen())
    factors = scaled[:, 0]
    assert torch.equal(scaled, factors[:, None].expand_as(scaled))  # one factor per sample
    assert 0.9 <= factors.min().item() and factors.max().item() <= 1.1
    assert factors.std().item() == pytest.approx(0.2 / math.sqrt(12), rel=0.1)  # U(0.9, 1.1)


def test_image_shifts_flips_and_rotations():
    img = torch.zeros(64, 1, 8, 8)
    img[:, 0, 3, 5] = 1.0
    shifted = build_augment(AugmentConfig(name="image", shift=1), (1, 8, 8))(img, _gen())
    positions = {tuple(torch.nonzero(s[0] > 0.5)[0].tolist()) for s in shifted}
    assert positions == {(r, c) for r in (2, 3, 4) for c in (4, 5, 6)}  # whole-pixel moves
    assert torch.allclose(shifted.sum((1, 2, 3)), torch.ones(64), atol=1e-5)  # nothing smeared
    flipped = build_augment(AugmentConfig(name="image", flip=True), (1, 8, 8))(img, _gen())
    assert {tuple(torch.nonzero(s[0] > 0.5)[0].tolist()) for s in flipped} == {(3, 5), (3, 2)}
    rotated = build_augment(AugmentConfig(name="image", rotate=10.0), (1, 8, 8))(img, _gen())
    assert not torch.allclose(rotated, img) and rotated.sum().item() == pytest.approx(64, rel=0.1)


def test_augment_settings_that_do_not_fit_the_data_are_config_errors():

    with pytest.raises(ConfigError, match="rotate/flip need images"):
        build_augment(AugmentConfig(name="x", rotate=5.0), (40,))
    with pytest.raises(ConfigError, match="shift=40"):
        build_augment(AugmentConfig(name="x", shift=40), (40,))


def test_augment_choices_compose_into_data_augment(make_cfg):
    cfg = make_cfg("data=digits", "data/augment=image")
    assert cfg.data.name == "digits" and cfg.data.augment.name == "image"
    assert cfg.data.augment.rotate > 0
    assert make_cfg().data.augment.name == "none"


def test_augmented_run_trains_and_is_reproducible(make_cfg, tmp_path):
    cfg = make_cfg("data/augment=signal", "model.width=32", "trainer.epochs=2")
    first = run(cfg, tmp_path / "a")
    second = run(cfg, tmp_path / "b")
    assert first["train_loss"] == second["train_loss"]
    plain = run(make_cfg("model.width=32", "trainer.epochs=2"), tmp_path / "c")
    assert plain["train_loss"] != first["train_loss"]  # the transform was applied
