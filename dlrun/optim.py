"""Optimizers and learning-rate schedules by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from dlrun.config import ConfigError, OptimizerConfig, ScheduleConfig


class OptimError(ConfigError):
    """An optimizer or schedule that cannot be built from the given settings."""


def _sgd(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _momentum(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def _adam(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "momentum": _momentum,
    "adam": _adam,
}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.name not in OPTIMIZERS:
        raise OptimError(f"unknown optimizer {cfg.name!r}; choose from {sorted(OPTIMIZERS)}")
    if not cfg.lr > 0:
        raise OptimError(f"optimizer.lr={cfg.lr} must be positive")
    if cfg.weight_decay < 0:
        raise OptimError(f"optimizer.weight_decay={cfg.weight_decay} must be >= 0")
    return OPTIMIZERS[cfg.name](params, cfg)


def lr_factor(cfg: ScheduleConfig, epochs: int) -> Callable[[int], float] | None:
    """The multiplier of the base learning rate at a given epoch (None: constant)."""
    if cfg.name == "constant" and cfg.warmup_epochs == 0:
        return None
    if cfg.name != "constant":
        raise OptimError(f"unknown schedule {cfg.name!r}; choose from ['constant']")
    return lambda epoch: 1.0


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-epoch LambdaLR, or None when the rate never changes (no per-step cost)."""
    factor = lr_factor(cfg, epochs)
    if factor is None:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
