"""What a run shows while it trains: a live bar on a terminal, plain lines anywhere else.

On a terminal the epoch bar updates in place. Anywhere else (a file, nohup, a
SLURM log, a parallel sweep worker) each epoch is one plain line, flushed, so
the log reads as the run goes. run.log (dlrun.run.runlog) gets the plain line
either way. A single run ends with a table, a sweep job with one line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from dlrun.folders import runs
from dlrun.run import runlog

console = Console()  # writes to whatever sys.stdout is at the time: run.log's tee during a run


def fixed(value: float) -> str:
    """A number in a fixed width (7), so an epoch's line lines up with the one above."""
    if value != value or abs(value) >= 1e4:  # nan, or too large for 4 decimals in 7 places
        return f"{value:>7.3g}"
    return f"{value:>7.4f}"


def numbers(row: dict[str, Any]) -> str:
    """`train loss  1.2300 acc  0.5120  val loss ...`: an epoch's metrics.csv row, fixed width.

    A run with no validation split (data.val_fraction=0) records its val columns as
    nan: they are left out rather than printed as `val loss nan acc nan`.
    """
    parts = []
    for split in ("train", "val"):
        keys = [k for k in row if k.startswith(split + "_")]
        if split == "val" and all(row[k] != row[k] for k in keys):
            continue
        parts.append(f"{split} " + " ".join(f"{k[len(split) + 1 :]} {fixed(row[k])}" for k in keys))
    return "  ".join(parts)


def epoch_line(row: dict[str, Any], epochs: int, note: str = "") -> str:
    """One plain line per epoch, every field in a fixed width:
    `epoch   3/100  train loss  1.2300 ...  lr 1.00e-03    2.1 s`, then `note`."""
    width = len(str(epochs))
    line = (
        f"epoch {row['epoch']:>{width}}/{epochs}  {numbers(row)}  lr {row['lr']:.2e}"
        f"  {row['time_s']:>6.1f} s"
    )
    return line + (f"  {note}" if note else "")


def clock(seconds: float) -> str:
    """`42s`, `3m05s`, `2h04m`: a time remaining, short and of nearly fixed width."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def outlook(
    row: dict[str, Any], epochs: int, start: int, stopper: Any, monitor: str, eta: bool = True
) -> str:
    """What a user plans with: the best value so far, patience left, time remaining.

    The time remaining is the epochs left times the mean epoch of this session
    (early stopping may end the run sooner; a budget of steps counts as its epochs).
    """
    parts = []
    best = getattr(stopper, "best_value", None)
    if best is not None:
        parts.append(f"best {monitor} {fixed(best).strip()} @{stopper.best_epoch}")
    if getattr(stopper, "patience", None) is not None:
        parts.append(f"patience {stopper.patience - stopper.bad_epochs}/{stopper.patience}")
    done = row["epoch"] - start
    if eta and 0 < done and row["epoch"] < epochs:
        parts.append(f"eta {clock(row['time_s'] / row['epoch'] * (epochs - row['epoch']))}")
    return "  ".join(parts)


class Progress:
    """The epoch bar on a terminal, a flushed line per epoch elsewhere; silent when disabled."""

    def __init__(self, epochs: int, enabled: bool = True, start: int = 0):
        self.epochs, self.enabled, self.start = epochs, enabled, start
        terminal = Console(file=runlog.terminal())
        self.live = enabled and terminal.is_terminal and not runlog.parallel_job()
        self.bar = None
        if self.live:
            # Fixed, short columns first so the numbers fit an 80-column terminal.
            self.bar = RichProgress(
                TextColumn(f"[bold]{escape(runlog.prefix())}epoch"),  # `[job 3]` is no markup
                MofNCompleteColumn(),
                BarColumn(bar_width=12),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=terminal,
                transient=runlog.job_number() is not None,  # a sweep keeps one line per job
            )
            self.task = self.bar.add_task("train", total=epochs, completed=start, info="")
        self._restore = lambda: None
        self._epoch_start = self._shown = time.perf_counter()

    def tick(self, step: int, steps: int) -> None:
        """A step of the epoch ended: the bar moves within a long epoch (twice a second at
        most, and only once the epoch has taken a few seconds); nothing off a terminal."""
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self._epoch_start > 2.0 and now - self._shown > 0.5:
            self._shown = now
            done = self.bar.tasks[0].completed
            self.bar.update(self.task, completed=int(done) + step / steps)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
            self._restore = runlog.tee_again()  # prints during the bar still reach run.log
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self._restore()
            self.bar.__exit__(*exc)

    def update(
        self, row: dict[str, Any], note: str = "", stopper: Any = None, monitor: str = ""
    ) -> None:
        """An epoch ended: its numbers, then the best so far, patience left and time remaining."""
        ahead = outlook(row, self.epochs, self.start, stopper, monitor)
        line = epoch_line(row, self.epochs, "  ".join(t for t in (note, ahead) if t))
        self._epoch_start = time.perf_counter()
        if self.bar is not None:
            ahead = outlook(row, self.epochs, self.start, stopper, monitor, eta=False)
            info = numbers(row) + (f"  [red]{note}[/]" if note else "") + f"  {ahead}"
            self.bar.update(self.task, completed=row["epoch"], info=info)
            runlog.log_only(line)
        elif self.enabled:
            print(line, flush=True)
        else:
            runlog.log_only(line)


def job_line(summary: dict[str, Any], run_dir: Path) -> str:
    """A finished sweep job in one line: status, epochs, best monitored value, test score, time."""
    monitor = summary.get("monitor", "val_loss")
    best = summary.get(runs.best_key(monitor))
    test = f"test_{runs.score_name(summary.get('task', 'classification'))}"
    parts = [f"{summary['status']} after {summary.get('epochs_run')} epochs"]
    if best is not None:
        parts.append(f"best {monitor} {best:.4g} (epoch {summary.get('best_epoch')})")
    if summary.get(test) is not None:
        parts.append(f"{test} {summary[test]:.4g}")
    parts.append(f"{summary.get('wall_s', 0):.1f} s")
    return f"{', '.join(parts)}  {run_dir.name}"


def print_summary(summary: dict[str, Any], run_dir: Path, table: bool = True) -> None:
    """A sweep job: one line. A single run: the summary as a table, then its folder."""
    if runlog.job_number() is not None:
        print(job_line(summary, run_dir), flush=True)
        return
    if not table:
        return
    shown = Table(title=f"{summary.get('name', 'run')}: {summary['status']}", show_header=False)
    shown.add_column(style="bold")
    shown.add_column()
    keys = ["best_epoch", "epochs_run"]
    keys += [k for k in summary if k.startswith(("train_", "val_", "test_", "best_val"))]
    keys += ["n_params", "wall_s", "device"]
    for key in dict.fromkeys(keys):
        value = summary.get(key)
        if value is None:
            continue
        shown.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(shown)
    # below the table, not in a cell: a long path is never cut at 80 columns
    print(f"run folder: {run_dir}", flush=True)
