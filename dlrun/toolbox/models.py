"""Models by name: every model is `features` (the body) followed by `head`.

The split lets transfer learning freeze or reset by meaning, and layer names
(`features.fc1`, `features.conv2`, `features.gru`, `head`) show up as written in
layers.csv. The MNIST-1D paper's four models (Greydanus & Kobak 2024) are the
defaults of `logistic`, `resmlp`, `cnn1d` and `gru`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from dlrun.config.schema import ModelConfig
from dlrun.errors import ConfigError, ModelError

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


class Residual(nn.Sequential):
    """h + layers(h): the layers inside are named and diagnosed as in any Sequential."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


def _dense_stack(n_in: int, cfg: ModelConfig, linear: bool) -> tuple[nn.Sequential, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["flatten"] = nn.Flatten()
    width = n_in
    for i in range(1, cfg.depth + 1):
        block: OrderedDict[str, nn.Module] = OrderedDict()
        block[f"fc{i}"] = nn.Linear(width, cfg.width)
        if cfg.batch_norm:
            block[f"bn{i}"] = nn.BatchNorm1d(cfg.width)
        if not linear:
            block[f"act{i}"] = _activation(cfg)
        if cfg.dropout > 0:
            block[f"drop{i}"] = nn.Dropout(cfg.dropout)
        if cfg.residual and i > 1 and width == cfg.width:
            # the paper's MLP: h = h + relu(fc2(h)) wherever the width is kept
            layers[f"res{i}"] = Residual(block)
        else:
            layers.update(block)
        width = cfg.width
        # The lecture's bottleneck: a linear layer narrower than its neighbours,
        # placed after the middle hidden layer.
        if cfg.bottleneck is not None and i == max(1, cfg.depth // 2):
            layers["bottleneck"] = nn.Linear(width, cfg.bottleneck)
            width = cfg.bottleneck
    return nn.Sequential(layers), width


def build_mlp(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    n_in = math.prod(input_shape)
    features, width = _dense_stack(n_in, cfg, linear=False)
    return Net(features, nn.Linear(width, n_out), input_shape)


def build_logistic(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    """Multinomial logistic regression: one linear layer (the softmax is in the loss)."""
    if cfg.depth != 0:
        raise ModelError(f"model=logistic has no hidden layers (model.depth={cfg.depth}); use mlp")
    return build_deep_linear(cfg, input_shape, n_out)


def build_deep_linear(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    n_in = math.prod(input_shape)
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
        k = cfg.first_kernel_size if i == 1 and cfg.first_kernel_size else cfg.kernel_size
        layers[f"conv{i}"] = conv(in_ch, cfg.width, k, stride=stride, padding=k // 2)
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


class Recurrent(nn.Module):
    """A GRU over the positions of a sequence; every position's output, flattened.

    (N, L) is read one value per step, (N, C, L) C values per step. As in the
    MNIST-1D paper, the head sees all L outputs (2 x width x L when bidirectional).
    """

    def __init__(self, cfg: ModelConfig, n_in: int):
        super().__init__()
        self.gru = nn.GRU(
            n_in,
            cfg.width,
            num_layers=cfg.depth,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.depth > 1 else 0.0,  # between stacked layers
        )
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.unsqueeze(-1) if x.dim() == 2 else x.transpose(1, 2)  # (N, L, features)
        return self.flatten(self.gru(steps)[0])


def build_gru(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> Net:
    if len(input_shape) not in (1, 2):
        raise ModelError(
            f"model=gru needs a sequence; this data has samples of shape {input_shape}"
        )
    if cfg.activation != "tanh" or cfg.depth < 1 or cfg.bottleneck is not None:
        raise ModelError(
            "model=gru: its gates are fixed (sigmoid, tanh): keep model.activation=tanh, "
            "model.depth >= 1 (stacked layers) and no model.bottleneck"
        )
    features = Recurrent(cfg, 1 if len(input_shape) == 1 else input_shape[0])
    with torch.no_grad():
        n_flat = features(torch.zeros(1, *input_shape)).shape[1]
    return Net(features, nn.Linear(n_flat, n_out), input_shape)


BUILDERS = {
    "logistic": build_logistic,
    "mlp": build_mlp,
    "resmlp": build_mlp,
    "gru": build_gru,
    "cnn1d": build_cnn1d,
    "cnn2d": build_cnn2d,
    "deep_linear": build_deep_linear,
}


def build_custom(cfg, input_shape: tuple[int, ...], n_out: int) -> nn.Module:
    """`model=custom`: the user's `model._target_`, offered `input_shape` and `n_outputs`.

    The module must map a batch of shape (N, *input_shape) to (N, n_outputs);
    a forward pass on two zero samples checks that here, in one line if not.
    """
    from dlrun.config.compose import instantiate

    if cfg.get("_target_") in (None, "???"):
        raise ModelError("model=custom needs model._target_=<module.Class> (docs/custom.md)")
    node = {key: value for key, value in cfg.items() if key != "name"}
    try:
        model = instantiate(node, input_shape=tuple(input_shape), n_outputs=n_out)
    except ConfigError as e:
        raise ModelError(f"model.{e}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model._target_={cfg._target_} returned {type(model).__name__}, not an nn.Module"
        )
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *input_shape))
        model.train()
    except Exception as e:
        raise ModelError(
            f"model._target_={cfg._target_}: a batch of shape {(2, *input_shape)} fails: {type(e).__name__}: {e}"
        ) from None
    if tuple(getattr(out, "shape", ())) != (2, n_out):
        raise ModelError(
            f"model._target_={cfg._target_} maps a batch of shape {(2, *input_shape)} to "
            f"{tuple(getattr(out, 'shape', ()))}; dlrun needs (2, {n_out}) (n_outputs)"
        )
    return model


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int) -> nn.Module:
    # model=custom, or a choice of the user's own (--config-dir) that names a _target_
    if cfg.name == "custom" or (hasattr(cfg, "get") and cfg.get("_target_") is not None):
        return build_custom(cfg, input_shape, n_out)
    if cfg.name not in BUILDERS:
        raise ModelError(f"unknown model {cfg.name!r}; choose from {sorted(BUILDERS)}")
    # ranges (width >= 1, dropout in [0, 1)...): dlrun.config.validate, before any run
    from dlrun.toolbox.memory import check_fits

    check_fits(lambda: BUILDERS[cfg.name](cfg, input_shape, n_out), f"model={cfg.name}")
    return BUILDERS[cfg.name](cfg, input_shape, n_out)


WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every layer with a weight matrix, kernel or recurrent weights, in forward order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def weights(layer: nn.Module) -> list[nn.Parameter]:
    """A layer's weight tensors: one, or a recurrent layer's input and hidden matrices."""
    if isinstance(layer, nn.RNNBase):
        return [p for name, p in layer.named_parameters() if name.startswith("weight")]
    return [layer.weight]


def biases(layer: nn.Module) -> list[nn.Parameter]:
    if isinstance(layer, nn.RNNBase):
        return [p for name, p in layer.named_parameters() if name.startswith("bias")]
    return [layer.bias] if layer.bias is not None else []


def gate_blocks(layer: nn.Module, weight: torch.Tensor) -> list[torch.Tensor]:
    """The matrices an initializer sees: a GRU stacks one (hidden x n_in) matrix per gate,
    and each gate is its own matrix, with fans n_in and hidden (views, so in-place works)."""
    if isinstance(layer, nn.RNNBase):
        return list(weight.chunk(weight.shape[0] // layer.hidden_size, dim=0))
    return [weight]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
