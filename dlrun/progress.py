"""The live progress bar and the end-of-run table (rich)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

console = Console()


class Progress:
    """Epoch bar with the latest train/val numbers; a no-op when disabled."""

    def __init__(self, epochs: int, enabled: bool = True, start: int = 0):
        self.enabled = enabled
        # Fixed, short columns first so the numbers fit an 80-column log file too.
        self.bar = RichProgress(
            TextColumn("[bold]epoch"),
            MofNCompleteColumn(),
            BarColumn(bar_width=12),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.bar.add_task("train", total=epochs, completed=start, info="")

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, row: dict[str, Any], note: str = "") -> None:
        if not self.enabled:
            return
        info = "  ".join(
            f"{split} "
            + " ".join(
                f"{k[len(split) + 1 :]} {row[k]:.3g}" for k in row if k.startswith(split + "_")
            )
            for split in ("train", "val")
        ) + (f"  [red]{note}" if note else "")
        self.bar.update(self.task, completed=row["epoch"], info=info)


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    table = Table(title=f"{summary.get('name', 'run')}: {summary['status']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    keys = ["best_epoch", "epochs_run"]
    keys += [k for k in summary if k.startswith(("train_", "val_", "test_", "best_val"))]
    keys += ["n_params", "wall_s", "device"]
    for key in dict.fromkeys(keys):
        value = summary.get(key)
        if value is None:
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("run folder", str(run_dir))
    console.print(table)
