"""The epoch loop: `fit` trains, evaluates, logs and early-stops; `evaluate` measures a split.

The setup of a run (data, model, optimizer, the run folder) is dlrun.run.runner's;
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

from dlrun.data.tensors import Dataset, batches, to_device
from dlrun.folders import runs
from dlrun.run import signals, speed
from dlrun.run.checkpoints import Checkpointer, Parts, Snapshot, State
from dlrun.run.progress import Progress
from dlrun.toolbox.diagnostics import Turning, layer_rows, layer_table

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
        return self.patience_spent

    @property
    def patience_spent(self) -> bool:
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
            out = model(to_device(x[start : start + batch_size], y.device)).float()
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
    fixed_batch = to_device(train.x[:LAYER_BATCH], device)  # layers.csv's batch, every epoch
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
    turning = Turning(model, state.update)  # update_cos: the path's turn from epoch to epoch
    saver = Checkpointer(run_dir, tcfg.checkpoint_every_s)
    start = time.perf_counter() - state.wall_s
    if finished(tcfg, state):  # resumed with no epochs (or steps) left
        state.status = runs.COMPLETED
    elif parts.stopper.patience_spent:  # resumed after early stopping, patience unchanged
        state.status = runs.EARLY_STOPPED
    total = planned_epochs(tcfg, len(train))
    with Progress(total, enabled=tcfg.progress, start=state.epoch) as progress:
        while state.status == runs.RUNNING:
            if signals.requested():  # Ctrl-C or SIGTERM: stop here, at an epoch boundary
                state.status = runs.INTERRUPTED
                break
            lr = optimizer.param_groups[0]["lr"]

            # forward, backward, update: one pass over the training set (a step budget,
            # trainer.steps, may end the last pass early)
            model.train()
            order = batches(len(train), tcfg.batch_size, device, parts.generator, tcfg.shuffle)
            n = (
                steps_per_epoch
                if tcfg.steps is None
                else min(steps_per_epoch, tcfg.steps - state.step)
            )
            for i, idx in enumerate(order[:n]):
                xb = to_device(train.x[idx.cpu()], device) if streamed else train.x[idx]
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
                progress.tick(i + 1, n)  # the bar moves within a long epoch (no host sync)
            state.epoch, state.step = state.epoch + 1, state.step + n
            if parts.schedule is not None:
                parts.schedule.step()  # the rate of the next epoch

            # evaluate: every logged number in one host sync
            val_loss, val_score = evaluate(
                forward, val.x, val.y, data.task, tcfg.eval_batch_size, tcfg.precision
            )
            train_loss = step_losses[:n] @ weights[:n] / weights[:n].sum()
            seen = torch.cat(order[:n]) if n < steps_per_epoch else slice(None)
            train_score = (
                (predictions[seen] == train.y[seen]).float().mean()
                if classification
                else train_loss.sqrt()
            )
            turn = turning.step().to(train_loss.dtype)
            state.update = turning.last
            numbers = [torch.stack([train_loss, train_score, val_loss, val_score, turn])]
            if layers is not None:
                names, table = layer_table(model, fixed_batch)
                numbers.append(table.flatten())
            values = torch.cat(numbers).tolist()
            state.wall_s = time.perf_counter() - start

            # log
            tl, ts, vl, vs, turn = values[:5]
            row = {"epoch": state.epoch, "step": state.step, "train_loss": tl, "val_loss": vl}
            row |= {f"train_{score}": ts, f"val_{score}": vs, "lr": lr}
            row |= {"time_s": round(state.wall_s, 4), "update_cos": turn}
            metrics.write(row)
            if layers is not None:
                table_rows = [values[j : j + 3] for j in range(5, len(values), 3)]
                layers.write(layer_rows(names, table_rows, state.epoch))

            # termination conditions, and the best weights so far
            state.status = verdict(row, tcfg, parts.stopper, state)
            if parts.stopper.improved and state.status != runs.DIVERGED:
                best.take(model, optimizer)
            if state.status == runs.COMPLETED and tcfg.target_loss is not None:
                # the mean loss before this epoch's updates (exact for full batches)
                state.steps_to_target = state.step - n
            note = "diverged" if state.status == runs.DIVERGED else ""
            progress.update(row, note, parts.stopper, tcfg.early_stopping.monitor)

            # a resumable checkpoint now and then (the run's end saves one in any case)
            if state.status == runs.RUNNING and saver.due(state):
                saver.save(parts, state, cfg)


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
    return runs.COMPLETED if finished(tcfg, state) else runs.RUNNING


def finished(tcfg, state: State) -> bool:
    """The budget is spent: trainer.steps optimizer steps if set, else trainer.epochs epochs."""
    return state.step >= tcfg.steps if tcfg.steps is not None else state.epoch >= tcfg.epochs


def planned_epochs(tcfg, n_train: int) -> int:
    """Epochs the budget allows: trainer.epochs, or the epochs trainer.steps takes."""
    if tcfg.steps is None:
        return tcfg.epochs
    return math.ceil(tcfg.steps / math.ceil(n_train / tcfg.batch_size))


def _initial_gradients(model, x, y, loss_fn) -> None:
    """Gradients on the fixed batch before any step (epoch 0 of layers.csv)."""
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()


def final_metrics(model: torch.nn.Module, data: Dataset, batch_size: int) -> dict[str, float]:
    """Loss and accuracy (or RMSE) of every split, in eval mode: `test_acc`, `val_loss`..."""
    score = runs.score_name(data.task)
    numbers: dict[str, float] = {}
    for split_name in ("train", "val", "test"):
        split = getattr(data, split_name)
        if not len(split):
            continue  # data.val_fraction=0: no validation split
        loss, value = evaluate(model, split.x, split.y, data.task, batch_size)
        numbers[f"{split_name}_loss"], numbers[f"{split_name}_{score}"] = torch.stack(
            [loss, value]
        ).tolist()
    return numbers
