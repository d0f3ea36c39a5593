"""dlrun's training loop against a minimal hand-written PyTorch loop, side by side.

Same model, data, seed, optimizer and number of steps, in one process; the
hand-written loop also evaluates the validation split once per epoch, as any
loop that early-stops must, and keeps its training loss on the device (one
host sync per epoch, as a careful person writes it). Two baselines:

  fused     the optimizer exactly as dlrun builds it (fused kernels where torch
            has them): the fair comparison of the loops themselves;
  defaults  `torch.optim.Adam(...)` with torch's defaults, as a notebook writes it.

dlrun's time is its `wall_s` (the epoch loop with metrics.csv, layers.csv,
early-stopping bookkeeping and best-weight snapshots; no progress bar,
patience off so both run every epoch).

    python benchmarks/loop_overhead.py [--epochs 40] [--repeats 5] [--device cpu] [overrides...]
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
from dlrun.toolbox.initializers import initialize
from dlrun.toolbox.models import build_model
from dlrun.toolbox.optim import OPTIMIZERS, build_optimizer


def hand_written(cfg, device: torch.device, fused: bool) -> float:
    """The loop a person writes: permutation batches, training and validation loss each epoch."""
    torch.manual_seed(cfg.seed)
    data = build_dataset(cfg.data, cfg.seed, device)
    model = build_model(cfg.model, data.input_shape, data.n_out)
    initialize(model, cfg.init, cfg.model.activation)
    model.to(device)
    params = list(model.parameters())
    if fused:  # the same implementation as dlrun's
        optimizer = build_optimizer(params, cfg.optimizer)
    else:  # torch.optim's class with its default implementation
        optimizer = OPTIMIZERS[cfg.optimizer.name](params, cfg.optimizer)
    x, y, xv, yv = data.train.x, data.train.y, data.val.x, data.val.y
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    sync(device)
    start = time.perf_counter()
    for _ in range(cfg.trainer.epochs):
        model.train()
        total = torch.zeros((), device=device)
        for idx in torch.randperm(len(y), device=device, generator=generator).split(
            cfg.trainer.batch_size
        ):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        model.eval()
        with torch.no_grad():
            train_loss, val_loss = torch.stack(
                [total / len(y), F.cross_entropy(model(xv), yv)]
            ).tolist()
    sync(device)
    assert val_loss == val_loss and train_loss == train_loss  # a finished, finite run
    return time.perf_counter() - start


def with_dlrun(cfg) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(cfg, Path(tmp))
    return summary["wall_s"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose(
        [
            f"device={args.device}",
            f"trainer.epochs={args.epochs}",
            "trainer.progress=false",
            "trainer.early_stopping.patience=null",
            *args.overrides,
        ]
    )
    device = resolve_device(cfg.device.name)
    hand_written(cfg, device, True), with_dlrun(cfg)  # warm-up: caches, allocator, data on disk
    fused, plain, ours = [], [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits every side
        fused.append(hand_written(cfg, device, fused=True))
        plain.append(hand_written(cfg, device, fused=False))
        ours.append(with_dlrun(cfg))
    f, h, d = statistics.median(fused), statistics.median(plain), statistics.median(ours)
    steps = args.epochs * -(
        -int(len(build_dataset(cfg.data, cfg.seed, device).train)) // cfg.trainer.batch_size
    )
    name = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"machine: {platform.node()} {name}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"model={cfg.model.name} width={cfg.model.width} data={cfg.data.name} device={device} steps={steps}"
    )
    print(f"hand-written, dlrun's optimizer: {f:.3f} s  (median of {args.repeats})")
    print(f"hand-written, torch defaults:    {h:.3f} s")
    print(f"dlrun loop:                      {d:.3f} s")
    print(f"ratio dlrun / hand-written (same optimizer): {d / f:.3f}")
    print(f"ratio dlrun / hand-written (torch defaults):  {d / h:.3f}")


if __name__ == "__main__":
    main()
