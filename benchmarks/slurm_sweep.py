"""A 4-job sweep through hydra/launcher=slurm against the basic launcher, wall time end to end.

    eval "$(tests/slurm/cluster.sh env)"   # after tests/slurm/cluster.sh up
    python benchmarks/slurm_sweep.py [--repeats 3] [overrides...]

Runs `dlrun train -m optimizer=sgd,adam seed=0,1 trainer.epochs=2` (no SLURM
overrides typed) as a user would, alternating the basic launcher and
hydra/launcher=slurm, each into a fresh sweep folder under a temporary
directory, and prints every time, the medians and their ratio. The SLURM time
covers sinfo's pre-check, sbatch, the jobs' start-up (a fresh Python importing
torch per job), training, and the driver noticing the results.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

SWEEP = ["optimizer=sgd,adam", "seed=0,1", "trainer.epochs=2"]


def once(cwd: str, launcher: list[str], overrides: list[str]) -> float:
    command = [sys.executable, "-m", "dlrun", "train", "-m", *launcher, *SWEEP, *overrides]
    t0 = time.perf_counter()
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{out.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not os.environ.get("SLURM_CONF"):
        sys.exit('SLURM_CONF is unset: eval "$(tests/slurm/cluster.sh env)"')
    times: dict[str, list[float]] = {"basic": [], "slurm": []}
    with tempfile.TemporaryDirectory(dir=".") as cwd:
        for _ in range(args.repeats):
            times["basic"].append(once(cwd, [], args.overrides))
            times["slurm"].append(once(cwd, ["hydra/launcher=slurm"], args.overrides))
    print(f"{platform.node()}, {os.cpu_count()} CPUs, {args.repeats} alternating runs")
    for name, values in times.items():
        print(
            f"{name:6s} "
            + " ".join(f"{t:6.1f}" for t in values)
            + f"  median {statistics.median(values):.1f} s"
        )
    ratio = statistics.median(times["slurm"]) / statistics.median(times["basic"])
    print(f"slurm / basic: {ratio:.2f}")


if __name__ == "__main__":
    main()
