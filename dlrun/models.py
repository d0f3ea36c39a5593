"""Models by name: every model is `features` (the body) followed by `head`.

The split lets transfer learning freeze or reset by meaning, and layer names
(`features.fc1`, `features.conv2`, `head`) show up as written in layers.csv.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from dlrun.config import ModelConfig
from dlrun.errors import ModelError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "identity": nn.Identity,
}


class Net(nn.Module):
    def __init__(self, features: nn.Module, head: nn.Module, input_shape: tuple[int, ...]):
        super().__init__()
        self.features = features
        self.head = head
        self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _activation(cfg: ModelConfig) -> nn.Module:
    if cfg.activation not in ACTIVATIONS:
        raise ModelError(f"model.activation={cfg.activation!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[cfg.activation]()


def _check(cfg: ModelConfig) -> None:
    if cfg.width < 1 or cfg.depth < 0:
        raise ModelError(f"model.width={cfg.width} and model.depth={cfg.depth} must be positive")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ModelError(f"model.dropout={cfg.dropout} must be a probability in [0, 1)")
    if cfg.bottleneck is not None and cfg.bottleneck < 1:
        raise ModelError(f"model.bottleneck={cfg.bottleneck} must be a positive width")


def _dense_stack(n_in: int, cfg: ModelConfig, linear: bool) -> tuple[nn.Sequential, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["flatten"] = nn.Flatten()
    width = n_in
    for i in range(1, cfg.depth + 1):
        layers[f"fc{i}"] = nn.Linear(width, cfg.width)
        if cfg.batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm1d(cfg.width)
        if not linear:
            layers[f"act{i}"] = _activation(cfg)
        if cfg.dropout > 0:
            layers[f"drop{i}"] = nn.Dropout(cfg.dropout)
        width = cfg.width
        # The lecture's bottleneck: a linear layer narrower than its neighbours,
        # placed after the middle hidden layer.
        if cfg.bottleneck is not None and i == max(1, cfg.depth // 2):
            layers["bottleneck"] = nn.Linear(width, cfg.bottleneck)
            width = cfg.bottleneck
    return nn.Sequential(layers), width


def build_mlp(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    n_in = int(torch.tensor(input_shape).prod())
    features, width = _dense_stack(n_in, cfg, linear=False)
    return Net(features, nn.Linear(width, n_out), input_shape)


def build_deep_linear(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    n_in = int(torch.tensor(input_shape).prod())
    features, width = _dense_stack(n_in, cfg, linear=True)
    return Net(features, nn.Linear(width, n_out), input_shape)


class _AddChannel(nn.Module):
    """(N, L) -> (N, 1, L): a plain signal becomes a one-channel sequence."""

    def __init__(self, dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if x.dim() == self.dims + 1 else x


def _conv_stack(cfg: ModelConfig, input_shape: tuple[int, ...], dims: int) -> nn.Sequential:
    conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
    in_ch = 1 if len(input_shape) == dims else input_shape[0]
    layers: OrderedDict[str, nn.Module] = OrderedDict(channel=_AddChannel(dims))
    for i in range(1, max(cfg.depth, 1) + 1):
        # 1-D: stride 2 halves the length each layer (the MNIST-1D paper's CNN);
        # 2-D: small images keep their size and shrink by pooling.
        stride = 2 if dims == 1 else 1
        layers[f"conv{i}"] = conv(
            in_ch, cfg.width, cfg.kernel_size, stride=stride, padding=cfg.kernel_size // 2
        )
        if cfg.batch_norm:
            layers[f"bn{i}"] = bn(cfg.width)
        layers[f"act{i}"] = _activation(cfg)
        if dims == 2 and min(input_shape[-2:]) // 2 ** (i - 1) >= 4:
            layers[f"pool{i}"] = nn.MaxPool2d(2)
        if cfg.dropout > 0:
            layers[f"drop{i}"] = nn.Dropout(cfg.dropout)
        in_ch = cfg.width
    layers["flatten"] = nn.Flatten()
    return nn.Sequential(layers)


def _build_cnn(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int, dims: int) -> Net:
    if len(input_shape) not in (dims, dims + 1):
        kind = "a sequence (data=mnist1d)" if dims == 1 else "images (data=digits)"
        raise ModelError(
            f"model=cnn{dims}d needs {kind}; this data has samples of shape {input_shape}"
        )
    features = _conv_stack(cfg, input_shape, dims)
    with torch.no_grad():
        n_flat = features(torch.zeros(1, *input_shape)).shape[1]
    if cfg.bottleneck is not None:
        features.add_module("bottleneck", nn.Linear(n_flat, cfg.bottleneck))
        n_flat = cfg.bottleneck
    return Net(features, nn.Linear(n_flat, n_out), input_shape)


def build_cnn1d(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    return _build_cnn(cfg, input_shape, n_out, dims=1)


def build_cnn2d(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    return _build_cnn(cfg, input_shape, n_out, dims=2)


BUILDERS = {
    "mlp": build_mlp,
    "cnn1d": build_cnn1d,
    "cnn2d": build_cnn2d,
    "deep_linear": build_deep_linear,
}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    if cfg.name not in BUILDERS:
        raise ModelError(f"unknown model {cfg.name!r}; choose from {sorted(BUILDERS)}")
    _check(cfg)
    return BUILDERS[cfg.name](cfg, input_shape, n_out)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every layer with a weight matrix or kernel, in forward order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))
    ]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
