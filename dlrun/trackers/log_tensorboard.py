"""logger=tensorboard: event files in the run folder, so `tensorboard --logdir outputs` shows them.

Each epoch's metrics.csv row becomes scalars against the epoch (`loss/train`,
`loss/val`, `acc/train`, `acc/val`, `lr`, `time_s`); at the end the summary's
numbers become `summary/<key>` scalars and the HParams tab gets one row per
run: every config key for a single run, the swept keys and the seed for a
sweep's job (so its columns are what the jobs differ in). The whole
flattened config is also a text summary, `config`.
Written with torch's SummaryWriter, which needs the `tensorboard` package.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from dlrun.folders import runs
from dlrun.trackers.numbers import shown

SKIPPED = {"epoch", "step"}  # the x axis, and a count that is not a curve
EVENTS = "events.out.tfevents.*"


def store(settings: Any, run_dir: Path) -> str:
    """Where the event files go: the run folder."""
    return str(run_dir)


def tag(column: str) -> str:
    """metrics.csv column -> TensorBoard tag: train_loss -> loss/train, so splits share a chart."""
    match = re.fullmatch(r"(train|val)_(\w+)", column)
    return f"{match.group(2)}/{match.group(1)}" if match else column


def hparam_keys(run_dir: Path, config: dict[str, Any]) -> list[str]:
    """The config keys of the HParams row: a sweep job's swept keys and seed, else all."""
    from dlrun.folders.sweep_index import swept

    sweep = runs.sweep_of(run_dir)
    keys = swept(sweep) if sweep is not None else []
    if not keys:
        return list(config)
    # a group (`optimizer`, `data/augment`) is the choice's name in the flat config
    flat = [k.replace("/", ".") for k in keys]
    flat = [k if k in config else f"{k}.name" for k in flat]
    return [k for k in dict.fromkeys([*flat, "seed"]) if k in config]


def hparam_value(value: Any) -> int | float | str | bool:
    """HParams take numbers, strings and booleans; null and anything else as text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "null" if value is None else str(value)


def quiet_writer_thread() -> None:
    """No traceback from SummaryWriter's background thread (a full disk, a read-only folder).

    The thread keeps its exception and the writer raises it at the next call,
    which dlrun.trackers.loggers.Sinks turns into one warning line naming the
    tracker and the cause; the run goes on with metrics.csv.
    """
    previous = threading.excepthook
    if getattr(previous, "dlrun_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not type(args.thread).__module__.startswith("tensorboard."):
            previous(args)

    hook.dlrun_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class Tracker:
    name = "tensorboard"

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        settings: Any,
        start_epoch: int,
        started: float | None = None,
    ):
        """`started`: when the run began (s since 1970) for a run copied later; None: now."""
        quiet_writer_thread()
        self.started = started
        # purge_step: a resumed run drops the events it logged after its checkpoint
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=start_epoch + 1)
        keys = hparam_keys(Path(run_dir), config)
        self.hparams = {key: hparam_value(config[key]) for key in keys}
        text = "\n".join(f"    {key}: {value}" for key, value in config.items())  # markdown code
        self.writer.add_text("config", text, start_epoch)
        self.epoch_now = start_epoch

    def fields(self) -> dict[str, Any]:
        return {}

    def epoch(self, row: dict[str, Any]) -> None:
        self.epoch_now = int(row["epoch"])
        when = None if self.started is None else self.started + float(row.get("time_s", 0.0))
        for column, value in row.items():
            if column not in SKIPPED:
                self.writer.add_scalar(tag(column), shown(value), self.epoch_now, walltime=when)
        self.writer.flush()  # visible in TensorBoard while the run goes on

    def finish(self, summary: dict[str, Any]) -> None:
        final = {f"summary/{key}": value for key, value in runs.summary_numbers(summary).items()}
        experiment, start, end = hparams(self.hparams, final)
        file_writer = self.writer._get_file_writer()
        for event in (experiment, start, end):
            file_writer.add_summary(event, self.epoch_now)
        for key, value in final.items():
            self.writer.add_scalar(key, value, self.epoch_now)
        self.writer.close()


def prepare_export(run_dir: Path, settings: Any) -> bool:
    """Exporting again replaces the folder's event files (same numbers, no duplicates)."""
    for path in Path(run_dir).glob(EVENTS):
        path.unlink()
    return True


def exported(count: int, paths: list[Path], settings: Any) -> str:
    where = " ".join(str(p) for p in paths)
    return f"dlrun: event files for {count} runs; view them with: tensorboard --logdir {where}"
