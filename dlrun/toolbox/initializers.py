"""Weight initialisation by name, applied to every weight layer of a model.

Fans count a kernel's receptive field: a Conv2d(c_in, c_out, k) has
n_in = c_in * k * k and n_out = c_out * k * k, as in the papers. A method's gain
follows the model's activation only where the method defines one (He: the
rectifier's sqrt(2); orthogonal: Saxe et al.'s nonlinearity gain); Glorot and
LeCun derive their variance for a linear unit, so their gain is 1. `init.gain`
overrides the gain of every method that has one. A GRU's stacked gate matrices
are initialised gate by gate (each is its own hidden x n_in matrix), with the
gain of tanh, its state's nonlinearity.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dlrun.config.schema import InitConfig
from dlrun.errors import ConfigError
from dlrun.toolbox.models import ACTIVATIONS, biases, gate_blocks, weight_layers, weights

# Modules whose presence makes a network nonlinear (a GRU's gates are built in).
_NONLINEAR = (*(cls for name, cls in ACTIVATIONS.items() if name != "identity"), nn.RNNBase)


def fans(w: torch.Tensor) -> tuple[int, int]:
    """(n_in, n_out) of a weight matrix or convolution kernel."""
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def activation_gain(activation: str) -> float:
    """The gain that keeps a unit's output variance equal to its input's (PyTorch's table)."""
    if activation in ("gelu", "elu"):
        return nn.init.calculate_gain("relu")  # rectifier-like: the ReLU gain is the usual choice
    known = {"relu", "tanh", "sigmoid", "leaky_relu", "linear", "selu"}
    return nn.init.calculate_gain(activation if activation in known else "linear")


def _gain(cfg: InitConfig, activation: str | None) -> float:
    """`init.gain` if given; else the activation's gain (None: the method defines gain 1)."""
    if cfg.gain is not None:
        return cfg.gain
    return 1.0 if activation is None else activation_gain(activation)


def _uniform_with_std(w: torch.Tensor, std: float) -> None:
    # U(-a, a) has standard deviation a / sqrt(3).
    nn.init.uniform_(w, -math.sqrt(3.0) * std, math.sqrt(3.0) * std)


def xavier(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """Glorot & Bengio (2010): N(0, gain^2 * 2 / (n_in + n_out)), gain 1 unless given."""
    n_in, n_out = fans(w)
    nn.init.normal_(w, 0.0, _gain(cfg, None) * math.sqrt(2.0 / (n_in + n_out)))


def xavier_uniform(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """Glorot uniform: the same variance 2 / (n_in + n_out) from U(-a, a)."""
    n_in, n_out = fans(w)
    _uniform_with_std(w, _gain(cfg, None) * math.sqrt(2.0 / (n_in + n_out)))


def he(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """He et al. (2015): N(0, gain^2 / n_in), i.e. 2 / n_in for ReLU."""
    n_in, _ = fans(w)
    nn.init.normal_(w, 0.0, _gain(cfg, activation) / math.sqrt(n_in))


def he_uniform(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """He uniform: the same variance gain^2 / n_in from U(-a, a)."""
    n_in, _ = fans(w)
    _uniform_with_std(w, _gain(cfg, activation) / math.sqrt(n_in))


def lecun(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """LeCun et al. (1998): N(0, 1 / n_in), gain 1 unless given."""
    n_in, _ = fans(w)
    nn.init.normal_(w, 0.0, _gain(cfg, None) / math.sqrt(n_in))


def orthogonal(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """Saxe et al. (2014): a (semi-)orthogonal matrix (kernels flattened) times the gain.

    Its entries have standard deviation gain / sqrt(max(rows, columns)).
    """
    nn.init.orthogonal_(w, gain=_gain(cfg, activation))


def normal(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """N(0, init.std^2), whatever the layer's size (init.std >= 0: dlrun.config.validate)."""
    nn.init.normal_(w, 0.0, cfg.std)


def zeros(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """All zeros: every unit of a layer computes the same thing forever."""
    nn.init.zeros_(w)


def constant(w: torch.Tensor, cfg: InitConfig, activation: str) -> None:
    """Every weight init.value: units stay identical (the lecture's symmetry problem)."""
    nn.init.constant_(w, cfg.value)


INITIALIZERS: dict[str, Callable[[torch.Tensor, InitConfig, str], None]] = {
    "xavier": xavier,
    "xavier_uniform": xavier_uniform,
    "he": he,
    "he_uniform": he_uniform,
    "lecun": lecun,
    "orthogonal": orthogonal,
    "normal": normal,
    "zeros": zeros,
    "constant": constant,
}


def effective_activation(model: nn.Module, activation: str | None) -> str:
    """The configured activation, or "linear" for a net without one (deep_linear).

    None (a custom model has no model.activation): the model's first nonlinearity.
    """
    found = [m for m in model.modules() if isinstance(m, _NONLINEAR)]
    if not found:
        return "linear"
    if activation is None:
        return next(name for name, cls in ACTIVATIONS.items() if isinstance(found[0], cls))
    return activation


@torch.no_grad()
def initialize(model: nn.Module, cfg: InitConfig, activation: str | None) -> None:
    """Apply `cfg.name` to every weight layer; biases start at zero (except `default`)."""
    if cfg.name == "default":
        return
    if cfg.name not in INITIALIZERS:
        raise ConfigError(f"unknown init {cfg.name!r}; choose from {['default', *INITIALIZERS]}")
    activation = effective_activation(model, activation)
    for _, layer in weight_layers(model):
        for weight in weights(layer):
            for block in gate_blocks(layer, weight):
                INITIALIZERS[cfg.name](block, cfg, activation)
        for bias in biases(layer):
            bias.zero_()
