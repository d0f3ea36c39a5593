"""Initializers against their formulas, and what they do to a real run (dlrun/toolbox/initializers.py)."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from dlrun.config.choices import CHOICES
from dlrun.config.schema import InitConfig
from dlrun.errors import ConfigError
from dlrun.run.runner import run
from dlrun.toolbox.initializers import INITIALIZERS, initialize
from dlrun.toolbox.models import build_model, weight_layers

N_IN, N_OUT = 800, 400  # 320,000 weights: the sample std is within ~0.2% of the true one


RELU_GAIN = math.sqrt(2.0)

FORMULAS = {
    "xavier": math.sqrt(2.0 / (N_IN + N_OUT)),  # Glorot: gain 1 even for ReLU
    "xavier_uniform": math.sqrt(2.0 / (N_IN + N_OUT)),
    "he": RELU_GAIN / math.sqrt(N_IN),  # 2 / n_in
    "he_uniform": RELU_GAIN / math.sqrt(N_IN),
    "lecun": 1.0 / math.sqrt(N_IN),
    "orthogonal": RELU_GAIN / math.sqrt(max(N_IN, N_OUT)),
    "normal": 0.05,
    "zeros": 0.0,
    "constant": 0.0,
}


SMALL = ["data=spirals", "data.n_samples=600", "model.width=16", "model.dropout=0"]


def best_weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]


def _deep_run(make_cfg, tmp_path, init: str):
    cfg = make_cfg(
        "model.depth=30", "model.width=64", "model.dropout=0", f"init={init}",
        "optimizer=sgd", "optimizer.lr=0.05", "trainer.epochs=3",
    )  # fmt: skip
    run(cfg, tmp_path / init)
    layers = [r for r in read_csv(tmp_path / init / "layers.csv") if r["epoch"] == "0"]
    last_hidden = next(r for r in layers if r["layer"] == "features.fc30")
    losses = [float(r["train_loss"]) for r in read_csv(tmp_path / init / "metrics.csv")]
    return float(last_hidden["act_std"]), losses


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_initializer_std_matches_its_formula(name):
    torch.manual_seed(0)
    w = torch.empty(N_OUT, N_IN)
    INITIALIZERS[name](w, InitConfig(name=name, std=0.05, value=0.3), "relu")
    expected = FORMULAS[name]
    assert w.std().item() == pytest.approx(expected, rel=0.03, abs=1e-12)
    assert abs(w.mean().item() - (0.3 if name == "constant" else 0.0)) < 0.03 * max(expected, 0.01)


def test_every_initializer_has_a_formula_and_a_listed_choice():
    assert set(FORMULAS) == set(INITIALIZERS)
    assert set(CHOICES["init"]) == {"default", *INITIALIZERS}


def test_uniform_variants_are_uniform_and_orthogonal_is_orthogonal():
    torch.manual_seed(0)
    w = torch.empty(N_OUT, N_IN)
    INITIALIZERS["he_uniform"](w, InitConfig(name="he_uniform"), "relu")
    bound = math.sqrt(3.0) * RELU_GAIN / math.sqrt(N_IN)  # U(-a, a) has std a / sqrt(3)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
    INITIALIZERS["orthogonal"](w, InitConfig(name="orthogonal", gain=1.0), "relu")
    assert torch.allclose(w @ w.T, torch.eye(N_OUT), atol=1e-4)  # rows orthonormal


def test_gains_follow_the_activation_only_where_the_method_defines_one():
    torch.manual_seed(0)
    w = torch.empty(N_OUT, N_IN)
    INITIALIZERS["he"](w, InitConfig(name="he"), "tanh")
    assert w.std().item() == pytest.approx((5.0 / 3.0) / math.sqrt(N_IN), rel=0.03)
    INITIALIZERS["xavier"](w, InitConfig(name="xavier"), "tanh")
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / (N_IN + N_OUT)), rel=0.03)
    INITIALIZERS["xavier"](w, InitConfig(name="xavier", gain=2.0), "tanh")
    assert w.std().item() == pytest.approx(2.0 * math.sqrt(2.0 / (N_IN + N_OUT)), rel=0.03)


def test_convolution_fans_count_the_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 5)  # n_in = 64 * 25 = 1600
    INITIALIZERS["he"](conv.weight, InitConfig(name="he"), "relu")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / 1600), rel=0.03)


@pytest.mark.parametrize(
    "model, data, shape",
    [
        ("mlp", "moons", (2,)),
        ("cnn1d", "x", (40,)),
        ("cnn2d", "x", (1, 8, 8)),
        ("deep_linear", "x", (40,)),
    ],
)
def test_init_applies_to_every_weight_layer_with_zero_biases(make_cfg, model, data, shape):
    cfg = make_cfg(f"model={model}", "init=he", "model.width=64")
    net = build_model(cfg.model, shape, 10)
    torch.manual_seed(0)
    initialize(net, cfg.init, cfg.model.activation)
    # deep_linear has no nonlinearity, so He's gain is the linear one: 1.
    gain = 1.0 if model == "deep_linear" else RELU_GAIN
    for name, layer in weight_layers(net):
        w = layer.weight
        n_in = w[0].numel()
        assert w.std().item() == pytest.approx(gain / math.sqrt(n_in), rel=0.15), name
        assert torch.count_nonzero(layer.bias) == 0, name


def test_an_unknown_init_is_a_config_error():

    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(ConfigError, match="unknown init"):
        initialize(net, InitConfig(name="glorious"), "relu")


def test_zero_init_never_breaks_symmetry(make_cfg, tmp_path):
    run(make_cfg(*SMALL, "init=zeros", "trainer.epochs=4"), tmp_path)
    weights = best_weights(tmp_path)
    # With every weight zero, hidden activations are relu(0) = 0, so no gradient
    # reaches any weight: hidden layers (and the head's weights) stay exactly
    # zero, and only the head's bias learns (the class frequencies).
    for name in ("features.fc1", "features.fc2"):
        w, b = weights[f"{name}.weight"], weights[f"{name}.bias"]
        assert torch.equal(w, w[:1].expand_as(w)) and torch.equal(b, b[:1].expand_as(b))
        assert torch.count_nonzero(w) == 0
    assert torch.count_nonzero(weights["head.weight"]) == 0
    assert torch.count_nonzero(weights["head.bias"]) > 0


def test_constant_init_moves_the_weights_but_every_hidden_unit_stays_identical(make_cfg, tmp_path):
    run(make_cfg(*SMALL, "init=constant", "init.value=0.1", "trainer.epochs=4"), tmp_path)
    weights = best_weights(tmp_path)
    for name in ("features.fc1", "features.fc2"):
        w, b = weights[f"{name}.weight"], weights[f"{name}.bias"]
        assert not torch.allclose(w, torch.full_like(w, 0.1))  # training moved them...
        assert torch.equal(w, w[:1].expand_as(w))  # ...the same way for every unit
        assert torch.equal(b, b[:1].expand_as(b))


def test_30_layer_relu_net_vanishes_under_xavier_but_not_he(make_cfg, tmp_path):
    he_std, he_losses = _deep_run(make_cfg, tmp_path, "he")
    xavier_std, xavier_losses = _deep_run(make_cfg, tmp_path, "xavier")
    # Glorot's variance 1/n for a square layer halves the signal's variance at
    # every ReLU: 29 layers later it is 2^-14.5 smaller than He's.
    assert he_std > 100 * xavier_std
    assert 0.1 < he_std < 10
    assert he_losses[-1] < he_losses[0] - 0.05
    assert abs(xavier_losses[-1] - xavier_losses[0]) < 0.01


@pytest.mark.parametrize("name", ["xavier", "orthogonal", "zeros"])
def test_a_grus_gates_are_initialised_one_matrix_at_a_time(make_cfg, name):
    cfg = make_cfg("model=gru", "model.width=64", f"init={name}")
    net = build_model(cfg.model, (40,), 10)
    torch.manual_seed(0)
    initialize(net, cfg.init, cfg.model.activation)
    gru = net.features.gru
    tanh_gain = nn.init.calculate_gain("tanh")
    for param_name, w in gru.named_parameters():
        if param_name.startswith("bias"):
            assert torch.count_nonzero(w) == 0, param_name
            continue
        for gate in w.chunk(3):  # reset, update, new: each a 64 x n_in matrix
            n_out, n_in = gate.shape
            if name == "xavier" and n_in == n_out:  # 4,096 entries: a precise std
                expected = math.sqrt(2.0 / (n_in + n_out))
                assert gate.std().item() == pytest.approx(expected, rel=0.15), param_name
            elif name == "orthogonal" and n_in == n_out:  # hidden-to-hidden: square
                assert torch.allclose(gate @ gate.T, tanh_gain**2 * torch.eye(64), atol=1e-4)
            elif name == "zeros":
                assert torch.count_nonzero(gate) == 0
