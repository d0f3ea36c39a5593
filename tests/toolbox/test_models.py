"""Models by name: layers, dropout (dlrun/toolbox/models.py)."""

from __future__ import annotations

import pytest
import torch

from dlrun.toolbox.models import build_model


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


def paper_model(name: str, *overrides: str):
    from dlrun.config.compose import compose

    return build_model(compose([f"model={name}", *overrides]).model, (40,), 10)


def test_the_papers_four_models_are_the_defaults_of_their_choices():
    # Greydanus & Kobak (2024), notebooks/models.py: parameter counts by the layer formulas
    counts = {
        "logistic": 40 * 10 + 10,
        "resmlp": (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10),
        "cnn1d": (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (25 * 5 * 10 + 10),
        # two directions x three gates x (input, hidden and two bias terms), then 2 x 6 x 40 -> 10
        "gru": 2 * 3 * (6 * 1 + 6 * 6 + 6 + 6) + (2 * 6 * 40 * 10 + 10),
    }
    for name, expected in counts.items():
        net = paper_model(name, "model.batch_norm=false")  # cnn1d's default adds batch norm
        assert sum(p.numel() for p in net.parameters()) == expected, name
        assert net(torch.randn(3, 40)).shape == (3, 10)
    convs = [m for m in paper_model("cnn1d").features if isinstance(m, torch.nn.Conv1d)]
    norms = [m for m in paper_model("cnn1d").features if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 3
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (25, 5, 2),
        (25, 3, 2),
        (25, 3, 2),
    ]


def test_the_residual_mlp_computes_h_plus_relu_of_fc2_h():
    torch.manual_seed(0)
    net = paper_model("resmlp").eval()
    x = torch.randn(4, 40)
    f = net.features
    h = torch.relu(f.fc1(x))
    h = h + torch.relu(f.res2.fc2(h))
    assert torch.allclose(net(x), net.head(h), atol=1e-6)
    plain = paper_model("mlp", "model.width=100", "model.dropout=0")
    assert not hasattr(plain.features, "res2")  # mlp keeps its plain stack unless asked


def test_the_gru_reads_every_position_in_both_directions():
    torch.manual_seed(0)
    net = paper_model("gru").eval()
    x = torch.randn(2, 40)
    out = net.features(x).view(2, 40, 2, 6)  # (batch, position, direction, hidden)
    later = x.clone()
    later[:, -1] += 1.0  # only the last position changes...
    changed = (net.features(later).view(2, 40, 2, 6) - out).abs().amax(dim=(0, 3))
    assert changed[:-1, 0].max() == 0  # ...so the forward pass is unchanged before it
    assert (changed[-5:, 1] > 0).all()  # while the backward pass carries it back


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=logistic", "model.depth=2"], "no hidden layers"),
        (["model=gru", "model.activation=relu"], "gates are fixed"),
    ],
)
def test_impossible_model_settings_are_one_line_errors(make_cfg, overrides, message):
    from dlrun.errors import ModelError

    with pytest.raises(ModelError, match=message):
        build_model(make_cfg(*overrides).model, (40,), 10)


def test_residual_blocks_are_refused_outside_the_mlp_before_anything_is_built(make_cfg):
    from dlrun.config.validate import problems

    assert problems(make_cfg("model=cnn1d", "model.residual=true")) == [
        "model.residual=True is for mlp only, not model=cnn1d"
    ]
    assert problems(make_cfg("model=mlp", "model.residual=true")) == []
