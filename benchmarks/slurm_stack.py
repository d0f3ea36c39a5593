"""Sixteen seeds on a SLURM cluster, one task per job against `hydra.launcher.stack=8`, whole sweeps.

    tests/slurm/cluster.sh up --nodes 3 && eval "$(tests/slurm/cluster.sh env)"
    python benchmarks/slurm_stack.py [--rounds 2] [--stack 8] [--seeds 16] [overrides...]

Runs `dlrun train -m hydra/launcher=slurm seed=0,...,15 trainer.epochs=5` as a
user would, alternating the same sweep without stacking (one SLURM task per
job, today's default) and with `hydra.launcher.stack=8`, each into a fresh
sweep folder, and prints every time, the medians and their ratio, with the
load average around each run (the machine may be shared). Each time covers
the driver's start, sinfo's check, sbatch, the tasks' start-up (a fresh
Python importing torch per task), training, and the driver collecting the
results. Each round also checks what the claim needs: the stacked sweep ran
in 16/8 = 2 tasks, and its 16 run folders equal the unstacked sweep's (the
solo runs): metrics.csv number by number, the same best and test metrics.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N:%c"], capture_output=True, text=True)
    import torch

    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({model}), torch {torch.__version__}; "
        f"SLURM nodes {' '.join(nodes.stdout.split())}"
    )


def once(cwd: Path, name: str, args: list[str]) -> tuple[float, str, tuple[float, float]]:
    command = [sys.executable, "-m", "dlrun", "train", "-m", "hydra/launcher=slurm", *args,
               f"hydra.sweep.dir={name}"]  # fmt: skip
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    return took, out.stdout, (load, os.getloadavg()[0])


def tasks(folder: Path) -> int:
    """SLURM array tasks the sweep ran: submitit's folders `<array>_<index>`."""
    return sum(1 for p in (folder / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_runs(stacked: Path, solo: Path) -> str:
    """'' when every run folder of `stacked` equals its solo run's, else what differs."""
    keys = ("status", "epochs_run", "best_epoch", "best_val_loss", "test_loss", "test_acc")
    names = sorted(p.name for p in solo.iterdir() if (p / "summary.json").exists())
    mine = sorted(p.name for p in stacked.iterdir() if (p / "summary.json").exists())
    if names != mine:
        return f"folders differ: {mine} against {names}"
    for name in names:
        a, b = rows(stacked / name / "metrics.csv"), rows(solo / name / "metrics.csv")
        if len(a) != len(b):
            return f"{name}: {len(a)} epochs against {len(b)}"
        for x, y in zip(a, b):
            for k in x.keys() - {"time_s"}:
                if abs(float(x[k]) - float(y[k])) > 1e-5 * max(1.0, abs(float(y[k]))):
                    return f"{name} epoch {x['epoch']}: {k} {x[k]} against {y[k]}"
        sa = json.loads((stacked / name / "summary.json").read_text())
        sb = json.loads((solo / name / "summary.json").read_text())
        for k in keys:
            if isinstance(sb.get(k), float):
                if abs(sa[k] - sb[k]) > 1e-5 * max(1.0, abs(sb[k])):
                    return f"{name}: {k} {sa[k]} against {sb[k]}"
            elif sa.get(k) != sb.get(k):
                return f"{name}: {k} {sa.get(k)} against {sb.get(k)}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stack", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not os.environ.get("SLURM_CONF"):
        sys.exit('SLURM_CONF is unset: eval "$(tests/slurm/cluster.sh env)"')
    seeds = "seed=" + ",".join(str(s) for s in range(args.seeds))
    sweep = [seeds, "trainer.epochs=5", *args.overrides]
    stack = f"hydra.launcher.stack={args.stack}"
    expected_tasks = -(-args.seeds // args.stack)
    times: dict[str, list[float]] = {"one job per task": [], stack: []}
    loads: list[float] = []
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        cwd = Path(tmp)
        for r in range(args.rounds):
            solo_s, _, load_a = once(cwd, f"solo{r}", sweep)
            stacked_s, _, load_b = once(cwd, f"stacked{r}", [*sweep, stack])
            times["one job per task"].append(solo_s)
            times[stack].append(stacked_s)
            loads += [*load_a, *load_b]
            n_solo, n_stacked = tasks(cwd / f"solo{r}"), tasks(cwd / f"stacked{r}")
            differs = same_runs(cwd / f"stacked{r}", cwd / f"solo{r}")
            print(
                f"round {r + 1}: one job per task {solo_s:.1f} s ({n_solo} tasks), "
                f"stacked {stacked_s:.1f} s ({n_stacked} tasks); load average "
                f"{min(loads[-4:]):.1f}-{max(loads[-4:]):.1f}; run folders "
                + ("equal" if not differs else f"DIFFER: {differs}"),
                flush=True,
            )
            if n_stacked != expected_tasks or differs:
                names = sorted(p.name for p in (cwd / f"stacked{r}" / ".submitit").iterdir())
                sys.exit(
                    f"the stacked sweep ran {n_stacked} tasks, expected {expected_tasks}: {names}"
                )
    for name, values in times.items():
        print(f"{name:18s} " + " ".join(f"{t:6.1f}" for t in values)
              + f"  median {statistics.median(values):.1f} s")  # fmt: skip
    ratio = statistics.median(times["one job per task"]) / statistics.median(times[stack])
    print(
        f"one job per task / stacked: {ratio:.2f}x; load average {min(loads):.1f}-{max(loads):.1f}"
    )


if __name__ == "__main__":
    main()
