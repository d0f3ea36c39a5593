"""How close dlrun's training comes to the machine's matrix-product speed, for a wide MLP.

A wide MLP (default: width 2048, 2 hidden layers, batch 128, MNIST-1D) trained
through `dlrun.run.runner.run`: its training FLOP/s count 6 x parameters x samples
per epoch (forward 2, backward 4), divided by `wall_s` (the whole epoch loop,
evaluation, layer statistics and logging included). The ceiling is a plain
`batch x width x width` float32 matrix product timed in the same process. To
say where the rest goes, the script also times the parts of one training step
on their own: forward+backward, the optimizer's update.

    python benchmarks/arithmetic_ceiling.py [--width 2048] [--epochs 5] [--repeats 3] [overrides...]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlrun.config.compose import compose
from dlrun.data.tensors import build_dataset
from dlrun.placement import resolve_device
from dlrun.run.runner import run
from dlrun.toolbox.models import build_model, count_parameters
from dlrun.toolbox.optim import build_optimizer


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops(batch: int, width: int, device: torch.device, repeats: int) -> float:
    a = torch.randn(batch, width, device=device)
    b = torch.randn(width, width, device=device)
    n = 50
    for _ in range(5):
        a @ b  # warm-up

    def products() -> None:
        for _ in range(n):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    return 2 * batch * width * width * n / best_of(products, repeats)


def step_parts(cfg, device: torch.device, repeats: int) -> tuple[float, float]:
    """Seconds of one forward+backward and of one optimizer update, on their own."""
    data = build_dataset(cfg.data, cfg.seed, device)
    model = build_model(cfg.model, data.input_shape, data.n_out).to(device)
    optimizer = build_optimizer(model.parameters(), cfg.optimizer)
    xb, yb = data.train.x[: cfg.trainer.batch_size], data.train.y[: cfg.trainer.batch_size]

    def forward_backward() -> None:
        for _ in range(10):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()

    def update() -> None:
        for _ in range(10):
            optimizer.step()

    forward_backward()
    return best_of(forward_backward, repeats) / 10, best_of(update, repeats) / 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose(
        [
            f"device={args.device}",
            f"model.width={args.width}",
            f"trainer.epochs={args.epochs}",
            "trainer.progress=false",
            "trainer.early_stopping.patience=null",
            *args.overrides,
        ]
    )
    device = resolve_device(cfg.device.name)
    data = build_dataset(cfg.data, cfg.seed, device)
    n_params = count_parameters(build_model(cfg.model, data.input_shape, data.n_out))
    flops_per_epoch = 6 * n_params * len(data.train)
    walls = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            walls.append(run(cfg, Path(tmp))["wall_s"])
    wall = statistics.median(walls)
    training = flops_per_epoch * args.epochs / wall
    ceiling = matmul_flops(cfg.trainer.batch_size, args.width, device, args.repeats)
    fb, update = step_parts(cfg, device, args.repeats)
    step_flops = 6 * n_params * cfg.trainer.batch_size
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(
        f"machine: {platform.node()} {name or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"model: {cfg.model.name} width {args.width} depth {cfg.model.depth}, {n_params:,} "
        f"parameters, optimizer {cfg.optimizer.name}, batch {cfg.trainer.batch_size}, "
        f"{len(data.train)} samples/epoch, {args.epochs} epochs (median of {args.repeats})"
    )
    print(f"dlrun training:        {training / 1e9:7.1f} GFLOP/s  (wall_s {wall:.2f} s)")
    print(
        f"matrix product:        {ceiling / 1e9:7.1f} GFLOP/s  "
        f"({cfg.trainer.batch_size}x{args.width} @ {args.width}x{args.width})"
    )
    print(f"ratio:                 {training / ceiling:7.3f}   (target: at least 0.75)")
    print(
        f"one step on its own:   forward+backward {fb * 1e3:.1f} ms "
        f"({step_flops / fb / 1e9:.1f} GFLOP/s), optimizer update {update * 1e3:.1f} ms "
        f"({update / (fb + update):.0%} of the step)"
    )


if __name__ == "__main__":
    main()
