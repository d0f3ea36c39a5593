"""Optimizers against their update equations, schedules against their formulas (dlrun/toolbox/optim.py)."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from dlrun.config.choices import CHOICES
from dlrun.config.schema import ScheduleConfig
from dlrun.run.runner import run
from dlrun.toolbox.optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_schedule, lr_factor


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


GRADS = [
    torch.tensor([0.3, -0.1, 0.7], dtype=torch.float64),
    torch.tensor([-0.2, 0.4, 0.1], dtype=torch.float64),
]


W0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


def _two_steps(make_cfg, name: str, *overrides: str) -> tuple[torch.Tensor, object]:
    cfg = make_cfg(f"optimizer={name}", *overrides).optimizer
    w = nn.Parameter(W0.clone())
    opt = build_optimizer([w], cfg)
    for g in GRADS:
        w.grad = g.clone()
        opt.step()
    return w.detach(), cfg


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


SMALL = ["data=spirals", "data.n_samples=600", "model.width=16", "model.dropout=0"]


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


def test_schedule_rate_is_logged_every_epoch(make_cfg, tmp_path):
    cfg = make_cfg(*SMALL, "optimizer=sgd", "optimizer.lr=0.1", "schedule=inverse_sqrt",
                   "schedule.warmup_epochs=1", "trainer.epochs=4")  # fmt: skip
    run(cfg, tmp_path)
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "metrics.csv")]
    # One warm-up epoch at lr/2, then eta / sqrt(t) for t = 1, 2, 3.
    assert lrs == pytest.approx([0.05, 0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3)])
