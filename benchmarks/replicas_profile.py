"""Where the time of a stack goes, against the same jobs one after another: torch's profiler.

The epoch loops of --seeds jobs of the default job, in this process: each job
alone through `dlrun.run.runner.run`, then all of them as one stack
(`fit_replicas`), both under torch.profiler (CPU, self time per operator).
Operators are grouped: matrix products, the optimizer, dropout's random draws,
the loss, elementwise work and copies, and what remains (Python between
operators is the loop's wall time less the operators' self time). The shares
say what stacking can still save: only what is not matrix products or the
optimizer's own arithmetic, which eight jobs need eight times either way.

    python benchmarks/replicas_profile.py [--seeds 8] [--epochs 5] [--threads 1] [overrides...]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from cpu_model import cpu_model  # benchmarks/cpu_model.py (scripts run from this folder)
from torch.profiler import ProfilerActivity, profile

GROUPS = {  # operator name fragments -> group, first match wins
    "matrix products": ("addmm", "bmm", "baddbmm", "::mm", "matmul", "linear"),
    "optimizer": ("adam", "_foreach", "optimizer"),
    "dropout draws": ("bernoulli", "random_", "dropout"),
    "loss": ("cross_entropy", "nll_loss", "log_softmax", "mse_loss"),
    "elementwise and copies": (
        "relu",
        "threshold",
        "mul",
        "add",
        "div",
        "copy",
        "clone",
        "to",
        "ge",
        "where",
        "fill",
        "zero",
        "sum",
        "argmax",
        "index",
        "cat",
        "stack",
        "empty",
    ),
}


def group_of(name: str) -> str:
    lowered = name.lower()
    for group, fragments in GROUPS.items():
        if any(f in lowered for f in fragments):
            return group
    return "other operators"


def profiled(fn) -> tuple[float, dict[str, float]]:
    """Wall seconds of fn() and self CPU seconds per group of the operators it ran."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    groups: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") or "Optimizer" in event.key:
            group = group_of(event.key)
            groups[group] = groups.get(group, 0.0) + event.self_cpu_time_total / 1e6
    return wall, groups


def show(name: str, wall: float, groups: dict[str, float]) -> None:
    print(f"\n{name}: {wall:.2f} s of loop (profiler on)")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {group:<24} {seconds:7.2f} s  {seconds / wall:6.1%}")
    rest = wall - sum(groups.values())
    print(f"  {'python, between ops':<24} {rest:7.2f} s  {rest / wall:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dlrun.config.compose import compose
    from dlrun.run.runner import run
    from dlrun.sweeps.replica_loop import fit_replicas
    from dlrun.sweeps.replicas import build_replica

    common = [
        "device=cpu",
        f"trainer.epochs={args.epochs}",
        "trainer.progress=false",
        "trainer.early_stopping.patience=null",
        f"trainer.threads={args.threads}",
        *args.overrides,
    ]
    cfgs = [compose([*common, f"seed={seed}"]) for seed in range(args.seeds)]
    print(
        f"{platform.node()}: {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}; "
        f"{args.seeds} jobs x {args.epochs} epochs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run(compose([*common, "trainer.epochs=1"]), Path(tmp) / "warm")  # data cache, kernels
        walls: list[float] = []

        def solo() -> None:
            for i, cfg in enumerate(cfgs):
                walls.append(run(cfg, Path(tmp) / str(i))["wall_s"])

        solo_wall, solo_groups = profiled(solo)
    # the solo side's wall here includes set-up and test: scale the groups to the loops
    loops = sum(walls)
    show(f"{args.seeds} jobs one after another (loops {loops:.2f} s)", solo_wall, solo_groups)
    replicas = [build_replica(cfg) for cfg in cfgs]
    stack_wall, stack_groups = profiled(lambda: fit_replicas(replicas))
    show(f"{args.seeds} jobs as one stack", stack_wall, stack_groups)
    print(
        f"\nloops: one after another {loops:.2f} s, stack {stack_wall:.2f} s: "
        f"{loops / stack_wall:.2f}x (both under the profiler)"
    )


if __name__ == "__main__":
    main()
