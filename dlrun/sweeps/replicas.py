"""Batched replicas: jobs that differ in values, not shapes, trained as one stacked model.

A sweep over seeds, learning rates or dropout rates trains R copies of one
architecture. Stacked, their weights gain a leading replica dimension and each
layer is one batched matrix product (torch.baddbmm) instead of R small ones.
Each replica is built exactly as a run alone builds it (the same seeding order,
split, initial weights, batch order and torch.optim optimizer), so its run
folder cannot tell the difference except by speed.

Here: which configs may share a stack (`compatible_key`, `unbatchable_reason`,
`group_jobs`) and one job's parts (`build_replica`). The stacked net is
`dlrun.sweeps.stacked.StackedNet`, the epoch loop `dlrun.sweeps.replica_loop.fit_replicas`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from dlrun.config import validate
from dlrun.data.tensors import Dataset
from dlrun.errors import ConfigError
from dlrun.run.checkpoints import Parts, State, resume
from dlrun.run.runner import setup
from dlrun.toolbox.memory import available_bytes

# Settings that may differ inside one stack, and why they can. Every other
# setting must be equal (so a setting added later is safe until listed here).
PER_REPLICA = {
    "seed": "each replica draws its own split, initial weights, batches and dropout",
    "name": "a label",
    "init": "each replica is initialised as its own solo model, then stacked",
    "optimizer": "each replica steps its own torch.optim optimizer",
    "schedule": "each replica's optimizer has its own schedule",
    "model.dropout": "a drop probability per replica",
    "data.label_noise": "only the labels' values differ",
    "data.noise": "values, not shapes",
    "data.data_seed": "values, not shapes",
    "data.condition": "values, not shapes",
    "trainer.epochs": "a limit per replica; the stack runs until its last replica stops",
    "trainer.early_stopping": "early stopping per replica",
    "trainer.target_loss": "checked per replica",
    "trainer.divergence_loss": "checked per replica",
    "trainer.max_grad_norm": "gradients are clipped per replica",
    "trainer.eval_batch_size": "evaluation runs per replica",
    "trainer.layer_stats": "diagnostics run per replica",
    "trainer.progress": "display only",
}

STACKABLE_MODELS = ("mlp", "deep_linear")


def unbatchable_reason(cfg) -> str | None:
    """Why this job must run alone, or None when it can join a stack."""
    if cfg.model.name not in STACKABLE_MODELS:
        return f"model={cfg.model.name}: only {' and '.join(STACKABLE_MODELS)} are stacked"
    if cfg.model.get("residual"):
        return "model.residual=true: residual blocks are not stacked"
    if cfg.model.batch_norm:
        return "model.batch_norm=true: batch statistics are not stacked"
    if cfg.data.augment.name != "none":
        return f"data/augment={cfg.data.augment.name}: augmentations are drawn per run, not stacked"
    if cfg.trainer.get("steps") is not None:
        return "trainer.steps: the stack counts whole epochs"
    if not cfg.trainer.get("shuffle", True):
        return "trainer.shuffle=false: the stack draws a new batch order every epoch"
    if cfg.data.val_fraction == 0:
        return "data.val_fraction=0: the stack evaluates on a validation split"
    if cfg.transfer.source:
        return "transfer.source: pretrained weights are loaded by the solo path"
    if cfg.resume:
        return "resume: a run folder continues on its own"
    if cfg.trainer.compile:
        return "trainer.compile=true: the stacked step is not compiled"
    if str(cfg.trainer.precision) == "bf16":
        return "trainer.precision=bf16: the stacked step runs in float32"
    return None


def compatible_key(cfg) -> str:
    """The settings that must be equal for jobs to share a stack, as a comparable string."""
    node = cfg if OmegaConf.is_config(cfg) else OmegaConf.structured(cfg)
    tree = OmegaConf.to_container(node, resolve=True)  # values as the run folder records them
    for dotted in PER_REPLICA:
        *parents, leaf = dotted.split(".")
        node = tree
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return json.dumps(tree, sort_keys=True, default=str)


def group_jobs(
    cfgs: list, max_replicas: int | None = None
) -> tuple[list[list[int]], dict[int, str]]:
    """Indices of jobs that can share a stack, in first-seen order; and why the others can't.

    Every job lands in exactly one group; an unbatchable job is a group of one.
    """
    groups: list[list[int]] = []
    open_group: dict[str, list[int]] = {}
    reasons: dict[int, str] = {}
    for i, cfg in enumerate(cfgs):
        reason = unbatchable_reason(cfg)
        if reason is not None:
            reasons[i] = reason
            groups.append([i])
            continue
        key = compatible_key(cfg)
        group = open_group.get(key)
        if group is None or (max_replicas is not None and len(group) >= max_replicas):
            group = open_group[key] = []
            groups.append(group)
        group.append(i)
    return groups, reasons


@dataclass
class Replica:
    """One job of a stack: a solo run's parts and data, and what the loop changes."""

    cfg: Any
    data: Dataset
    parts: Parts  # model, optimizer, schedule, stopper, batch generator, loss_fn
    dropout_generator: torch.Generator  # the stream the solo run's dropout draws from
    state: State = field(default_factory=State)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # metrics.csv rows
    layers: list[dict[str, Any]] = field(default_factory=list)  # layers.csv rows
    error: str | None = None  # why it failed: "<exception type>: <message>"
    turning: Any = None  # update_cos's memory (dlrun.toolbox.diagnostics.Turning), while stacked


