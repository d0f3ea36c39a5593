"""The optimizer steps of a stack's replicas: one torch.optim call for replicas whose settings agree.

Each replica keeps its own torch.optim optimizer (its state is what last.pt
saves and a resume loads). Stepping them one by one costs each call's Python
(about as much as the fused kernel itself for the default MLP on a CPU core),
so replicas whose optimizers are the same fused class with the same settings,
learning rate included, step through one optimizer of that class over all of
their parameters that holds each replica's own state dicts. A fused kernel
updates every tensor on its own, so each replica's numbers are those of its
own step (tests/sweeps/test_replicas.py checks them bit for bit).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from dlrun.folders import runs
from dlrun.sweeps.replicas import Replica

# Fused torch.optim classes whose step updates each tensor from its own state alone.
MERGEABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


@dataclass
class Steps:
    """Replicas that step together: through `merged`, or (None) each through its own."""

    replicas: list[Replica]
    merged: torch.optim.Optimizer | None = None

    def step(self) -> None:
        """One optimizer step of every replica still running; an error fails those it hit."""
        running = [r for r in self.replicas if r.state.status == runs.RUNNING]
        if self.merged is None or len(running) < len(self.replicas):
            for replica in running:  # one replica failed mid-epoch: the rest step alone
                _attempt([replica], replica.parts.optimizer.step)
        else:
            _attempt(running, self.merged.step)


def plan_steps(live: list[Replica]) -> list[Steps]:
    """The epoch's steps: replicas with the same optimizer settings share one call.

    Built at the start of each epoch, after the schedules set its rates. A
    replica whose optimizer has not stepped yet steps alone (its first step
    makes its state, and a schedule expects its own optimizer to have stepped).
    """
    groups: dict[tuple, list[Replica]] = {}
    alone = []
    for replica in live:
        key = _merge_key(replica.parts.optimizer)
        if key is None:
            alone.append(Steps([replica]))
        else:
            groups.setdefault(key, []).append(replica)
    plan = [_merged(members) if len(members) > 1 else Steps(members) for members in groups.values()]
    return plan + alone


def _merge_key(optimizer: torch.optim.Optimizer) -> tuple | None:
    """What must agree for replicas to step as one, or None: this optimizer steps alone."""
    if type(optimizer) not in MERGEABLE or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if not group.get("fused") or not all(optimizer.state.get(p) for p in group["params"]):
        return None
    settings = tuple(
        sorted(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in group.items() if k != "params"
        )
    )
    try:
        hash(settings)  # a tensor-valued setting (a capturable lr) cannot be compared so
    except TypeError:
        return None
    return (type(optimizer), settings)


def _merged(replicas: list[Replica]) -> Steps:
    """One optimizer of the replicas' class and settings over all their parameters, whose
    state entries are the replicas' own state dicts (updated in place by each step)."""
    first = replicas[0].parts.optimizer
    params = [p for r in replicas for p in r.parts.optimizer.param_groups[0]["params"]]
    accepted = inspect.signature(type(first)).parameters  # AdamW takes no decoupled_weight_decay
    merged = type(first)(params, **{k: v for k, v in first.defaults.items() if k in accepted})
    merged.param_groups[0].update({k: v for k, v in first.param_groups[0].items() if k != "params"})
    for replica in replicas:
        own = replica.parts.optimizer
        for p in own.param_groups[0]["params"]:
            merged.state[p] = own.state[p]
    return Steps(replicas, merged)


def _attempt(replicas: list[Replica], step) -> None:
    try:
        step()
    except Exception as e:  # its own part: these replicas fail, the stack goes on
        for replica in replicas:
            replica.state.status = runs.FAILED
            replica.error = f"{type(e).__name__}: {e}"
