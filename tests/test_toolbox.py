"""The lecture's toolbox against its formulas: initializers, optimizers, schedules, regularizers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlrun.config import CHOICES, InitConfig, ScheduleConfig
from dlrun.data import build_dataset
from dlrun.initializers import INITIALIZERS, initialize
from dlrun.models import build_model, weight_layers
from dlrun.optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_schedule, lr_factor

RELU_GAIN = math.sqrt(2.0)


# --- initializers ---------------------------------------------------------------

N_IN, N_OUT = 800, 400  # 320,000 weights: the sample std is within ~0.2% of the true one

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


def test_unknown_or_bad_init_settings_are_config_errors():
    from dlrun.config import ConfigError

    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(ConfigError, match="unknown init"):
        initialize(net, InitConfig(name="glorious"), "relu")
    with pytest.raises(ConfigError, match="init.gain"):
        initialize(net, InitConfig(name="he", gain=-1.0), "relu")


# --- optimizers: two steps on a tiny tensor against the update equations ---------

W0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
GRADS = [
    torch.tensor([0.3, -0.1, 0.7], dtype=torch.float64),
    torch.tensor([-0.2, 0.4, 0.1], dtype=torch.float64),
]


def _two_steps(make_cfg, name: str, *overrides: str) -> tuple[torch.Tensor, object]:
    cfg = make_cfg(f"optimizer={name}", *overrides).optimizer
    w = nn.Parameter(W0.clone())
    opt = build_optimizer([w], cfg)
    for g in GRADS:
        w.grad = g.clone()
        opt.step()
    return w.detach(), cfg


def _by_hand(name: str, c) -> torch.Tensor:
    """The textbook update rules, written out (c: the optimizer config)."""
    w, lr, wd = W0.clone(), c.lr, c.weight_decay
    v = s = u = torch.zeros_like(w)
    for t, g in enumerate(GRADS, start=1):
        if name != "adamw":
            g = g + wd * w  # coupled L2: the penalty's gradient joins g
        if name == "sgd":
            w = w - lr * g
        elif name == "momentum":
            v = c.momentum * v + g  # the lecture's v, divided by lr
            w = w - lr * v
        elif name == "nesterov":
            v = c.momentum * v + g
            w = w - lr * (g + c.momentum * v)
        elif name == "adagrad":
            s = s + g**2
            w = w - lr * g / (s.sqrt() + c.eps)
        elif name == "rmsprop":
            s = c.alpha * s + (1 - c.alpha) * g**2
            w = w - lr * g / (s.sqrt() + c.eps)
        elif name == "adadelta":
            s = c.rho * s + (1 - c.rho) * g**2
            delta = (u + c.eps).sqrt() / (s + c.eps).sqrt() * g
            u = c.rho * u + (1 - c.rho) * delta**2
            w = w - lr * delta
        else:  # adam, adamw: bias correction only in the step, not in the averages
            b1, b2 = c.betas
            if name == "adamw":
                w = w * (1 - lr * wd)  # decoupled: shrink the weights, not the gradient
            v = b1 * v + (1 - b1) * g
            s = b2 * s + (1 - b2) * g**2
            w = w - lr * (v / (1 - b1**t)) / ((s / (1 - b2**t)).sqrt() + c.eps)
    return w


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_two_steps_equal_the_update_equations(make_cfg, name, decay):
    w, cfg = _two_steps(make_cfg, name, f"optimizer.weight_decay={decay}")
    assert torch.allclose(w, _by_hand(name, cfg), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(w, W0)


def test_adamw_decay_differs_from_adam_l2(make_cfg):
    adam, _ = _two_steps(make_cfg, "adam", "optimizer.weight_decay=0.1")
    adamw, _ = _two_steps(make_cfg, "adamw", "optimizer.weight_decay=0.1")
    assert not torch.allclose(adam, adamw)


def test_every_optimizer_and_schedule_is_a_listed_choice():
    assert set(CHOICES["optimizer"]) == set(OPTIMIZERS)
    assert set(CHOICES["schedule"]) == set(SCHEDULES)


def test_settings_an_optimizer_ignores_warn(make_cfg, capsys):
    params = [nn.Parameter(W0.clone())]
    build_optimizer(params, make_cfg("optimizer=adam", "optimizer.momentum=0.9").optimizer)
    assert "optimizer.momentum=0.9: no effect with optimizer=adam" in capsys.readouterr().err
    build_optimizer(params, make_cfg("optimizer=rmsprop", "optimizer.momentum=0.9").optimizer)
    assert capsys.readouterr().err == ""  # rmsprop has momentum


# --- schedules -------------------------------------------------------------------


def test_inverse_sqrt_gives_eta_over_sqrt_t():
    opt = torch.optim.SGD([nn.Parameter(W0.clone())], lr=0.4)
    schedule = build_schedule(opt, ScheduleConfig(name="inverse_sqrt"), epochs=10)
    for t in range(1, 10):  # t: the epoch, counted from 1
        assert opt.param_groups[0]["lr"] == pytest.approx(0.4 / math.sqrt(t))
        opt.step()
        schedule.step()


def test_step_cosine_and_warmup_factors():
    step = lr_factor(ScheduleConfig(name="step", step_size=3, gamma=0.5), epochs=10)
    assert [step(e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    cosine = lr_factor(ScheduleConfig(name="cosine", min_lr=0.1), epochs=10, lr=1.0)
    assert cosine(0) == pytest.approx(1.0) and cosine(5) == pytest.approx(0.55)
    assert cosine(10) == pytest.approx(0.1)
    warm = lr_factor(ScheduleConfig(name="inverse_sqrt", warmup_epochs=3), epochs=10)
    expected = [0.25, 0.5, 0.75, 1.0, 1 / math.sqrt(2), 1 / math.sqrt(3)]
    assert [warm(e) for e in range(6)] == pytest.approx(expected)
    assert lr_factor(ScheduleConfig(name="constant"), epochs=10) is None  # no scheduler at all


# --- regularizers ----------------------------------------------------------------


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


def test_label_noise_changes_the_requested_fraction_of_training_labels_only(make_cfg):
    clean_cfg = make_cfg("data=spirals", "data.n_samples=1500")
    noisy_cfg = make_cfg("data=spirals", "data.n_samples=1500", "data.label_noise=0.25")
    clean = build_dataset(clean_cfg.data, 0, torch.device("cpu"))
    noisy = build_dataset(noisy_cfg.data, 0, torch.device("cpu"))
    assert torch.equal(clean.train.x, noisy.train.x)
    changed = (clean.train.y != noisy.train.y).sum().item()
    assert changed == round(0.25 * len(clean.train))
    assert torch.equal(clean.val.y, noisy.val.y) and torch.equal(clean.test.y, noisy.test.y)


def test_n_train_takes_a_subset(make_cfg):
    data = build_dataset(make_cfg("data=moons", "data.n_train=100").data, 0, torch.device("cpu"))
    assert len(data.train) == 100


def test_dlrun_list_shows_every_choice(capsys, monkeypatch):
    from dlrun.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for group in ("init", "optimizer", "schedule", "data/augment"):
        assert group in out
        for choice, (description, _) in CHOICES[group].items():
            assert choice in out and description in out, (group, choice)
            assert description and "\n" not in description


def test_label_noise_never_keeps_a_label():
    from dlrun.data import corrupt_labels

    y = np.arange(1000) % 10
    noisy = corrupt_labels(y, 0.3, 10, np.random.default_rng(0))
    assert (noisy != y).sum() == 300
