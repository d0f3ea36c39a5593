"""A stack's run folders: each replica writes the run folder its run alone would write.

`train_stack` trains built replicas (dlrun.sweeps.replicas) as one stack
(dlrun.sweeps.replica_loop.fit_replicas) and gives every replica its own complete
run folder through the runner's own pieces: config.yaml, metrics.csv and
layers.csv appended and flushed each epoch, summary.json (`running` first,
then the final one with test metrics: runner.summary_base, progress_fields,
final_metrics), checkpoints/last.pt and best.pt (checkpoints.checkpoint,
save_checkpoints). A replica is finished, tested and written as soon as it
leaves the stack, so a sweep's index can show it while the others train on.

Times are the stack's clock: `wall_s`, `time_s` and `total_s` count from the
start of the stack, since the replicas share the machine (the memory rule that
caps a stack's size is dlrun.sweeps.replicas.stack_limit). No Hydra here: the launcher plugin
(hydra_plugins/dlrun_batched) calls this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlrun.folders import runs, safe
from dlrun.placement import threads_in_use
from dlrun.run import signals
from dlrun.run.checkpoints import Checkpointer, Snapshot, State, checkpoint, save_checkpoints
from dlrun.run.runner import progress_fields, resume_history, save_predictions, summary_base
from dlrun.run.train import final_metrics
from dlrun.sweeps.replica_loop import fit_replicas
from dlrun.sweeps.replicas import Replica
from dlrun.toolbox.diagnostics import LAYER_COLUMNS

Done = Callable[[int, dict[str, Any]], None]  # (index in the stack, final summary.json)


class Folder:
    """One replica's run folder, written as the solo runner writes it."""

    def __init__(self, replica: Replica, run_dir: Path, label: str, previous: dict | None = None):
        """`previous`: the summary.json of a replica resumed from its last.pt (None: a new run)."""
        self.replica, self.run_dir, self.label = replica, Path(run_dir), label
        cfg, data, parts = replica.cfg, replica.data, replica.parts
        self.run_dir.mkdir(parents=True, exist_ok=True)
        append = previous is not None  # a resumed run keeps its config.yaml and appends its rows
        if not append:
            yaml = OmegaConf.to_yaml(cfg, resolve=True)
            runs.atomic_write_text(self.run_dir / runs.CONFIG, yaml)
        self.log = safe.open_log(self.run_dir / runs.RUN_LOG, encoding="utf-8")
        device = data.train.y.device
        self.base = summary_base(cfg, data, parts.model, device, self.run_dir)
        if append:
            self.base["resumes"] = resume_history(previous, replica.state, {})
        runs.write_json(self.run_dir / runs.SUMMARY, {"status": runs.RUNNING, **self.base})
        columns = runs.metric_columns(data.task)
        self.metrics = runs.CsvLog(self.run_dir / runs.METRICS, columns, append=append)
        self.layers = (
            runs.CsvLog(self.run_dir / runs.LAYERS, LAYER_COLUMNS, append=append)
            if cfg.trainer.layer_stats
            else None
        )
        self.last = _EpochEnd(replica)  # what last.pt holds if training stops mid-epoch
        # last.pt after the first epoch, then every trainer.checkpoint_every_s, as a solo run
        self.saver = Checkpointer(self.run_dir, cfg.trainer.checkpoint_every_s)

    def epoch(self, row: dict[str, Any] | None, layers: list[dict[str, Any]]) -> None:
        """Log one epoch (row None: epoch 0, layers only) and remember it as the last complete."""
        if row is not None:
            self.metrics.write(row)
        if self.layers is not None and layers:
            self.layers.write(layers)
        if row is not None:
            self.last.take()
            if self.saver.due(self.replica.state):  # a kill -9 of the stack loses at most this
                self.saver.write(self._checkpoint, self.replica.state)

    def finish(self, started: float) -> dict[str, Any]:
        """The replica left the stack: checkpoints, test with the kept weights, final summary."""
        replica = self.replica
        state, parts, cfg = replica.state, replica.parts, replica.cfg
        if state.status not in runs.FINISHED:  # failed: rolled back like an interrupted one
            return self.stop(state.status, replica.error)
        self._close()
        save_checkpoints(self.run_dir, self._checkpoint(), state)
        if cfg.trainer.early_stopping.restore_best and state.best_model:
            parts.model.load_state_dict(state.best_model)
        summary = {"status": state.status, **self._progress(), **self.base}
        summary |= final_metrics(parts.model, replica.data, cfg.trainer.eval_batch_size)
        summary["wall_s"] = round(state.wall_s + 0.0, 3)
        summary["total_s"] = round(time.perf_counter() - started, 3)
        if replica.data.task == "regression" and "x_grid_std" in replica.data.extras:
            save_predictions(parts.model, replica.data, self.run_dir)
        runs.write_json(self.run_dir / runs.SUMMARY, summary)
        return summary

    def stop(self, status: str, error: str | None = None) -> dict[str, Any]:
        """End an unfinished replica as `status` (interrupted, failed) at its last complete epoch.

        The one stop path: Ctrl-C, an error, and (later) a signal handler all end here.
        """
        self._close()
        epoch = self.last.restore()
        for log in (runs.METRICS, runs.LAYERS):  # rows an interrupted epoch end wrote early
            runs.truncate_csv(self.run_dir / log, epoch)
        self.replica.state.status = status
        save_checkpoints(self.run_dir, self._checkpoint(), self.replica.state)
        summary = {"status": status, **self._progress(), **self.base}
        if error:
            summary["error"] = error
        runs.write_json(self.run_dir / runs.SUMMARY, summary)
        return summary

    def _progress(self) -> dict[str, Any]:
        r = self.replica
        return progress_fields(r.parts.stopper, r.state, r.cfg.trainer.early_stopping.monitor)

    def _checkpoint(self) -> dict:
        r = self.replica
        ckpt = checkpoint(r.parts, r.state, r.cfg)
        if r.dropout_generator.device.type == "cpu":
            # the stream this replica's dropout drew from: the solo run's global RNG
            ckpt["rng"]["torch"] = r.dropout_generator.get_state()
        return ckpt

    def note(self, line: str) -> None:
        """A line for this replica's run.log (the stack's lines are on the terminal)."""
        try:
            self.log.write(line + "\n")
            self.log.flush()
        except (OSError, ValueError):  # a full disk, or closed: the terminal still has it
            pass

    def _close(self) -> None:
        self.metrics.close()
        if self.layers is not None:
            self.layers.close()


