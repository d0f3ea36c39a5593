"""A sweep of seeds with `hydra/launcher=batched` against the same sweep with the basic launcher.

Both sides are the same `dlrun train -m seed=0,...,N-1` command line (the
default MLP, --epochs epochs, early stopping off so both run every epoch), run
as complete processes: interpreter start, imports, composing every job, data,
training, testing, every run folder and the sweep index. Runs alternate, so
drift in the machine's load hits both sides, and the median of --repeats is
reported with the load average around each run. Where each side's time goes
is read from its run folders: the training loops (`wall_s`; one shared loop for
a stack), the rest of each run (`total_s`: data, model, test, files), and
everything else (start-up, Hydra's composition and bookkeeping per job).

    python benchmarks/replicas_speed.py [--seeds 8] [--epochs 20] [--repeats 3]
        [--threads N] [--cpus 0,1] [--device cpu] [--parallel] [overrides...]
    python benchmarks/replicas_speed.py --device cuda --seeds 64      # the GPU target
    python benchmarks/replicas_speed.py --loops [...]                 # in one process

--loops times the epoch loops alone in one process: each seed through
`dlrun.run.runner.run` one after another against one `fit_replicas` stack, and a
stack's optimizer step two ways (each replica's fused torch.optim step on views
of the stacked gradients, as fit_replicas does, against one hand-written Adam
over the stacked tensors with a hyperparameter tensor per replica).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu_model import cpu_model  # benchmarks/cpu_model.py (scripts run from this folder)

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def machine(device: str) -> str:
    import torch

    cpu = cpu_model()
    gpu = f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    return (
        f"{platform.node()}: {cpu}, {len(os.sched_getaffinity(0))} CPUs{gpu}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}, device {device}"
    )


def load() -> float:
    return os.getloadavg()[0]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep(command: list[str], folder: Path) -> tuple[float, ...]:
    """(whole process, training loops, runs, load average, CPU seconds) of one sweep."""
    before, cpu = load(), cpu_seconds()
    start = time.perf_counter()
    out = subprocess.run(
        [*command, f"hydra.sweep.dir={folder}"], env=ENV, capture_output=True, text=True
    )
    whole = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{out.stderr[-3000:]}")
    summaries = [json.loads(p.read_text()) for p in folder.glob("*/summary.json")]
    assert all(s["status"] == "completed" for s in summaries), folder
    if "jobs as one stack" in out.stdout:  # one shared loop and clock per stack
        loops = max(s["wall_s"] for s in summaries)
        runs = max(s["total_s"] for s in summaries)
    else:
        loops = sum(s["wall_s"] for s in summaries)
        runs = sum(s["total_s"] for s in summaries)
    return whole, loops, runs, max(before, load()), cpu


def whole_sweeps(args: argparse.Namespace) -> None:
    overrides = [
        f"seed={','.join(str(s) for s in range(args.seeds))}",
        f"trainer.epochs={args.epochs}",
        "trainer.early_stopping.patience=null",
        "trainer.progress=false",
        f"device={args.device}",
        *args.overrides,
    ]
    command = [sys.executable, "-m", "dlrun", "train", "-m", *overrides]
    if args.cpus:
        command = ["taskset", "-c", args.cpus, *command]
    sides = {"basic": command, "batched": [*command, "hydra/launcher=batched"]}
    if args.parallel:  # joblib's processes, one per CPU: the other way to use the cores
        sides["parallel"] = [*command, "hydra/launcher=parallel"]
    print(machine(args.device))
    print(f"command: dlrun train -m {' '.join(overrides)} [hydra/launcher=batched]")
    print(f"load average at the start: {load():.2f} (on {os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in sides.items() if args.warmup else ():  # page cache, bytecode, data
            sweep(cmd, Path(tmp) / f"warm-{name}")
        times: dict[str, list[tuple[float, ...]]] = {name: [] for name in sides}
        for i in range(args.repeats):
            for name, cmd in sides.items():
                times[name].append(sweep(cmd, Path(tmp) / f"{name}-{i}"))
                whole, _, _, at, cpu = times[name][-1]
                print(
                    f"  {i + 1}/{args.repeats} {name:<8} {whole:7.2f} s  load {at:5.2f}  "
                    f"CPU time {cpu:.2f} s",
                    flush=True,
                )
    print(f"median of {args.repeats}, alternating:")
    medians, cpus = {}, {}
    for name, runs in times.items():
        whole, loops, folders, _, cpu = (statistics.median(x) for x in zip(*runs))
        loads = ", ".join(f"{r[3]:.1f}" for r in runs)
        medians[name], cpus[name] = whole, cpu
        where = (
            f"training loops {loops:.2f} s, rest of the runs {folders - loops:.2f} s, "
            f"start-up and Hydra {whole - folders:.2f} s"
            if name != "parallel"
            else f"training loops {loops:.2f} s added over the jobs, which overlap"
        )
        print(
            f"  {name:<8} whole sweep {whole:7.2f} s (range {min(r[0] for r in runs):.2f}-"
            f"{max(r[0] for r in runs):.2f}; load {loads}; CPU time {cpu:.2f} s): {where}"
        )
    print(
        f"  ratio basic / batched: {medians['basic'] / medians['batched']:.2f}x "
        f"(CPU time: {cpus['basic'] / cpus['batched']:.2f}x)"
    )
    if "parallel" in medians:
        print(
            f"  ratio basic / parallel: {medians['basic'] / medians['parallel']:.2f}x, "
            f"parallel / batched: {medians['parallel'] / medians['batched']:.2f}x"
        )


# --- --loops: the epoch loops alone, in this process -------------------------------


def loops(args: argparse.Namespace) -> None:
    import torch

    from dlrun.config.compose import compose
    from dlrun.placement import resolve_device
    from dlrun.run.runner import run
    from dlrun.sweeps.replica_loop import fit_replicas
    from dlrun.sweeps.replicas import build_replica

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    common = [
        f"device={args.device}",
        f"trainer.epochs={args.epochs}",
        "trainer.progress=false",
        "trainer.early_stopping.patience=null",
        *args.overrides,
    ]
    cfgs = [compose([*common, f"seed={seed}"]) for seed in range(args.seeds)]
    device = resolve_device(cfgs[0].device.name)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def solo(jobs) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            return sum(run(cfg, Path(tmp) / str(i))["wall_s"] for i, cfg in enumerate(jobs))

    def stacked(jobs) -> float:
        replicas = [build_replica(cfg) for cfg in jobs]
        sync()
        start = time.perf_counter()
        fit_replicas(replicas)
        sync()
        return time.perf_counter() - start

    warm = [compose([*common, "trainer.epochs=1", f"seed={s}"]) for s in range(2)]
    solo(warm), stacked(warm)
    solo_times, stack_times = [], []
    for _ in range(args.repeats):
        solo_times.append(solo(cfgs))
        stack_times.append(stacked(cfgs))
    s, b = statistics.median(solo_times), statistics.median(stack_times)
    per_replica, hand = optimizer_steps(cfgs)
    print(machine(args.device))
    print(f"load average {load():.2f}; {args.seeds} seeds, {args.epochs} epochs, in one process")
    print(f"  epoch loops one after another {s:.3f} s, as one stack {b:.3f} s: {s / b:.2f}x")
    print(
        f"  optimizer step of the stack: per-replica fused torch.optim {per_replica:.2f} ms, "
        f"hand-written stacked Adam {hand:.2f} ms ({hand / per_replica:.1f}x)"
    )


def optimizer_steps(cfgs, repeats: int = 20) -> tuple[float, float]:
    """Milliseconds per stack step: per-replica fused torch.optim vs hand-written stacked Adam."""
    import torch

    from dlrun.sweeps.replicas import build_replica
    from dlrun.sweeps.stacked import StackedNet

    replicas = [build_replica(cfg) for cfg in cfgs]
    device = replicas[0].data.train.y.device
    stack = StackedNet([r.parts.model for r in replicas], [r.dropout_generator for r in replicas])
    for p in stack.params.values():
        p.grad = torch.randn_like(p) * 1e-3
    R = len(replicas)
    lr = torch.tensor([c.optimizer.lr for c in cfgs], device=device)
    b1 = torch.tensor([c.optimizer.betas[0] for c in cfgs], device=device)
    b2 = torch.tensor([c.optimizer.betas[1] for c in cfgs], device=device)
    eps = torch.tensor([c.optimizer.eps for c in cfgs], device=device)
    t = torch.zeros(R, device=device)
    params = list(stack.params.values())
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def hand_written() -> None:
        # torch.optim.Adam's update with every hyperparameter a [R] tensor, in place.
        t.add_(1)
        step = (lr / (1 - b1**t)).neg_()
        bc2_sqrt = (1 - b2**t).sqrt_()
        for p, m_, v_ in zip(params, m, v):
            shape = (R,) + (1,) * (p.dim() - 1)
            g = p.grad
            m_.lerp_(g, (1 - b1).view(shape))
            v_.mul_(b2.view(shape)).addcmul_(g, g * (1 - b2).view(shape))
            denom = v_.sqrt().div_(bc2_sqrt.view(shape)).add_(eps.view(shape))
            p.addcdiv_(m_ * step.view(shape), denom)

    def per_replica() -> None:
        stack.bind_grads()
        for replica in replicas:
            replica.parts.optimizer.step()

    times = {}
    for name, fn in (("per_replica", per_replica), ("hand_written", hand_written)):
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times[name] = (time.perf_counter() - start) / repeats * 1e3
    stack.release()
    return times["per_replica"], times["hand_written"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--cpus", help="run both sides under `taskset -c CPUS`, e.g. 0,1")
    parser.add_argument("--loops", action="store_true", help="the epoch loops alone, in-process")
    parser.add_argument(
        "--parallel", action="store_true", help="a third side: hydra/launcher=parallel"
    )
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the warm-up sweeps (gpu_check.sh: its own runs warmed up the data cache)",
    )
    parser.add_argument("overrides", nargs="*", help="more key=value overrides for every job")
    args = parser.parse_args()
    if args.threads is not None:
        ENV["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    loops(args) if args.loops else whole_sweeps(args)


if __name__ == "__main__":
    main()
