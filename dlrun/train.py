"""The runner: `run(cfg, run_dir)` builds everything, then `fit` runs the epoch loop.

Read top to bottom: setup -> data -> model -> optimizer -> loop -> test. The
loop keeps every per-step number on the device and syncs with the host once
per epoch, so the GPU is never waiting on Python.
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

from dlrun import runs
from dlrun.checkpoints import Parts, Snapshot, State, checkpoint, resume, save_checkpoints
from dlrun.config import ConfigError
from dlrun.data import Dataset, batches, build_dataset
from dlrun.diagnostics import LAYER_COLUMNS, layer_rows, layer_table
from dlrun.initializers import initialize
from dlrun.models import build_model, count_parameters
from dlrun.optim import build_optimizer, build_schedule
from dlrun.progress import Progress, print_summary


class EarlyStopping:
    """Stop after `patience` epochs without an improvement larger than `min_delta`."""

    def __init__(self, patience: int | None, min_delta: float = 0.0, mode: str = "min"):
        self.patience, self.min_delta, self.sign = patience, min_delta, 1 if mode == "min" else -1
        self.best, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.improved = False

    def step(self, value: float, epoch: int) -> bool:
        """Record this epoch's value; True when training should stop."""
        score = self.sign * value
        self.improved = score < self.best - self.min_delta
        if self.improved:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = (
            state["best"],
            state["best_epoch"],
            state["bad_epochs"],
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is visible (try device=auto or cpu)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps but Apple's Metal backend is not available")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ConfigError(f"device={name!r}: choose from auto, cpu, cuda, mps")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def metric_name(task: str) -> str:
    return "acc" if task == "classification" else "rmse"


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, batch_size: int):
    """(mean loss, accuracy or RMSE) as device tensors: no host sync here."""
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    score = torch.zeros((), device=x.device)
    for start in range(0, len(y), batch_size):
        out = model(x[start : start + batch_size])
        yb = y[start : start + batch_size]
        if task == "classification":
            loss_sum += F.cross_entropy(out, yb, reduction="sum")
            score += (out.argmax(1) == yb).sum()
        else:
            loss_sum += F.mse_loss(out, yb, reduction="sum") / yb.shape[1]
    model.train()
    loss = loss_sum / len(y)
    return loss, (score / len(y) if task == "classification" else loss.sqrt())


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train one model as `cfg` says, fill `run_dir` (the run-folder contract), return the summary."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    # --- setup: everything that can reject the config runs before anything is written
    seed_everything(cfg.seed, cfg.trainer.deterministic)
    device = resolve_device(cfg.device.name)
    _check_trainer(cfg)
    if cfg.trainer.threads is not None:
        # Two runs sharing a core with torch's default threads slow each other
        # down many times over: one thread each is then faster.
        torch.set_num_threads(cfg.trainer.threads)
    data = build_dataset(cfg.data, cfg.seed, device)
    model = build_model(cfg.model, data.input_shape, data.n_out)
    initialize(model, cfg.init, cfg.model.activation)
    transfer_report = None
    if cfg.transfer.source:
        from dlrun.transfer import apply_transfer, ensure_source

        ensure_source(cfg, run)

        transfer_report = apply_transfer(model, cfg.transfer)
    model.to(device)
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg.optimizer)
    schedule = build_schedule(optimizer, cfg.schedule, cfg.trainer.epochs)
    augment = None
    if cfg.data.augment.name != "none":
        from dlrun.augment import build_augment

        augment = build_augment(cfg.data.augment, data.input_shape)
    monitor = cfg.trainer.early_stopping.monitor
    columns = metric_columns(data.task)
    if monitor not in columns[2:]:
        raise ConfigError(f"trainer.early_stopping.monitor={monitor!r}: choose from {columns[2:]}")
    mode = "max" if monitor.endswith("_acc") else "min"
    stopper = EarlyStopping(
        cfg.trainer.early_stopping.patience, cfg.trainer.early_stopping.min_delta, mode
    )
    loss_fn = F.cross_entropy if data.task == "classification" else F.mse_loss
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    parts = Parts(model, optimizer, schedule, stopper, generator, augment, loss_fn)
    state = State()
    if cfg.resume:
        resume(Path(cfg.resume), parts, state, device)

    # --- the run folder
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    base = {
        "name": cfg.name,
        "task": data.task,
        "device": str(device),
        "seed": cfg.seed,
        "n_params": count_parameters(model),
        "monitor": monitor,
        "run_dir": str(run_dir.resolve()),
        **runs.provenance(),
    }
    if transfer_report is not None:
        base["transfer"] = transfer_report
    runs.write_json(run_dir / "summary.json", {"status": "running", **base})
    steps_per_epoch = math.ceil(len(data.train) / cfg.trainer.batch_size)
    print(
        f"dlrun: {cfg.model.name} with {base['n_params']:,} parameters on {device}; "
        f"{data.describe()}; {steps_per_epoch} steps/epoch, up to {cfg.trainer.epochs} epochs"
    )
    print(f"dlrun: run folder {run_dir}")

    metrics = runs.CsvLog(run_dir / "metrics.csv", columns, append=bool(cfg.resume))
    layers = (
        runs.CsvLog(run_dir / "layers.csv", LAYER_COLUMNS, append=bool(cfg.resume))
        if cfg.trainer.layer_stats
        else None
    )
    try:
        fit(cfg, data, parts, state, metrics, layers, run_dir)
    except KeyboardInterrupt:
        state.status = "interrupted"
        raise
    except Exception as e:
        state.status = "failed"
        base["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        metrics.close()
        if layers is not None:
            layers.close()
        save_checkpoints(run_dir, checkpoint(parts, state, cfg), state)
        if state.status in ("interrupted", "failed"):
            runs.write_json(
                run_dir / "summary.json",
                {"status": state.status, **_partial(stopper, state, mode), **base},
            )

    # --- test once, with the best weights
    if cfg.trainer.early_stopping.restore_best and state.best_model:
        model.load_state_dict(state.best_model)
    summary = {"status": state.status, **_partial(stopper, state, mode), **base}
    for split_name in ("train", "val", "test"):
        split = getattr(data, split_name)
        loss, score = evaluate(model, split.x, split.y, data.task, cfg.trainer.eval_batch_size)
        summary[f"{split_name}_loss"], summary[f"{split_name}_{metric_name(data.task)}"] = (
            torch.stack([loss, score]).tolist()
        )
    summary["best_" + monitor] = summary.pop("best_monitor")
    summary["wall_s"] = round(state.wall_s + 0.0, 3)
    summary["total_s"] = round(time.perf_counter() - t0, 3)
    if data.task == "regression" and "x_grid_std" in data.extras:
        save_predictions(model, data, run_dir)
    runs.write_json(run_dir / "summary.json", summary)
    if cfg.trainer.progress:
        print_summary(summary, run_dir)
    return summary


def fit(cfg, data: Dataset, parts: Parts, state: State, metrics, layers, run_dir: Path) -> None:
    """The epoch loop: train, evaluate, log, early-stop, checkpoint now and then."""
    tcfg = cfg.trainer
    model, optimizer, augment, loss_fn = parts.model, parts.optimizer, parts.augment, parts.loss_fn
    train, val = data.train, data.val
    device = train.x.device
    classification = data.task == "classification"
    fixed_batch = train.x[:256]  # layers.csv is measured on the same batch every epoch
    if layers is not None and state.epoch == 0:
        _initial_gradients(model, fixed_batch, train.y[:256], loss_fn)
        names, table = layer_table(model, fixed_batch)
        layers.write(layer_rows(names, table.tolist(), epoch=0))
        model.zero_grad(set_to_none=True)
    # Per-step numbers go into buffers on the device: one small copy per step,
    # read with everything else in the epoch's single host sync.
    steps_per_epoch = math.ceil(len(train) / tcfg.batch_size)
    weights = torch.full((steps_per_epoch,), tcfg.batch_size / len(train), device=device)
    weights[-1] = (len(train) - tcfg.batch_size * (steps_per_epoch - 1)) / len(train)
    step_losses = torch.zeros(steps_per_epoch, device=device)
    predictions = torch.zeros_like(train.y) if classification else None
    best = Snapshot(state)
    last_save = time.perf_counter()
    start = time.perf_counter() - state.wall_s
    with Progress(tcfg.epochs, enabled=tcfg.progress, start=state.epoch) as progress:
        while state.epoch < tcfg.epochs:
            state.epoch += 1
            model.train()
            for i, idx in enumerate(batches(len(train), tcfg.batch_size, device, parts.generator)):
                xb, yb = train.x[idx], train.y[idx]
                if augment is not None:
                    xb = augment(xb, parts.generator)
                out = model(xb)
                loss = loss_fn(out, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if tcfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.max_grad_norm)
                optimizer.step()
                step_losses[i] = loss.detach()
                if classification:
                    predictions[idx] = out.detach().argmax(1)
            state.step += steps_per_epoch
            lr = optimizer.param_groups[0]["lr"]
            if parts.schedule is not None:
                parts.schedule.step()
            val_loss, val_score = evaluate(model, val.x, val.y, data.task, tcfg.eval_batch_size)
            train_loss = step_losses @ weights
            if classification:
                train_score = (predictions == train.y).float().mean()
            else:
                train_score = train_loss.sqrt()
            numbers = [torch.stack([train_loss, train_score, val_loss, val_score])]
            if layers is not None:
                names, table = layer_table(model, fixed_batch)
                numbers.append(table.flatten())
            # The one host sync of the epoch.
            values = torch.cat(numbers).tolist()
            tl, ts, vl, vs = values[:4]
            state.wall_s = time.perf_counter() - start
            suffix = "acc" if classification else "rmse"
            row = {
                "epoch": state.epoch,
                "step": state.step,
                "train_loss": tl,
                "val_loss": vl,
                "lr": lr,
                "time_s": round(state.wall_s, 4),
                f"train_{suffix}": ts,
                f"val_{suffix}": vs,
            }
            metrics.write(row)
            if layers is not None:
                table_rows = [values[j : j + 3] for j in range(4, len(values), 3)]
                layers.write(layer_rows(names, table_rows, state.epoch))
            if not math.isfinite(tl) or tl > tcfg.divergence_loss:
                state.status = "diverged"
                progress.update(row, note="diverged")
                break
            stop = parts.stopper.step(row[tcfg.early_stopping.monitor], state.epoch)
            if parts.stopper.improved:
                best.take(model, optimizer)
            progress.update(row)
            if tcfg.target_loss is not None and tl <= tcfg.target_loss:
                # tl is the mean loss before this epoch's updates (exact for full batches)
                state.steps_to_target = state.step - steps_per_epoch
                state.status = "completed"
                break
            if stop:
                state.status = "early_stopped"
                break
            if time.perf_counter() - last_save > 60:  # seconds between resumable checkpoints
                save_checkpoints(run_dir, checkpoint(parts, state, cfg), state)
                last_save = time.perf_counter()
        else:
            state.status = "completed"


def metric_columns(task: str) -> list[str]:
    s = metric_name(task)
    return ["epoch", "step", "train_loss", "val_loss", f"train_{s}", f"val_{s}", "lr", "time_s"]


def _initial_gradients(model, x, y, loss_fn) -> None:
    """Gradients on the fixed batch before any step (epoch 0 of layers.csv)."""
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()


def _partial(stopper: EarlyStopping, state: State, mode: str) -> dict[str, Any]:
    best = stopper.best if mode == "min" else -stopper.best
    return {
        "best_epoch": stopper.best_epoch or None,
        "best_monitor": best if math.isfinite(best) else None,
        "epochs_run": state.epoch,
        "steps": state.step,
        "wall_s": round(state.wall_s, 3),
        **({"steps_to_target": state.steps_to_target} if state.steps_to_target is not None else {}),
    }


def _check_trainer(cfg) -> None:
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


@torch.no_grad()
def save_predictions(model, data: Dataset, run_dir: Path) -> None:
    """Predictions on the regression task's fixed grid, for the bias-variance report."""
    model.eval()
    x = torch.as_tensor(data.extras["x_grid_std"], device=data.train.x.device)
    np.savez(
        run_dir / "predictions.npz",
        x=data.extras["x_grid"],
        y_pred=model(x).cpu().numpy(),
        f_true=data.extras["f_grid"],
        noise_std=data.extras["noise_std"],
    )