class _EpochEnd:
    """A replica as it was at the end of its last complete epoch.

    Two sets of buffers, allocated once: each epoch is copied into the spare
    one, which then becomes current in a single assignment, so Ctrl-C in the
    middle of a copy still leaves a whole epoch to go back to.
    """

    def __init__(self, replica: Replica):
        self.replica = replica
        self.spare, self.current = _Point(), _Point()
        self.take()

    def take(self) -> None:
        r, point = self.replica, self.spare
        # Snapshot copies weights and optimizer state into its buffers (the best_* fields).
        Snapshot(point.buffers).take(r.parts.model, r.parts.optimizer)
        point.numbers = (r.state.epoch, r.state.step, r.state.wall_s, r.state.steps_to_target)
        point.schedule = None if r.parts.schedule is None else r.parts.schedule.state_dict()
        point.stopper = r.parts.stopper.state_dict()
        point.generators = (r.parts.generator.get_state(), r.dropout_generator.get_state())
        point.rows = (len(r.metrics), len(r.layers))
        self.spare, self.current = self.current, point

    def restore(self) -> int:
        """Go back to the last complete epoch; return it."""
        r, state, point = self.replica, self.replica.state, self.current
        r.parts.model.load_state_dict(point.buffers.best_model)
        r.parts.optimizer.load_state_dict(point.buffers.best_optimizer)
        if point.schedule is not None:
            r.parts.schedule.load_state_dict(point.schedule)
        r.parts.stopper.load_state_dict(point.stopper)
        r.parts.generator.set_state(point.generators[0])
        r.dropout_generator.set_state(point.generators[1])
        state.epoch, state.step, state.wall_s, state.steps_to_target = point.numbers
        del r.metrics[point.rows[0] :], r.layers[point.rows[1] :]
        return state.epoch


class _Point:
    def __init__(self) -> None:
        self.buffers = State()


def train_stack(replicas: list[Replica], run_dirs: list[Path], *args, **kwargs) -> None:
    """`_train_stack` holding every replica's folder lock (dlrun.folders.runs.exclusive), as a solo run
    holds its own: a resume or a second sweep cannot train into a folder the stack writes."""
    with ExitStack() as held:
        for run_dir in run_dirs:
            held.enter_context(runs.exclusive(run_dir))
        _train_stack(replicas, run_dirs, *args, **kwargs)


