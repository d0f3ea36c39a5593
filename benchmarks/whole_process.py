"""Whole processes, as users pay for them: `dlrun train` against the same job written by hand and with Lightning.

Two comparisons, each timed as complete commands (interpreter start, imports,
data, training, files), alternating so that drift in the machine's load hits
every side, median of --repeats:

  start-up   `dlrun train trainer.epochs=1` / benchmarks/jobs/standalone.py --epochs 1
             / `python -c "import torch"` (the floor every PyTorch job pays)
  default    the default job for --epochs epochs without early stopping: dlrun /
             standalone.py / jobs/lightning_job.py (skipped when Lightning is missing)

All read the same MNIST-1D arrays from dlrun's cache file, run at torch's
default thread count (or --threads) and write their outputs under one
temporary folder.

    python benchmarks/whole_process.py [--epochs 20] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu_model import cpu_model  # benchmarks/cpu_model.py (scripts run from this folder)

HERE = Path(__file__).resolve().parent


ENV = dict(os.environ)


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return time.perf_counter() - start


def machine() -> str:
    import torch

    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}, "
        f"load average {load:.2f} at the start"
    )


def compare(name: str, commands: dict[str, list[str]], repeats: int, cwd: Path) -> dict[str, float]:
    for cmd in commands.values():  # warm-up: page cache, compiled bytecode, the data cache
        timed(cmd, cwd)
    times: dict[str, list[float]] = {key: [] for key in commands}
    for _ in range(repeats):
        for key, cmd in commands.items():
            times[key].append(timed(cmd, cwd))
    medians = {key: statistics.median(values) for key, values in times.items()}
    print(f"\n{name} (median of {repeats}, whole processes)")
    for key, value in medians.items():
        spread = f"{min(times[key]):.2f}-{max(times[key]):.2f}"
        print(f"  {key:<28} {value:7.2f} s   (range {spread})")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads of every process (OMP_NUM_THREADS); default: torch's own choice",
    )
    args = parser.parse_args()
    if args.threads:
        ENV["OMP_NUM_THREADS"] = str(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # this process's torch too

    from dlrun.config.compose import compose
    from dlrun.data.datasets import build_mnist1d, mnist1d_cache_file

    cfg = compose([])
    build_mnist1d(cfg.data)  # the cache file every side reads
    cache = str(mnist1d_cache_file(cfg.data))
    print(machine())
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        dlrun = [py, "-m", "dlrun", "train", "trainer.early_stopping.patience=null"]
        script = [py, str(HERE / "jobs" / "standalone.py"), "--cache", cache]
        start = compare(
            "start-up: one epoch",
            {
                "dlrun train (1 epoch)": [*dlrun, "trainer.epochs=1"],
                "standalone.py (1 epoch)": [*script, "--epochs", "1"],
                "python -c 'import torch'": [py, "-c", "import torch"],
            },
            args.repeats,
            cwd,
        )
        extra = start["dlrun train (1 epoch)"] - start["standalone.py (1 epoch)"]
        print(f"  dlrun - standalone: {extra:+.2f} s (target: at most +0.5 s)")
        jobs = {
            f"dlrun train ({args.epochs} epochs)": [*dlrun, f"trainer.epochs={args.epochs}"],
            f"standalone.py ({args.epochs} epochs)": [*script, "--epochs", str(args.epochs)],
        }
        if importlib.util.find_spec("lightning") is not None:
            lightning = [py, str(HERE / "jobs" / "lightning_job.py"), "--cache", cache]
            jobs[f"Lightning ({args.epochs} epochs)"] = [
                *lightning,
                "--epochs",
                str(args.epochs),
                "--out",
                str(cwd / "lightning"),
            ]
        else:
            print("(Lightning is not installed: `pip install lightning` adds its column)")
        full = compare(f"default job, {args.epochs} epochs", jobs, args.repeats, cwd)
        values = list(full.values())
        print(f"  dlrun / standalone: {values[0] / values[1]:.3f} (target: at most 1.05)")
        if len(values) > 2:
            print(f"  Lightning / dlrun:  {values[2] / values[0]:.3f} (target: at least 1.5)")


if __name__ == "__main__":
    main()
