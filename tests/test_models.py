"""Models by name: layers, dropout (dlrun/models.py)."""

from __future__ import annotations

import pytest
import torch

from dlrun.models import build_model


def test_dropout_zeroes_the_expected_fraction_and_is_identity_in_eval(make_cfg):
    torch.manual_seed(0)
    net = build_model(make_cfg("model=mlp", "model.dropout=0.3").model, (40,), 10)
    drop = net.features.drop1
    x = torch.ones(200_000)
    out = drop(x)
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    # Inverted dropout: survivors are scaled by 1/(1-p), so the mean is kept in training.
    assert out[out != 0].unique().tolist() == pytest.approx([1 / 0.7])
    net.eval()
    assert torch.equal(drop(x), x)
    batch = torch.randn(8, 40)
    assert torch.equal(net(batch), net(batch))