def _train_stack(
    replicas: list[Replica],
    run_dirs: list[Path],
    labels: list[str],
    on_done: Done,
    exact_dropout: bool = False,
    previous: list[dict | None] | None = None,
) -> None:
    """Train the replicas as one stack, each into its run folder; `on_done(i, summary)` as each ends.

    `exact_dropout`: dropout masks equal to the solo runs' (dlrun.sweeps.stacked.StackedNet).
    `previous`: per replica, the summary.json it resumes from (dlrun.sweeps.replicas.resume_replica).

    Ctrl-C: every unfinished replica is written as interrupted at its last
    complete epoch, then KeyboardInterrupt goes on. An error in the stacked
    step: every unfinished replica is written as failed with it.
    """
    started = time.perf_counter()
    previous = previous or [None] * len(replicas)
    folders = [Folder(*four) for four in zip(replicas, run_dirs, labels, previous)]
    index = {id(r): i for i, r in enumerate(replicas)}
    first = replicas[0]
    names = ", ".join(labels) if len(labels) <= 8 else f"{labels[0]} ... {labels[-1]}"
    line = (
        f"dlrun: {len(replicas)} jobs as one stack ({names}): {first.cfg.model.name} "
        f"with {folders[0].base['n_params']:,} parameters each on {folders[0].base['device']}; "
        f"{first.data.describe()}; {threads_in_use().describe()}"
    )
    if first.state.epoch:
        line += f"; resumed from epoch {first.state.epoch} (each its own last.pt)"
    print(line)
    for folder in folders:
        folder.note(f"{line}\ndlrun: run folder {folder.run_dir}")

    def on_epoch(replica: Replica, row, layers) -> None:
        folders[index[id(replica)]].epoch(row, layers)

    def on_finish(replica: Replica) -> None:
        i = index[id(replica)]
        try:
            summary = folders[i].finish(started)
        except Exception as e:  # its own folder (a full disk): this replica alone fails
            summary = _stop(folders[i], runs.FAILED, f"{type(e).__name__}: {e}")
        _say(folders[i], summary)
        on_done(i, summary)

    try:
        with signals.handled():  # SIGTERM as Ctrl-C: every replica ends at an epoch boundary
            fit_replicas(replicas, on_epoch, on_finish, exact_dropout)
    except KeyboardInterrupt:
        stop_unfinished(replicas, folders, runs.INTERRUPTED, None, on_done)
        raise
    except Exception as e:
        stop_unfinished(replicas, folders, runs.FAILED, f"{type(e).__name__}: {e}", on_done)


def stop_unfinished(
    replicas: list[Replica], folders: list[Folder], status: str, error: str | None, on_done: Done
) -> None:
    """Every replica still running ends as `status` at its last complete epoch."""
    for i, (replica, folder) in enumerate(zip(replicas, folders)):
        if replica.state.status == runs.RUNNING:
            summary = _stop(folder, status, error)
            _say(folder, summary)
            if status != runs.INTERRUPTED:
                on_done(i, summary)


def _stop(folder: Folder, status: str, error: str | None) -> dict[str, Any]:
    """folder.stop, or, where the folder cannot be written at all, the summary it would hold."""
    try:
        return folder.stop(status, error)
    except Exception as e:
        failed = f"{error}; then {type(e).__name__}: {e}" if error else f"{type(e).__name__}: {e}"
        return {
            "status": runs.FAILED,
            **folder.base,
            "epochs_run": folder.replica.state.epoch,
            "error": failed,
        }


def _say(folder: Folder, summary: dict[str, Any]) -> None:
    """The replica's last line: on the terminal and in its run.log, which it then closes."""
    numbers = [
        f"{k} {v:.4g}"
        for k, v in summary.items()
        if k.startswith(("best_val", "test_")) and isinstance(v, (int, float))
    ]
    error = f": {summary['error']}" if summary.get("error") else ""
    line = (
        f"dlrun: {folder.label} {summary['status']} after {summary['epochs_run']} epochs"
        f"{error}{'; ' if numbers else ''}{', '.join(numbers)} ({folder.run_dir})"
    )
    print(line)
    folder.note(line)
    folder.log.close()
