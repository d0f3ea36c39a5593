"""Weight initialisation by name, applied to every weight layer of a model."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dlrun.config import ConfigError, InitConfig
from dlrun.models import weight_layers


def _fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def xavier(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """Glorot & Bengio (2010): N(0, gain^2 * 2 / (n_in + n_out)); gain 1 unless given."""
    n_in, n_out = _fans(w)
    gain = 1.0 if cfg.gain is None else cfg.gain
    nn.init.normal_(w, 0.0, gain * math.sqrt(2.0 / (n_in + n_out)))


def he(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """He et al. (2015): N(0, 2 / n_in) for ReLU; the activation's gain otherwise."""
    n_in, _ = _fans(w)
    gain = activation_gain(activation) if cfg.gain is None else cfg.gain
    nn.init.normal_(w, 0.0, gain / math.sqrt(n_in))


def activation_gain(activation: str) -> float:
    known = {"relu", "tanh", "sigmoid", "leaky_relu", "linear", "selu"}
    name = activation if activation in known else "linear"
    if activation in ("gelu", "elu"):
        name = "relu"  # rectifier-like: the ReLU gain is the usual choice
    return nn.init.calculate_gain(name)


INITIALIZERS: dict[str, Callable[[torch.Tensor, InitConfig, str], None]] = {
    "xavier": xavier,
    "he": he,
}


@torch.no_grad()
def initialize(model: nn.Module, cfg: InitConfig, activation: str) -> None:
    """Apply `cfg.name` to every weight layer; biases start at zero (except `default`)."""
    if cfg.name == "default":
        return
    if cfg.name not in INITIALIZERS:
        raise ConfigError(f"unknown init {cfg.name!r}; choose from {['default', *INITIALIZERS]}")
    for _, layer in weight_layers(model):
        INITIALIZERS[cfg.name](layer.weight, cfg, activation)
        if layer.bias is not None:
            layer.bias.zero_()
