"""One run: `run(cfg, run_dir)` builds everything the config names, trains, tests, writes the folder.

Read top to bottom: setup -> data -> model -> optimizer -> the run folder ->
the loop (dlrun.run.train.fit) -> test with the kept weights. Everything that can
reject the config runs before anything is written. This is the only call into
the library that the command line makes.
"""

from __future__ import annotations

import datetime
import math
import platform
import random
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from dlrun import placement
from dlrun.config import validate
from dlrun.config.claims import check_claims
from dlrun.data.tensors import Dataset, build_dataset
from dlrun.errors import ConfigError, WriteError
from dlrun.folders import runs
from dlrun.placement import resolve_device
from dlrun.run import refusal, runlog, signals, speed
from dlrun.run.checkpoints import Parts, State, checkpoint, resume, save_checkpoints
from dlrun.run.progress import print_summary
from dlrun.run.train import EarlyStopping, final_metrics, fit, planned_epochs
from dlrun.toolbox.diagnostics import LAYER_COLUMNS
from dlrun.toolbox.initializers import initialize
from dlrun.toolbox.models import build_model, count_parameters
from dlrun.toolbox.optim import build_optimizer, build_schedule
from dlrun.trackers.loggers import Sinks, open_trackers
from dlrun.trackers.loggers import check as check_loggers


def run(
    cfg: DictConfig, run_dir: Path, resume_overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train one model as `cfg` says, fill `run_dir` (the run-folder contract), return the summary.

    Every key is checked first (dlrun.config.validate); everything printed meanwhile,
    and every warning, also lands in run.log. With `cfg.resume`, training
    continues from that folder's last.pt (`resume_overrides`: what the resume
    changed, recorded in the summary). Ctrl-C or SIGTERM ends the run at the
    next epoch boundary and raises `Interrupted` once the folder is saved
    (dlrun.run.signals).
    """
    run_dir, t0 = Path(run_dir), time.perf_counter()
    validate.check(cfg)
    with runlog.capture() as log, signals.handled():
        try:
            built = setup(cfg)
        except (ConfigError, WriteError):
            raise
        except Exception as e:  # set-up errors are bad input: one line, no folder (exit 2)
            raise refusal.refused(e, cfg) from None
        with runs.exclusive(run_dir):  # one process per run folder
            return train_in_folder(
                cfg, run_dir, *built, log=log, t0=t0, resume_overrides=resume_overrides
            )


def train_in_folder(
    cfg, run_dir, parts, data, device, transfer_report, *, log, t0, resume_overrides
) -> dict[str, Any]:
    """The run folder, the loop, the test: `run` once the config is known to be usable."""
    state, previous = State(), {}
    if cfg.resume:
        resume(Path(cfg.resume), parts, state, device)
        previous = runs.read_summary(Path(cfg.resume)) or {}
        transfer_report = previous.get("transfer", transfer_report)

    # --- the run folder (a resumed run keeps its config.yaml as it started)
    log.open(run_dir / runs.RUN_LOG)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if not (cfg.resume and (run_dir / runs.CONFIG).is_file()):
        runs.atomic_write_text(run_dir / runs.CONFIG, OmegaConf.to_yaml(resolved))
    trackers = open_trackers(cfg, run_dir, runs.flatten(resolved), state.epoch)
    monitor = cfg.trainer.early_stopping.monitor
    base = summary_base(cfg, data, parts.model, device, run_dir)
    if transfer_report is not None:
        base["transfer"] = transfer_report
    for tracker in trackers:
        base |= tracker.fields()
    if cfg.resume:
        base["resumes"] = resume_history(previous, state, resume_overrides)
    runs.write_json(run_dir / runs.SUMMARY, {"status": runs.RUNNING, **base})
    steps_per_epoch = math.ceil(len(data.train) / cfg.trainer.batch_size)
    model_name = cfg.model.get("_target_") or cfg.model.name
    budget = f"{cfg.trainer.steps} steps" if cfg.trainer.steps else f"{cfg.trainer.epochs} epochs"
    # a sweep job shows where it runs and, at the end, one line; the details are in run.log
    say = print if runlog.job_number() is None else runlog.log_only
    say(
        f"dlrun: {model_name} with {base['n_params']:,} parameters on {device}; "
        f"{data.describe()}; {steps_per_epoch} steps/epoch, up to {budget}"
    )
    say(f"dlrun: {placement.threads_in_use().describe()}")
    print(f"dlrun: run folder {run_dir}")

    # --- train: checkpoints only at epoch boundaries, so resuming is exact
    append = bool(cfg.resume)
    # each epoch's row: metrics.csv, then any tracker (logger=tensorboard|mlflow)
    csv_log = runs.CsvLog(run_dir / runs.METRICS, runs.metric_columns(data.task), append=append)
    metrics = Sinks(csv_log, trackers)
    layers = (
        runs.CsvLog(run_dir / runs.LAYERS, LAYER_COLUMNS, append=append)
        if cfg.trainer.layer_stats
        else None
    )

    def stop_early(status: str, **why: Any) -> None:
        """The summary of a run that ends before its test; a full disk must not hide the error."""
        state.status = status
        summary = {"status": status, **progress_fields(parts.stopper, state, monitor), **base}
        summary |= {"checkpoint_epoch": state.checkpoint_epoch, **why}
        try:
            runs.write_json(run_dir / runs.SUMMARY, summary, in_place_when_full=True)
        except WriteError:
            pass
        metrics.finish(summary)

    try:
        try:
            fit(cfg, data, parts, state, metrics, layers, run_dir)
        finally:
            metrics.close()
            if layers is not None:
                layers.close()
        save_checkpoints(run_dir, checkpoint(parts, state, cfg), state)
    except KeyboardInterrupt as e:  # a second signal: last.pt stays at the last boundary saved
        stop_early(runs.INTERRUPTED, signal=signal_name(e))
        raise
    except Exception as e:
        error = str(e) if isinstance(e, WriteError) else f"{type(e).__name__}: {e}"
        stop_early(runs.FAILED, error=" ".join(error.split()))
        raise
    if state.status == runs.INTERRUPTED:
        stop_early(runs.INTERRUPTED, signal=signals.requested())
        raise signals.interrupted(
            f"{signals.requested()}: stopped after epoch {state.epoch}; "
            f"continue with: dlrun train resume={shlex.quote(str(run_dir))}"
        )

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
    metrics.finish(summary)
    print_summary(summary, run_dir, table=cfg.trainer.progress)
    if signals.requested():  # the signal came during the last epoch or the test: all is saved
        raise signals.interrupted(f"{signals.requested()}: the run had finished; nothing lost")
    return summary


def resume_history(previous: dict, state: State, overrides: dict | None) -> list[dict[str, Any]]:
    """The summary's `resumes`: every earlier resume, and this one."""
    history = previous.get("resumes")
    history = list(history) if isinstance(history, list) else []
    at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    record = {"at": at, "host": platform.node(), "from_epoch": state.epoch}
    return [*history, {**record, "overrides": dict(overrides or {})}]


