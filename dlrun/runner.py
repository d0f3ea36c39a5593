"""One run: `run(cfg, run_dir)` builds everything the config names, trains, tests, writes the folder.

Read top to bottom: setup -> data -> model -> optimizer -> the run folder ->
the loop (dlrun.train.fit) -> test with the kept weights. Everything that can
reject the config runs before anything is written. This is the only call into
the library that the command line makes.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from dlrun import runs, speed
from dlrun.checkpoints import Parts, State, checkpoint, resume, save_checkpoints
from dlrun.data import Dataset, build_dataset
from dlrun.diagnostics import LAYER_COLUMNS
from dlrun.errors import ConfigError
from dlrun.initializers import initialize
from dlrun.models import build_model, count_parameters
from dlrun.optim import build_optimizer, build_schedule
from dlrun.placement import resolve_device
from dlrun.progress import print_summary
from dlrun.train import EarlyStopping, evaluate, fit


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train one model as `cfg` says, fill `run_dir` (the run-folder contract), return the summary."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    parts, data, device, transfer_report = setup(cfg)
    state = State()
    if cfg.resume:
        resume(Path(cfg.resume), parts, state, device)

    # --- the run folder
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / runs.CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    monitor = cfg.trainer.early_stopping.monitor
    base = summary_base(cfg, data, parts.model, device, run_dir)
    if transfer_report is not None:
        base["transfer"] = transfer_report
    runs.write_json(run_dir / runs.SUMMARY, {"status": runs.RUNNING, **base})
    steps_per_epoch = math.ceil(len(data.train) / cfg.trainer.batch_size)
    print(
        f"dlrun: {cfg.model.name} with {base['n_params']:,} parameters on {device}; "
        f"{data.describe()}; {steps_per_epoch} steps/epoch, up to {cfg.trainer.epochs} epochs"
    )
    print(f"dlrun: run folder {run_dir}")

    # --- train
    append = bool(cfg.resume)
    metrics = runs.CsvLog(run_dir / runs.METRICS, runs.metric_columns(data.task), append=append)
    layers = (
        runs.CsvLog(run_dir / runs.LAYERS, LAYER_COLUMNS, append=append)
        if cfg.trainer.layer_stats
        else None
    )
    try:
        fit(cfg, data, parts, state, metrics, layers, run_dir)
    except KeyboardInterrupt:
        state.status = runs.INTERRUPTED
        raise
    except Exception as e:
        state.status = runs.FAILED
        base["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        metrics.close()
        if layers is not None:
            layers.close()
        save_checkpoints(run_dir, checkpoint(parts, state, cfg), state)
        if state.status in (runs.INTERRUPTED, runs.FAILED):
            summary = {
                "status": state.status,
                **progress_fields(parts.stopper, state, monitor),
                **base,
            }
            runs.write_json(run_dir / runs.SUMMARY, summary)

    # --- test once, with the kept weights
    if cfg.trainer.early_stopping.restore_best and state.best_model:
        parts.model.load_state_dict(state.best_model)
    summary = {"status": state.status, **progress_fields(parts.stopper, state, monitor), **base}
    summary |= final_metrics(parts.model, data, cfg.trainer.eval_batch_size)
    summary["wall_s"] = round(state.wall_s + 0.0, 3)
    summary["total_s"] = round(time.perf_counter() - t0, 3)
    if data.task == "regression" and "x_grid_std" in data.extras:
        save_predictions(parts.model, data, run_dir)
    runs.write_json(run_dir / runs.SUMMARY, summary)
    if cfg.trainer.progress:
        print_summary(summary, run_dir)
    return summary


def setup(cfg: DictConfig) -> tuple[Parts, Dataset, torch.device, dict | None]:
    """Seed, device, data, model, initialisation, transfer, optimizer, schedule, early stopping."""
    seed_everything(cfg.seed, cfg.trainer.deterministic)
    device = resolve_device(cfg.device.name)
    check_trainer(cfg)
    speed.configure(device, cfg.trainer)
    if cfg.trainer.threads is not None:
        # Two runs sharing a core with torch's default threads slow each other
        # down many times over: one thread each is then faster.
        torch.set_num_threads(cfg.trainer.threads)
    data = build_dataset(cfg.data, cfg.seed, device)
    model = build_model(cfg.model, data.input_shape, data.n_out)
    initialize(model, cfg.init, cfg.model.activation)
    transfer_report = None
    if cfg.transfer.source:
        from dlrun.transfer import apply_transfer

        transfer_report = apply_transfer(model, cfg.transfer)
    model.to(device)
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg.optimizer)
    schedule = build_schedule(optimizer, cfg.schedule, cfg.trainer.epochs)
    augment = None
    if cfg.data.augment.name != "none":
        from dlrun.augment import build_augment

        augment = build_augment(cfg.data.augment, data.input_shape)
    monitor = cfg.trainer.early_stopping.monitor
    if monitor not in runs.monitorable(data.task):
        raise ConfigError(
            f"trainer.early_stopping.monitor={monitor!r}: choose from {runs.monitorable(data.task)}"
        )
    mode = "max" if runs.higher_is_better(monitor) else "min"
    es = cfg.trainer.early_stopping
    stopper = EarlyStopping(es.patience, es.min_delta, mode)
    loss_fn = F.cross_entropy if data.task == "classification" else F.mse_loss
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    forward = speed.forward_of(model, cfg.trainer)
    parts = Parts(model, optimizer, schedule, stopper, generator, augment, loss_fn, forward)
    return parts, data, device, transfer_report


def summary_base(cfg, data: Dataset, model: torch.nn.Module, device, run_dir: Path) -> dict:
    """The summary.json keys a run has in every status: what, where, and provenance."""
    return {
        "name": cfg.name,
        "task": data.task,
        "device": str(device),
        "seed": cfg.seed,
        "n_params": count_parameters(model),
        "monitor": cfg.trainer.early_stopping.monitor,
        "run_dir": str(Path(run_dir).resolve()),
        **runs.provenance(),
    }


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def check_trainer(cfg) -> None:
    t = cfg.trainer
    if t.threads is not None and t.threads < 1:
        raise ConfigError(
            f"trainer.threads={t.threads} must be at least 1 (or null: torch's default)"
        )
    if t.epochs < 1:
        raise ConfigError(f"trainer.epochs={t.epochs} must be at least 1")
    if t.batch_size < 1:
        raise ConfigError(f"trainer.batch_size={t.batch_size} must be at least 1")
    p = t.early_stopping.patience
    if p is not None and p < 1:
        raise ConfigError(f"trainer.early_stopping.patience={p} must be at least 1 (or null: off)")


def progress_fields(stopper: EarlyStopping, state: State, monitor: str) -> dict[str, Any]:
    """How far training went and the best monitored value: summary keys in every status."""
    fields = {
        "best_epoch": stopper.best_epoch or None,
        runs.best_key(monitor): stopper.best_value,
        "epochs_run": state.epoch,
        "steps": state.step,
        "wall_s": round(state.wall_s, 3),
    }
    if state.steps_to_target is not None:
        fields["steps_to_target"] = state.steps_to_target
    return fields


def final_metrics(model: torch.nn.Module, data: Dataset, batch_size: int) -> dict[str, float]:
    """Loss and accuracy (or RMSE) of every split, in eval mode: `test_acc`, `val_loss`..."""
    score = runs.score_name(data.task)
    numbers: dict[str, float] = {}
    for split_name in ("train", "val", "test"):
        split = getattr(data, split_name)
        loss, value = evaluate(model, split.x, split.y, data.task, batch_size)
        numbers[f"{split_name}_loss"], numbers[f"{split_name}_{score}"] = torch.stack(
            [loss, value]
        ).tolist()
    return numbers


@torch.no_grad()
def save_predictions(model, data: Dataset, run_dir: Path) -> None:
    """Predictions on the regression task's fixed grid, for the bias-variance report."""
    model.eval()
    x = torch.as_tensor(data.extras["x_grid_std"], device=data.train.x.device)
    np.savez(
        run_dir / runs.PREDICTIONS,
        x=data.extras["x_grid"],
        y_pred=model(x).cpu().numpy(),
        f_true=data.extras["f_grid"],
        noise_std=data.extras["noise_std"],
    )
