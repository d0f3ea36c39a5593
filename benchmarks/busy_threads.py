"""Threads on a busy machine: `dlrun train` with no thread setting against `trainer.threads=1`.

One busy process (a Python loop: one core always runnable) shares the machine
with each run. Three sides, each a whole `dlrun train` process of the default
job (early stopping off, so every run does the same work), alternating so that
drift in the machine's load hits every side, median of --repeats:

  dlrun's choice     no thread setting: dlrun picks from the CPUs and the load average
  trainer.threads=1  one thread, the setting that fits one free core
  one per CPU        trainer.threads=<CPUs>: torch's own default, what runs got before
                     (with --every-cpu only: on a loaded machine it takes many times longer)

The busy process runs --warmup seconds before the first run, since the
1-minute load average takes about a minute to see it. Each run's thread count
and reason are read back from its summary.json, with the load average at its
start. The target: dlrun's choice within 1.2x of trainer.threads=1.

    python benchmarks/busy_threads.py [--epochs 20] [--repeats 5] [--warmup 60] [--busy 1]
        [--every-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu_model import cpu_model  # benchmarks/cpu_model.py (scripts run from this folder)

BUSY_LOOP = "while True: pass"


def load() -> float:
    return os.getloadavg()[0]


def run(cmd: list[str], cwd: Path) -> tuple[float, dict]:
    """Seconds the whole process took, and the summary.json of the run it made."""
    before = set(cwd.glob("outputs/runs/*/*/summary.json"))
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    (made,) = set(cwd.glob("outputs/runs/*/*/summary.json")) - before
    return seconds, json.loads(made.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of the busy loop first")
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside each run")
    parser.add_argument("--every-cpu", action="store_true", help="add trainer.threads=<CPUs>")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the busy loops end with us

    import torch

    cpus = os.cpu_count() or 1
    print(
        f"{platform.node()}: {cpu_model()}, {cpus} CPUs, torch {torch.__version__}, "
        f"Python {platform.python_version()}; load average {load():.2f} before the busy loop"
    )
    dlrun = [sys.executable, "-m", "dlrun", "train", "trainer.progress=false"]
    dlrun += [f"trainer.epochs={args.epochs}", "trainer.early_stopping.patience=null"]
    sides = {
        "dlrun's choice": dlrun,
        "trainer.threads=1": [*dlrun, "trainer.threads=1"],
    }
    if args.every_cpu:
        sides[f"one per CPU ({cpus})"] = [*dlrun, f"trainer.threads={cpus}"]
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            run([*dlrun, "trainer.epochs=1"], cwd)  # the data cache, compiled bytecode
            time.sleep(max(0.0, args.warmup))
            times: dict[str, list[float]] = {side: [] for side in sides}
            for repeat in range(args.repeats):
                for side, cmd in sides.items():
                    at = load()
                    seconds, summary = run(cmd, cwd)
                    times[side].append(seconds)
                    print(
                        f"  {repeat + 1}/{args.repeats} {side:<18} {seconds:6.2f} s  "
                        f"load {at:5.2f}  {summary['threads']} thread(s): "
                        f"{summary['threads_reason']}",
                        flush=True,
                    )
    finally:
        for process in busy:
            process.kill()
    medians = {side: statistics.median(values) for side, values in times.items()}
    print(f"\n{args.busy} busy process(es), median of {args.repeats}, whole processes")
    for side, value in medians.items():
        spread = f"{min(times[side]):.2f}-{max(times[side]):.2f}"
        print(f"  {side:<18} {value:7.2f} s   (range {spread})")
    first, one, *every = medians.values()
    print(f"  dlrun's choice / trainer.threads=1: {first / one:.3f} (target: at most 1.2)")
    if every:
        print(f"  one per CPU / trainer.threads=1:    {every[0] / one:.3f}")
    print(f"load average {load():.2f} at the end")


if __name__ == "__main__":
    main()
