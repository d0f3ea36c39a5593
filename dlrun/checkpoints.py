"""Checkpoints: what the loop changes, saved so a run can be resumed or reloaded.

last.pt resumes training exactly (model, optimizer, schedule, early stopping,
RNG states, epoch); best.pt holds the best epoch's weights and optimizer state.
Both load with torch.load(path, weights_only=True): tensors, dicts and numbers only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from dlrun import runs
from dlrun.errors import ConfigError


@dataclass
class Parts:
    """What the epoch loop trains with, built by `run` from the config."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any  # a per-epoch LR scheduler, or None for a constant rate
    stopper: Any  # dlrun.train.EarlyStopping
    generator: torch.Generator  # draws the batches (and augmentations)
    augment: Any = None  # a (batch, generator) -> batch function, or None
    loss_fn: Any = None
    forward: Any = None  # the model's forward pass: the module, or torch.compile's form of it


@dataclass
class State:
    """Everything the loop changes, so a checkpoint can restore it."""

    epoch: int = 0
    step: int = 0
    wall_s: float = 0.0
    best_model: dict[str, torch.Tensor] = field(default_factory=dict)
    best_optimizer: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    steps_to_target: int | None = None  # trainer.target_loss reached after this many updates


def checkpoint(parts: Parts, state: State, cfg) -> dict:
    return {
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "schedule": parts.schedule.state_dict() if parts.schedule is not None else None,
        "epoch": state.epoch,
        "step": state.step,
        "wall_s": state.wall_s,
        "early_stopping": parts.stopper.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "batches": parts.generator.get_state(),
        },
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def save_checkpoints(run_dir: Path, ckpt: dict, state: State) -> None:
    """Write last.pt and best.pt atomically (a crash mid-write keeps the old file)."""
    folder = run_dir / runs.CHECKPOINTS
    folder.mkdir(exist_ok=True)
    best = {**ckpt, "model": state.best_model or ckpt["model"], "epoch_saved": ckpt["epoch"]}
    best["optimizer"] = state.best_optimizer or ckpt["optimizer"]
    for name, payload in ((runs.LAST, ckpt), (runs.BEST, best)):
        tmp = folder / f".{name}.tmp"
        torch.save(payload, tmp)
        tmp.replace(folder / name)


class Snapshot:
    """The best epoch's weights and optimizer state, copied into buffers allocated once.

    Early stopping improves on most early epochs; copying into the same buffers
    (one fused copy on a GPU) costs far less than cloning fresh dicts each time.
    """

    def __init__(self, state: State):
        self.state = state

    def take(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.state.best_model = _copy_into(self.state.best_model, model.state_dict())
        current = optimizer.state_dict()
        saved = self.state.best_optimizer.get("state", {})
        self.state.best_optimizer = {
            "state": {k: _copy_into(saved.get(k, {}), v) for k, v in current["state"].items()},
            "param_groups": copy.deepcopy(current["param_groups"]),
        }


def _copy_into(buffers: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """buffers <- source, reusing buffers whose keys and shapes match."""
    if buffers.keys() != source.keys() or any(
        not torch.is_tensor(buffers[k]) or buffers[k].shape != v.shape
        for k, v in source.items()
        if torch.is_tensor(v)
    ):
        return {
            k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v)
            for k, v in source.items()
        }
    keys = [k for k, v in source.items() if torch.is_tensor(v)]
    with torch.no_grad():
        torch._foreach_copy_([buffers[k] for k in keys], [source[k] for k in keys])
    for k, v in source.items():
        if not torch.is_tensor(v):
            buffers[k] = copy.deepcopy(v)
    return buffers


def resume(folder: Path, parts: Parts, state: State, device: torch.device) -> None:
    """Restore everything last.pt holds; drop log rows written after it."""
    last = runs.last_checkpoint(folder)
    if not last.is_file():
        raise ConfigError(f"resume={folder}: no {runs.CHECKPOINTS}/{runs.LAST} to resume from")
    ckpt = torch.load(last, map_location=device, weights_only=True)
    parts.model.load_state_dict(ckpt["model"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    if parts.schedule is not None and ckpt["schedule"] is not None:
        parts.schedule.load_state_dict(ckpt["schedule"])
    parts.stopper.load_state_dict(ckpt["early_stopping"])
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    batches = ckpt["rng"]["batches"]
    parts.generator.set_state(batches.cpu() if device.type == "cpu" else batches)
    state.epoch, state.step, state.wall_s = ckpt["epoch"], ckpt["step"], ckpt["wall_s"]
    best = torch.load(runs.best_checkpoint(folder), map_location=device, weights_only=True)
    state.best_model, state.best_optimizer = best["model"], best["optimizer"]
    runs.truncate_csv(folder / runs.METRICS, state.epoch)
    runs.truncate_csv(folder / runs.LAYERS, state.epoch)
