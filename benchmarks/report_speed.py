"""How long `dlrun report` takes on a 100-run sweep, start to finish, as a user runs it.

Builds synthetic run folders (tests/synthetic_runs.py: config.yaml, metrics.csv,
layers.csv, summary.json written as training writes them) for a sweep of
optimizer.lr x model.width x seed, then times the `dlrun report` command in a
fresh process (imports included) and prints the time and the machine.

    python benchmarks/report_speed.py [--runs 100] [--epochs 100] [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import pandas

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test fixtures
from synthetic_runs import classification_metrics, layer_rows, summary_from, write_run

RATES = [1e-4, 1e-3, 1e-2, 1e-1]
WIDTHS = [16, 32, 64, 128, 256]


def build_sweep(root: Path, runs: int, epochs: int) -> None:
    """`runs` run folders: every (lr, width) setting, seeds filling up the count."""
    settings = list(itertools.product(RATES, WIDTHS))
    for job in range(runs):
        lr, width = settings[job % len(settings)]
        seed = job // len(settings)
        quality = (
            0.3 * RATES.index(lr) / 3 + 0.2 * WIDTHS.index(width) / 4
        )  # later settings fit better
        metrics = classification_metrics(
            epochs,
            train_end=0.9 - 0.8 * quality,
            val_end=1.0 - 0.5 * quality,
            jitter=0.02,
            seed=job,
        )
        summary = summary_from(metrics, "completed", n_params=60 * width + width * width)
        overrides = {"optimizer.lr": lr, "model.width": width, "seed": seed}
        write_run(
            root / f"{job}_optimizer.lr={lr},model.width={width},seed={seed}",
            overrides,
            metrics,
            summary,
            layer_rows(epochs),
        )


def time_report(root: Path) -> float:
    """Seconds for `dlrun report ROOT` in a new process (what a user waits for)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dlrun", "report", str(root)], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; Python {platform.python_version()}, matplotlib {matplotlib.__version__}, pandas {pandas.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, help="build the sweep here and keep it (default: a temporary folder)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "sweep"
        start = time.perf_counter()
        build_sweep(root, args.runs, args.epochs)
        print(
            f"built {args.runs} run folders ({args.epochs} epochs each) in {time.perf_counter() - start:.1f} s"
        )
        times = [time_report(root) for _ in range(args.repeats)]
    spread = f" ± {statistics.stdev(times):.2f}" if len(times) > 1 else ""
    print(
        f"dlrun report on {args.runs} runs: {statistics.mean(times):.2f}{spread} s (mean of {len(times)}; min {min(times):.2f} s)"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