def signal_name(e: BaseException) -> str:
    return getattr(e, "signal_name", None) or signals.requested() or "SIGINT"


def setup(cfg: DictConfig) -> tuple[Parts, Dataset, torch.device, dict | None]:
    """Seed, device, data, model, initialisation, transfer, optimizer, schedule, early stopping."""
    seed_everything(cfg.seed, cfg.trainer.deterministic)
    device = resolve_device(cfg.device.name)
    check_loggers(cfg)  # a missing tracker library stops the run before anything is written
    check_claims(cfg)
    speed.configure(device, cfg.trainer)
    # torch's default (one thread per core) thrashes a machine that others already
    # keep busy: two runs sharing a core slow each other down many times over
    placement.apply_threads(placement.choose_threads(cfg.trainer.threads, runlog.job_threads()))
    data = build_dataset(cfg.data, cfg.seed, device)
    model = build_model(cfg.model, data.input_shape, data.n_out)
    initialize(model, cfg.init, cfg.model.get("activation"))
    transfer_report = None
    if cfg.transfer.source:
        from dlrun.toolbox.transfer import apply_transfer

        # a resumed run takes its weights from last.pt: the source need not be there any more
        transfer_report = apply_transfer(model, cfg.transfer, load=not cfg.resume)
    model.to(device)
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg.optimizer)
    schedule = build_schedule(optimizer, cfg.schedule, planned_epochs(cfg.trainer, len(data.train)))
    augment = None
    if cfg.data.augment.name != "none":
        from dlrun.toolbox.augment import build_augment

        augment = build_augment(cfg.data.augment, data.input_shape)
    monitor = cfg.trainer.early_stopping.monitor
    if monitor not in runs.monitorable(data.task):
        raise ConfigError(
            f"trainer.early_stopping.monitor={monitor!r}: choose from {runs.monitorable(data.task)}"
        )
    mode = "max" if runs.higher_is_better(monitor) else "min"
    es = cfg.trainer.early_stopping
    if not len(data.val) and monitor.startswith("val_") and es.patience is not None:
        raise ConfigError(
            f"trainer.early_stopping.patience={es.patience} watches {monitor}, but "
            "data.val_fraction=0 leaves no validation split: set patience=null"
        )
    stopper = EarlyStopping(es.patience, es.min_delta, mode)
    loss_fn = F.cross_entropy if data.task == "classification" else F.mse_loss
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    forward = speed.forward_of(model, cfg.trainer)
    parts = Parts(model, optimizer, schedule, stopper, generator, augment, loss_fn, forward)
    return parts, data, device, transfer_report


def summary_base(cfg, data: Dataset, model: torch.nn.Module, device, run_dir: Path) -> dict:
    """The summary.json keys a run has in every status: what, where, and provenance."""
    threads = placement.threads_in_use()
    return {
        "name": cfg.name,
        "task": data.task,
        "device": str(device),
        "seed": cfg.seed,
        "n_params": count_parameters(model),
        "monitor": cfg.trainer.early_stopping.monitor,
        "run_dir": str(Path(run_dir).resolve()),
        "threads": threads.n,
        "threads_reason": threads.reason,
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


@torch.no_grad()
def save_predictions(model, data: Dataset, run_dir: Path) -> None:
    """Predictions on the regression task's fixed grid, for the bias-variance report."""
    model.eval()
    x = torch.as_tensor(data.extras["x_grid_std"], device=data.train.x.device)
    arrays = {
        "x": data.extras["x_grid"],
        "y_pred": model(x).cpu().numpy(),
        "f_true": data.extras["f_grid"],
        "noise_std": data.extras["noise_std"],
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a name
            np.savez(f, **arrays)

    runs.atomic_write(run_dir / runs.PREDICTIONS, write)
