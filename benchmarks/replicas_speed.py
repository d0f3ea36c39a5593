"""R seeds of one job trained as a stack of replicas against R runs alone, side by side.

Same model, data, optimizer, epochs and steps, in one process, patience off so
every job runs every epoch. Solo: `dlrun.runner.run` once per seed; its time is
the summary's `wall_s` (the epoch loop with evaluation, layers.csv, early-stopping
bookkeeping), summed. Batched: `build_replica` per seed, then one
`fit_replicas`; its time is that call (the same per-replica bookkeeping, in
memory). Repeats alternate, the median is reported. A second part times one
optimizer step for the stack: each replica's fused torch.optim Adam on views of
the stacked tensors (what fit_replicas does) against one hand-written Adam over
the stacked tensors with a hyperparameter tensor per replica.

    python benchmarks/replicas_speed.py [--replicas 8] [--epochs 20] [--repeats 3]
                                        [--threads N] [--device cpu] [overrides...]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dlrun.compose import compose
from dlrun.placement import resolve_device
from dlrun.replica_loop import fit_replicas
from dlrun.replicas import build_replica
from dlrun.runner import run
from dlrun.stacked import StackedNet


def solo(cfgs) -> tuple[float, float]:
    """(epoch loops, whole runs) in seconds for the jobs run one after another."""
    loops, start = 0.0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, cfg in enumerate(cfgs):
            loops += run(cfg, Path(tmp) / str(i))["wall_s"]
    return loops, time.perf_counter() - start


def batched(cfgs, device: torch.device) -> tuple[float, float]:
    """(epoch loops, build + loops) in seconds for the jobs as one stack."""
    start = time.perf_counter()
    replicas = [build_replica(cfg) for cfg in cfgs]
    sync(device)
    loop_start = time.perf_counter()
    fit_replicas(replicas)
    sync(device)
    end = time.perf_counter()
    assert all(r.state.status == "completed" for r in replicas)
    return end - loop_start, end - start


def optimizer_steps(cfgs, device: torch.device, repeats: int = 20) -> tuple[float, float]:
    """Milliseconds per stack step: per-replica fused torch.optim vs hand-written stacked Adam."""
    replicas = [build_replica(cfg) for cfg in cfgs]
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
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(device)
        times[name] = (time.perf_counter() - start) / repeats * 1e3
    stack.release()
    return times["per_replica"], times["hand_written"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    common = [
        f"device={args.device}",
        f"trainer.epochs={args.epochs}",
        "trainer.progress=false",
        "trainer.early_stopping.patience=null",
        *args.overrides,
    ]
    cfgs = [compose([*common, f"seed={seed}"]) for seed in range(args.replicas)]
    device = resolve_device(cfgs[0].device.name)
    warm = [compose([*common, "trainer.epochs=1", f"seed={s}"]) for s in range(2)]
    solo(warm), batched(warm, device)  # warm-up: data cache on disk, allocator, kernels
    solo_times, batched_times = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
        solo_times.append(solo(cfgs))
        batched_times.append(batched(cfgs, device))
    s_loop, s_all = (statistics.median(x) for x in zip(*solo_times))
    b_loop, b_all = (statistics.median(x) for x in zip(*batched_times))
    per_replica, hand = optimizer_steps(cfgs, device)

    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    c = cfgs[0]
    print(
        f"machine: {platform.node()}, {name}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    print(
        f"job: model={c.model.name} {c.model.depth}x{c.model.width} dropout={c.model.dropout} "
        f"optimizer={c.optimizer.name} lr={c.optimizer.lr} batch={c.trainer.batch_size} "
        f"data={c.data.name} epochs={args.epochs} device={device}; {args.replicas} seeds"
    )
    print(f"median of {args.repeats}:")
    print(f"  {args.replicas} runs alone:   loops {s_loop:.3f} s   whole runs {s_all:.3f} s")
    print(f"  one stack of {args.replicas}:  loops {b_loop:.3f} s   build + loop {b_all:.3f} s")
    print(f"  ratio alone / stacked: loops {s_loop / b_loop:.2f}x   whole {s_all / b_all:.2f}x")
    print(
        f"optimizer step of the stack: per-replica fused torch.optim {per_replica:.2f} ms, "
        f"hand-written stacked Adam {hand:.2f} ms ({hand / per_replica:.1f}x)"
    )


if __name__ == "__main__":
    main()
