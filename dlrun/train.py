"""The epoch loop: `fit` trains, evaluates, logs and early-stops; `evaluate` measures a split.

The setup of a run (data, model, optimizer, the run folder) is dlrun.runner's;
this module is the loop alone. Every per-step number stays on the device and
the loop syncs with the host once per epoch, so the GPU never waits on Python.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from dlrun import runs, speed
from dlrun.checkpoints import Parts, Snapshot, State, checkpoint, save_checkpoints
from dlrun.data import Dataset, batches
from dlrun.diagnostics import layer_rows, layer_table
from dlrun.progress import Progress

CHECKPOINT_EVERY_S = 60  # seconds between resumable checkpoints during a run
LAYER_BATCH = 256  # training samples on which layers.csv measures activations


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

    @property
    def best_value(self) -> float | None:
        """The best monitored value in its own sign, None before any finite one."""
        return self.sign * self.best if math.isfinite(self.best) else None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    batch_size: int,
    precision: str = "32",
):
    """(mean loss, accuracy or RMSE) as device tensors: no host sync here.

    `model` may be torch.compile's form of the module; `x` may stay on the host
    (a data set too large for the device), `y` is on the device.
    """
    model.eval()
    loss_sum = torch.zeros((), device=y.device)
    score = torch.zeros((), device=y.device)
    for start in range(0, len(y), batch_size):
        with speed.autocast(y.device, precision):
            out = model(speed.to_device(x[start : start + batch_size], y.device)).float()
        yb = y[start : start + batch_size]
        if task == "classification":
            loss_sum += F.cross_entropy(out, yb, reduction="sum")
            score += (out.argmax(1) == yb).sum()
        else:
            loss_sum += F.mse_loss(out, yb, reduction="sum") / yb.shape[1]
    model.train()
    loss = loss_sum / len(y)
    return loss, (score / len(y) if task == "classification" else loss.sqrt())


def fit(cfg, data: Dataset, parts: Parts, state: State, metrics, layers, run_dir: Path) -> None:
    """The epoch loop: train, evaluate, log, early-stop; `state.status` says how it ended."""
    tcfg = cfg.trainer
    model, optimizer, loss_fn = parts.model, parts.optimizer, parts.loss_fn
    forward = model if parts.forward is None else parts.forward
    train, val = data.train, data.val
    device = train.y.device
    streamed = train.x.device != device  # data too large for the device: batches move per step
    classification = data.task == "classification"
    score = runs.score_name(data.task)
    fixed_batch = speed.to_device(train.x[:LAYER_BATCH], device)  # layers.csv's batch, every epoch
    if layers is not None and state.epoch == 0:
        _initial_gradients(model, fixed_batch, train.y[:LAYER_BATCH], loss_fn)
        names, table = layer_table(model, fixed_batch)
        layers.write(layer_rows(names, table.tolist(), epoch=0))
        model.zero_grad(set_to_none=True)
    # Per-step numbers go into device buffers, read in the epoch's one host sync.
    steps_per_epoch = math.ceil(len(train) / tcfg.batch_size)
    weights = torch.full((steps_per_epoch,), tcfg.batch_size / len(train), device=device)
    weights[-1] = (len(train) - tcfg.batch_size * (steps_per_epoch - 1)) / len(train)
    step_losses = torch.zeros(steps_per_epoch, device=device)
    predictions = torch.zeros_like(train.y) if classification else None
    best = Snapshot(state)
    last_save = time.perf_counter()
    start = time.perf_counter() - state.wall_s
    if state.epoch >= tcfg.epochs:  # resumed with no epochs left
        state.status = runs.COMPLETED
    with Progress(tcfg.epochs, enabled=tcfg.progress, start=state.epoch) as progress:
        while state.status == runs.RUNNING:
            state.epoch += 1
            lr = optimizer.param_groups[0]["lr"]

            # forward, backward, update: one pass over a permutation of the training set
            model.train()
            for i, idx in enumerate(batches(len(train), tcfg.batch_size, device, parts.generator)):
                xb = speed.to_device(train.x[idx.cpu()], device) if streamed else train.x[idx]
                yb = train.y[idx]
                if parts.augment is not None:
                    xb = parts.augment(xb, parts.generator)
                with speed.autocast(device, tcfg.precision):
                    out = forward(xb)
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
            if parts.schedule is not None:
                parts.schedule.step()  # the rate of the next epoch

            # evaluate: every logged number in one host sync
            val_loss, val_score = evaluate(
                forward, val.x, val.y, data.task, tcfg.eval_batch_size, tcfg.precision
            )
            train_loss = step_losses @ weights
            train_score = (
                (predictions == train.y).float().mean() if classification else train_loss.sqrt()
            )
            numbers = [torch.stack([train_loss, train_score, val_loss, val_score])]
            if layers is not None:
                names, table = layer_table(model, fixed_batch)
                numbers.append(table.flatten())
            values = torch.cat(numbers).tolist()
            state.wall_s = time.perf_counter() - start

            # log
            tl, ts, vl, vs = values[:4]
            row = {"epoch": state.epoch, "step": state.step, "train_loss": tl, "val_loss": vl}
            row |= {f"train_{score}": ts, f"val_{score}": vs, "lr": lr}
            row["time_s"] = round(state.wall_s, 4)
            metrics.write(row)
            if layers is not None:
                table_rows = [values[j : j + 3] for j in range(4, len(values), 3)]
                layers.write(layer_rows(names, table_rows, state.epoch))

            # termination conditions, and the best weights so far
            state.status = verdict(row, tcfg, parts.stopper, state)
            if parts.stopper.improved and state.status != runs.DIVERGED:
                best.take(model, optimizer)
            if state.status == runs.COMPLETED and tcfg.target_loss is not None:
                # the mean loss before this epoch's updates (exact for full batches)
                state.steps_to_target = state.step - steps_per_epoch
            progress.update(row, note="diverged" if state.status == runs.DIVERGED else "")

            # a resumable checkpoint now and then
            if (
                state.status == runs.RUNNING
                and time.perf_counter() - last_save > CHECKPOINT_EVERY_S
            ):
                save_checkpoints(run_dir, checkpoint(parts, state, cfg), state)
                last_save = time.perf_counter()


def verdict(row: dict[str, Any], tcfg, stopper, state: State) -> str:
    """The run's status after this epoch: still running, or why it ends."""
    train_loss = row["train_loss"]
    if not math.isfinite(train_loss) or train_loss > tcfg.divergence_loss:
        return runs.DIVERGED
    stop = stopper.step(row[tcfg.early_stopping.monitor], state.epoch)
    if tcfg.target_loss is not None and train_loss <= tcfg.target_loss:
        return runs.COMPLETED
    if stop:
        return runs.EARLY_STOPPED
    return runs.COMPLETED if state.epoch >= tcfg.epochs else runs.RUNNING


def _initial_gradients(model, x, y, loss_fn) -> None:
    """Gradients on the fixed batch before any step (epoch 0 of layers.csv)."""
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
