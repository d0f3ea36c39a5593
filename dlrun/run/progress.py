"""What a run shows while it trains: a live bar on a terminal, plain lines anywhere else.

On a terminal the epoch bar updates in place. Anywhere else (a file, nohup, a
SLURM log, a parallel sweep worker) each epoch is one plain line, flushed, so
the log reads as the run goes. run.log (dlrun.run.runlog) gets the plain line
either way. A single run ends with a table, a sweep job with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from dlrun.folders import runs
from dlrun.run import runlog

console = Console()  # writes to whatever sys.stdout is at the time: run.log's tee during a run


def numbers(row: dict[str, Any]) -> str:
    """`train loss 1.23 acc 0.512  val loss 1.3 acc 0.498`: an epoch's metrics.csv row, short."""
    return "  ".join(
        f"{split} "
        + " ".join(f"{k[len(split) + 1 :]} {row[k]:.3g}" for k in row if k.startswith(split + "_"))
        for split in ("train", "val")
    )


def epoch_line(row: dict[str, Any], epochs: int, note: str = "") -> str:
    """One plain line per epoch: `epoch 3/100  train loss ...  val ...  lr 0.001  2.1 s`."""
    line = (
        f"epoch {row['epoch']}/{epochs}  {numbers(row)}  lr {row['lr']:.3g}  {row['time_s']:.1f} s"
    )
    return line + (f"  {note}" if note else "")


class Progress:
    """The epoch bar on a terminal, a flushed line per epoch elsewhere; silent when disabled."""

    def __init__(self, epochs: int, enabled: bool = True, start: int = 0):
        self.epochs, self.enabled = epochs, enabled
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
                TextColumn("{task.fields[info]}"),
                console=terminal,
                transient=runlog.job_number() is not None,  # a sweep keeps one line per job
            )
            self.task = self.bar.add_task("train", total=epochs, completed=start, info="")
        self._restore = lambda: None

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
            self._restore = runlog.tee_again()  # prints during the bar still reach run.log
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self._restore()
            self.bar.__exit__(*exc)

    def update(self, row: dict[str, Any], note: str = "") -> None:
        line = epoch_line(row, self.epochs, note)
        if self.bar is not None:
            info = numbers(row) + (f"  [red]{note}" if note else "")
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
