"""Replicas whose optimizer settings agree step in one call, each as its own step (dlrun/sweeps/replica_steps.py)."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from dlrun.sweeps import replica_steps
from dlrun.sweeps.replica_loop import fit_replicas
from dlrun.sweeps.replica_steps import plan_steps
from dlrun.sweeps.replicas import build_replica

from conftest import QUICK


@pytest.fixture(scope="module")
def base():
    from dlrun.config.compose import compose

    return compose([*QUICK, "model.width=32", "trainer.batch_size=64"])


def cfg_with(cfg, **settings):
    """A copy of cfg with dotted settings; a group's `name` alone picks another choice."""
    cfg = cfg.copy()
    for key, value in settings.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def train(cfgs):
    replicas = [build_replica(c) for c in cfgs]
    fit_replicas(replicas)
    return replicas


@pytest.mark.parametrize(
    "optimizer",
    [
        {"optimizer.name": "adam"},
        {"optimizer.name": "momentum", "optimizer.lr": 0.05, "optimizer.momentum": 0.9},
    ],
)
def test_one_call_for_equal_settings_gives_each_replica_its_own_step_bit_for_bit(
    base, monkeypatch, optimizer
):
    # a schedule moves the rate away from the optimizer's defaults every epoch
    settings = {"schedule.name": "cosine", "model.dropout": 0.2, **optimizer}
    cfgs = [cfg_with(base, seed=s, **settings) for s in range(3)]
    together = train(cfgs)
    plan = plan_steps(together)
    assert len(plan) == 1 and plan[0].merged is not None  # all three share one optimizer
    monkeypatch.setattr(replica_steps, "MERGEABLE", ())  # every replica steps through its own
    apart = train(cfgs)
    assert all(s.merged is None for s in plan_steps(apart))
    for a, b in zip(together, apart):
        clock = {"time_s"}  # the only difference: how long each took
        assert [r.keys() - clock for r in a.metrics] == [r.keys() - clock for r in b.metrics]
        for x, y in zip(a.metrics, b.metrics):  # nan: update_cos at the first epoch
            assert all(
                x[k] == y[k] or (math.isnan(x[k]) and math.isnan(y[k])) for k in x.keys() - clock
            )
        for (name, x), y in zip(a.parts.model.named_parameters(), b.parts.model.parameters()):
            assert torch.equal(x, y), name
        for x, y in zip(a.parts.optimizer.state.values(), b.parts.optimizer.state.values()):
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        lr = a.parts.optimizer.param_groups[0]["lr"]
        assert lr == b.parts.optimizer.param_groups[0]["lr"] < cfgs[0].optimizer.lr
        assert type(a.parts.optimizer).__name__.lower() == cfgs[0].optimizer.name.replace(
            "momentum", "sgd"
        )


@pytest.mark.parametrize(
    ("second", "groups"),
    [
        ({"optimizer.lr": 0.003}, 2),  # another rate: its own call
        ({"optimizer.name": "adamw", "optimizer.weight_decay": 0.01}, 2),  # another class
        ({"optimizer.name": "rmsprop"}, 2),  # not fused-per-tensor here: steps alone
        ({}, 1),
    ],
)
def test_replicas_share_a_call_only_when_class_and_settings_agree(base, second, groups):
    replicas = [
        build_replica(cfg_with(base, seed=0)),
        build_replica(cfg_with(base, seed=1, **second)),
    ]
    assert all(s.merged is None for s in plan_steps(replicas))  # no state yet: each steps alone
    for replica in replicas:
        for p in replica.parts.model.parameters():
            p.grad = torch.zeros_like(p)
        replica.parts.optimizer.step()
    assert len(plan_steps(replicas)) == groups