def build_replica(cfg) -> Replica:
    """One job's data, model, optimizer and generators: the runner's own `setup`.

    The runner seeds, builds the data, the model and its initial weights, then
    the optimizer and the batch generator; calling it here makes the split, the
    label noise, the initial weights and the batch order equal to the solo
    run's bit for bit. The global RNG state it leaves (where the solo run's
    dropout draws from) becomes the replica's own dropout stream, and the
    process's global RNGs are restored afterwards.
    """
    reason = unbatchable_reason(cfg)
    if reason is not None:
        raise ConfigError(f"this job cannot join a stack: {reason}")
    validate.check(cfg)  # the ranges a run alone checks, before anything is built
    with _restored_global_rng():
        parts, data, device, _ = setup(cfg)
        dropout_generator = _global_stream(device)
    return Replica(cfg, data, parts, dropout_generator)


def resume_replica(replica: Replica, run_dir: Path) -> None:
    """Continue a built replica from its folder's last.pt, as `resume=<folder>` continues a run.

    The runner's own `resume`: weights, optimizer, schedule, early stopping, the
    batch order, metrics.csv and layers.csv cut back to the saved epoch; the
    global RNG it restores (where the solo run's dropout draws from on a CPU)
    becomes the replica's dropout stream, and the process's is put back.
    """
    device = replica.data.train.y.device
    with _restored_global_rng():
        resume(Path(run_dir), replica.parts, replica.state, device)
        if device.type == "cpu" and replica.state.epoch > 0:
            replica.dropout_generator = _global_stream(device)


def _global_stream(device: torch.device) -> torch.Generator:
    """A generator holding the state the global RNG of `device` has now."""
    generator = torch.Generator(device=device)
    if device.type == "cpu":
        generator.set_state(torch.get_rng_state())
    else:
        generator.set_state(torch.get_device_module(device).get_rng_state(device))
    return generator


@contextmanager
def _restored_global_rng() -> Iterator[None]:
    py, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        yield
    random.setstate(py)
    np.random.set_state(np_state)


@contextmanager
def as_global_rng(generator: torch.Generator) -> Iterator[None]:
    """Run solo code that draws from the global RNG (nn.Dropout) from `generator` instead."""
    module = torch if generator.device.type == "cpu" else torch.get_device_module(generator.device)
    saved = module.get_rng_state()
    module.set_rng_state(generator.get_state())
    try:
        yield
    finally:
        generator.set_state(module.get_rng_state())
        module.set_rng_state(saved)


MEMORY_SHARE = 0.5  # a stack may take this share of the device's available memory


# --- how many replicas fit ------------------------------------------------------------


def replica_bytes(replica: Replica) -> int:
    """Memory one replica takes in a training stack, by the rule in docs/sweeps.md.

    Its parameters thirteen times (stacked weights, gradients, two optimizer
    moments, then weights and moments again for the best epoch and twice for the
    last complete one), its data with the training split three times (its own,
    the stack's copy, the epoch's shuffled copy), and the activations of a step
    (four batch-by-width tensors per layer: output, activation, dropout mask,
    gradient).
    """
    parts, data = replica.parts, replica.data
    params = sum(p.numel() * p.element_size() for p in parts.model.parameters())
    train = data.train.x.nbytes + data.train.y.nbytes
    other = sum(s.x.nbytes + s.y.nbytes for s in (data.val, data.test))
    widths = sum(m.out_features for m in parts.model.modules() if hasattr(m, "out_features"))
    activations = 4 * replica.cfg.trainer.batch_size * widths * data.train.x.element_size()
    return 13 * params + 3 * train + other + activations


def stack_limit(replica: Replica, max_replicas: int | None = None) -> int:
    """Replicas like this one that one stack may hold: MEMORY_SHARE of the available memory
    over replica_bytes, at least 1, at most `max_replicas` (hydra.launcher.max_replicas)."""
    device = replica.data.train.y.device
    fits = max(1, int(MEMORY_SHARE * available_bytes(device)) // replica_bytes(replica))
    return fits if max_replicas is None else max(1, min(fits, max_replicas))
