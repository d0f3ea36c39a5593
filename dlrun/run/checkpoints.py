"""Checkpoints: what the loop changes, saved so a run can be resumed or reloaded.

last.pt resumes training exactly (model, optimizer, schedule, early stopping,
RNG states, epoch, and the best weights so far); best.pt holds the best
epoch's weights and optimizer state. Both load with torch.load(path,
weights_only=True): tensors, dicts and numbers only. They are written at epoch
boundaries only (after the first epoch, then every trainer.checkpoint_every_s),
each through a temporary file and a rename, so a kill at any moment leaves a
complete last.pt from which resuming is exact.
"""

from __future__ import annotations

import copy
import errno
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from dlrun.errors import ConfigError
from dlrun.folders import runs, safe


@dataclass
class Parts:
    """What the epoch loop trains with, built by `run` from the config."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any  # a per-epoch LR scheduler, or None for a constant rate
    stopper: Any  # dlrun.run.train.EarlyStopping
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
    checkpoint_epoch: int | None = None  # the epoch last.pt holds (not saved in it)
    update: torch.Tensor | None = None  # the last epoch's change of the weights (update_cos)


def checkpoint(parts: Parts, state: State, cfg) -> dict:
    ckpt = {
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "schedule": parts.schedule.state_dict() if parts.schedule is not None else None,
        "epoch": state.epoch,
        "step": state.step,
        "wall_s": state.wall_s,
        "early_stopping": parts.stopper.state_dict(),
        "update": state.update,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "batches": parts.generator.get_state(),
        },
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if state.best_model:
        # last.pt alone resumes: best.pt may be one save older if a kill fell between the two
        ckpt["best_model"] = state.best_model
    return ckpt


def save_checkpoints(run_dir: Path, ckpt: dict, state: State) -> None:
    """Write last.pt, then best.pt, each atomically (a crash mid-write keeps the old file)."""
    folder = safe.make_dir(Path(run_dir) / runs.CHECKPOINTS)  # never a link to elsewhere
    best = {k: v for k, v in ckpt.items() if k != "best_model"}
    best |= {"model": state.best_model or ckpt["model"], "epoch_saved": ckpt["epoch"]}
    best["optimizer"] = state.best_optimizer or ckpt["optimizer"]
    runs.atomic_write(folder / runs.LAST, lambda tmp: _save(ckpt, tmp))
    state.checkpoint_epoch = ckpt["epoch"]  # resumable from here, even if best.pt cannot follow
    runs.atomic_write(folder / runs.BEST, lambda tmp: _save(best, tmp))


def _save(payload: dict, path: Path) -> None:
    with open(path, "wb") as f:
        try:
            torch.save(payload, f)
        except RuntimeError as e:
            # torch's zip writer reports a short write (a full disk, a quota) as "unexpected pos"
            if "unexpected pos" in str(e):
                raise OSError(errno.ENOSPC, "No space left on device") from None
            raise


class Checkpointer:
    """When the loop saves: after the first epoch, then every `every_s` seconds of training.

    The interval stretches to 1/SHARE times the last save's duration, so saving
    never takes more than SHARE of the run, however large the model.
    """

    SHARE = 0.02

    def __init__(self, run_dir: Path, every_s: float):
        self.run_dir, self.every_s = Path(run_dir), every_s
        self.last, self.cost_s = time.perf_counter(), 0.0

    def due(self, state: State) -> bool:
        wait = max(self.every_s, self.cost_s / self.SHARE)
        return state.epoch == 1 or time.perf_counter() - self.last >= wait

    def save(self, parts: Parts, state: State, cfg) -> None:
        self.write(lambda: checkpoint(parts, state, cfg), state)

    def write(self, make: Any, state: State) -> None:
        """Save the checkpoint `make()` returns (a batched replica adds its dropout stream)."""
        start = time.perf_counter()
        save_checkpoints(self.run_dir, make(), state)
        self.last = time.perf_counter()
        self.cost_s = self.last - start


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


def load_checkpoint(
    path: Path, device: torch.device | str = "cpu", root: Path | None = None
) -> dict[str, Any]:
    """A checkpoint as saved by dlrun, or a one-line ConfigError for anything else.

    `root`: the run folder it belongs to; it is read as untrusted (dlrun.folders.safe).
    """
    try:
        with (
            safe.open_checkpoint(path, safe.CHECKPOINT_CAP, root) as f,
            warnings.catch_warnings(),  # torch warns about a foreign pickle before refusing it
        ):
            warnings.simplefilter("ignore")
            ckpt = torch.load(f, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such checkpoint") from None
    except ConfigError:
        raise
    except Exception as e:  # truncated, crafted, or not a checkpoint at all
        kind = (
            "refused by torch.load(weights_only=True)"
            if "weights_only" in str(e)
            else type(e).__name__
        )
        raise ConfigError(f"{path}: not a readable dlrun checkpoint ({kind})") from None
    if not isinstance(ckpt, dict):
        raise ConfigError(f"{path}: not a dlrun checkpoint (not a dict)")
    missing = {"model", "optimizer", "epoch", "step", "rng", "early_stopping"} - set(ckpt)
    if missing:
        raise ConfigError(f"{path}: not a dlrun checkpoint (no {', '.join(sorted(missing))})")
    return ckpt


def resume(folder: Path, parts: Parts, state: State, device: torch.device) -> None:
    """Restore everything last.pt holds; drop log rows written after it."""
    last = runs.last_checkpoint(folder)
    if not os.path.lexists(last):
        raise ConfigError(f"resume={folder}: no {runs.CHECKPOINTS}/{runs.LAST} to resume from")
    ckpt = load_checkpoint(last, device, root=folder)
    try:
        parts.model.load_state_dict(ckpt["model"])
        parts.optimizer.load_state_dict(ckpt["optimizer"])
        if parts.schedule is not None and ckpt.get("schedule") is not None:
            parts.schedule.load_state_dict(ckpt["schedule"])
        parts.stopper.load_state_dict(ckpt["early_stopping"])
    except (RuntimeError, ValueError, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[-1].strip()
        raise ConfigError(
            f"resume={folder}: {runs.LAST} does not fit this model ({first})"
        ) from None
    if ckpt["epoch"] > 0:
        # At epoch 0 training restarts from its beginning, where setup has put the RNG
        # already; the saved state may be past layers.csv's epoch-0 pass (dropout draws).
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    restore_generator(parts.generator, ckpt["rng"]["batches"], ckpt["epoch"])
    state.epoch, state.step, state.wall_s = ckpt["epoch"], ckpt["step"], ckpt["wall_s"]
    state.checkpoint_epoch = ckpt["epoch"]
    state.update = _update_of(ckpt.get("update"), parts.model)
    state.best_model = ckpt.get("best_model", {})
    best_file = runs.best_checkpoint(folder)
    if state.best_model and best_file.is_file():
        best = load_checkpoint(best_file, device, root=folder)
        if best["early_stopping"]["best_epoch"] == ckpt["early_stopping"]["best_epoch"]:
            state.best_optimizer = best["optimizer"]  # the same best epoch's optimizer
    for stale in [*folder.glob(".*.tmp"), *(folder / runs.CHECKPOINTS).glob(".*.tmp")]:
        try:
            stale.unlink(missing_ok=True)  # left by a kill mid-write (a link: the link only)
        except OSError:
            pass  # a folder of that name: not ours to remove
    runs.truncate_csv(folder / runs.METRICS, state.epoch)
    # layers.csv's epoch-0 rows are written again when training restarts at epoch 0
    runs.truncate_csv(folder / runs.LAYERS, state.epoch if state.epoch else -1)


def _update_of(saved: Any, model: torch.nn.Module) -> torch.Tensor | None:
    """last.pt's last change of the weights if it fits the model: None in a checkpoint from
    before update_cos, or one that was altered (its first epoch then has no cosine)."""
    n = sum(p.numel() for p in model.parameters())
    fits = isinstance(saved, torch.Tensor) and saved.is_floating_point()
    return saved if fits and saved.shape == (n,) else None


def restore_generator(generator: torch.Generator, saved: torch.Tensor, epoch: int) -> None:
    """The batch order's RNG as saved; from a fresh seed if the run moved to another device type."""
    try:
        generator.set_state(saved.cpu())  # get_state() gives a CPU tensor for every device
    except RuntimeError:  # CPU and CUDA generators keep different states
        generator.manual_seed(generator.initial_seed() + epoch)
        print(
            "dlrun: warning: resumed on another kind of device: the batch order from here differs"
        )
