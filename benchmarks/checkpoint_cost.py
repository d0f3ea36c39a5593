"""What one checkpoint costs, against an epoch and against trainer.checkpoint_every_s.

    python benchmarks/checkpoint_cost.py [--device cpu|cuda] [--repeats 7] [overrides...]

Builds the configured run (default: the default job, a 2 x 512 MLP with Adam on
MNIST-1D), trains one epoch, then times `save_checkpoints` (last.pt and best.pt,
through temporary files and renames, as the loop writes them) and one epoch of
training, and prints the median of each and the share of a run that saving
takes at the default interval. Both checkpoint files are written to a
temporary folder on the same file system as the current directory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dlrun.config.compose import compose
from dlrun.config.schema import TrainerConfig
from dlrun.folders import runs
from dlrun.run.checkpoints import Checkpointer, Snapshot, State, checkpoint, save_checkpoints
from dlrun.run.runner import setup
from dlrun.run.train import fit
from dlrun.toolbox.diagnostics import LAYER_COLUMNS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose([f"device={args.device}", "trainer.progress=false", *args.overrides])
    parts, data, device, _ = setup(cfg)
    with tempfile.TemporaryDirectory(dir=".") as folder:
        folder = Path(folder)
        epoch_s = []
        state = State()
        metrics = runs.CsvLog(folder / runs.METRICS, runs.metric_columns(data.task))
        layers = runs.CsvLog(folder / runs.LAYERS, LAYER_COLUMNS)
        for _ in range(args.repeats):  # one more epoch each time, timed by the loop itself
            cfg.trainer.epochs = state.epoch + 1
            state.status = runs.RUNNING
            before = state.wall_s
            fit(cfg, data, parts, state, metrics, layers, folder)
            epoch_s.append(state.wall_s - before)
        Snapshot(state).take(parts.model, parts.optimizer)
        save_s = []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            save_checkpoints(folder, checkpoint(parts, state, cfg), state)
            save_s.append(time.perf_counter() - start)
        size = sum(p.stat().st_size for p in (folder / runs.CHECKPOINTS).glob("*.pt"))
    save, epoch = statistics.median(save_s), statistics.median(epoch_s)
    every = TrainerConfig().checkpoint_every_s
    interval = max(every, save / Checkpointer.SHARE)
    print(
        f"model: {cfg.model.name}, {sum(p.numel() for p in parts.model.parameters()):,} parameters on {device}"
    )
    print(
        f"checkpoint (last.pt + best.pt, {size / 1e6:.1f} MB): {save * 1e3:.1f} ms (median of {args.repeats})"
    )
    print(f"one epoch of training: {epoch * 1e3:.1f} ms; a checkpoint = {save / epoch:.2f} epochs")
    print(
        f"every {interval:.0f} s (trainer.checkpoint_every_s={every:g}): "
        f"{100 * save / (interval + save):.3f}% of the run; after the first epoch once: {save * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
