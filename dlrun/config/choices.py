"""Every choice a user can type (`model=cnn1d`, `optimizer=adam`), with its description.

Each config group's choices are stored as nodes of the group's dataclass
(dlrun.config.schema), registered in Hydra's ConfigStore by dlrun.config.compose; `dlrun
list` prints this table. No torch here, so `dlrun list` stays fast.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlrun.config.schema import (
    AugmentConfig,
    CNN1DConfig,
    CustomDataConfig,
    CustomModelConfig,
    DataConfig,
    DeviceConfig,
    GRUConfig,
    InitConfig,
    LoggerConfig,
    MLPConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
)

# Every choice a user can type, with its one-line description (`dlrun list`) and
# what makes the choice what it is: values for the group's dataclass, or a
# dataclass of its own whose defaults are the choice's. Defaults stay in one place.
CHOICES: dict[str, dict[str, tuple[str, dict[str, Any] | type]]] = {
    "model": {
        "logistic": ("multinomial logistic regression: one linear layer", {"depth": 0}),
        "mlp": ("fully connected net: depth x width, activation, dropout, bottleneck", MLPConfig),
        "resmlp": (
            "the MNIST-1D paper's MLP: h = relu(fc1 x); h + relu(fc2 h)",
            {"residual": True},
        ),
        "cnn1d": ("1-D convolutions over a sequence (MNIST-1D), then a linear head", CNN1DConfig),
        "gru": (
            "bidirectional GRU over a sequence, every position's output to the head",
            GRUConfig,
        ),
        "cnn2d": ("2-D convolutions over an image (digits), then a linear head", {}),
        "deep_linear": ("the lecture's linear network W_L...W_1 x: no nonlinearity", {}),
        "custom": (
            "your nn.Module: model._target_=mypkg.nets.MyNet (+model.<key>=...)",
            CustomModelConfig,
        ),
    },
    # Biases start at zero for every choice but `default`. `init.gain` overrides
    # the gain of xavier*, he*, lecun and orthogonal.
    "init": {
        "default": ("PyTorch's own per-layer initialisation (uniform, biases too)", {}),
        "xavier": ("Glorot normal: variance 2/(n_in+n_out) (the lecture's), gain 1", {}),
        "xavier_uniform": ("Glorot uniform: same variance 2/(n_in+n_out), gain 1", {}),
        "he": ("He/Kaiming normal: variance gain^2/n_in, 2/n_in for ReLU", {}),
        "he_uniform": ("He/Kaiming uniform: same variance gain^2/n_in", {}),
        "lecun": ("LeCun normal: variance 1/n_in", {}),
        "orthogonal": ("Saxe et al.: (semi-)orthogonal matrix times the activation's gain", {}),
        "normal": ("N(0, init.std^2) for every weight", {}),
        "zeros": ("all weights zero: symmetry is never broken (a demonstration)", {}),
        "constant": ("every weight init.value: symmetry is never broken", {}),
    },
    # Weight decay is L2 added to the gradient (coupled) for every optimizer but
    # adamw, which shrinks the weights directly (decoupled, Loshchilov & Hutter).
    "optimizer": {
        "sgd": ("plain stochastic gradient descent: w -= lr g", {"lr": 0.05}),
        # PyTorch's form; the lecture's v = mu v + lr g, w -= v is the same path
        # for a constant rate (its v is lr times this v).
        "momentum": ("heavy-ball SGD: v = mu v + g, w -= lr v", {"lr": 0.02, "momentum": 0.9}),
        "nesterov": (
            "Nesterov momentum: v = mu v + g, w -= lr (g + mu v) (looks one step ahead)",
            {"lr": 0.02, "momentum": 0.9, "nesterov": True},
        ),
        "adagrad": ("AdaGrad: s += g^2, w -= lr g / (sqrt(s) + eps)", {"lr": 0.01, "eps": 1e-10}),
        "rmsprop": ("RMSProp: s = alpha s + (1-alpha) g^2, w -= lr g / (sqrt(s) + eps)", {}),
        "adadelta": (
            "Adadelta: RMS of past updates over RMS of gradients (rho, eps), lr scales it",
            {"lr": 1.0, "eps": 1e-6},
        ),
        # The lecture divides the running averages themselves by 1 - beta^t, which
        # compounds the correction over steps; this is the paper's (and PyTorch's)
        # algorithm: m and s are plain averages, only the update uses m/(1-b1^t).
        "adam": ("Adam (Kingma & Ba 2015): bias-corrected moments, coupled L2 weight decay", {}),
        "adamw": (
            "AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay",
            {"weight_decay": 0.01},
        ),
    },
    # t counts epochs: the rate changes once per epoch (no work in the step loop).
    "schedule": {
        "constant": ("the same learning rate every epoch (after any warm-up)", {}),
        "inverse_sqrt": ("lr / sqrt(t), t = epoch after warm-up: the lecture's fixed decay", {}),
        "step": ("lr * gamma every step_size epochs", {}),
        "cosine": ("cosine from lr down to min_lr over the epochs after warm-up", {}),
    },
    "data": {
        "mnist1d": ("MNIST-1D (Greydanus 2020), generated offline: 10 classes, length 40", {}),
        "digits": ("scikit-learn's 8x8 handwritten digits: 1797 images, 10 classes", {}),
        "moons": ("two interleaving half circles, 2-D, 2 classes", {"n_samples": 2000}),
        "circles": ("two concentric circles, 2-D, 2 classes", {"n_samples": 2000}),
        "spirals": ("three interleaved spirals, 2-D, 3 classes", {"n_samples": 3000}),
        "regression": (
            "y = sin(2 pi x) + x + noise on [-1, 1]: a known true function for bias/variance",
            {"n_samples": 1000, "noise": 0.3},
        ),
        "quadratic": (
            "least squares with a chosen Hessian condition number (data.condition): GD vs momentum",
            {"n_samples": 250, "val_fraction": 0.2},
        ),
        "table": ("your CSV or Parquet file: data.path=... data.target=<column>", {}),
        "npz": ("your NumPy .npz file with arrays x and y: data.path=...", {}),
        "custom": (
            "your function returning (x, y): data._target_=mypkg.data.load",
            CustomDataConfig,
        ),
    },
    # data/augment=<choice>: random transforms applied on the device to each training batch.
    "data/augment": {
        "none": ("no augmentation", {}),
        "signal": (
            "1-D signals (MNIST-1D): shift up to 3 samples, noise 0.05, amplitude x[0.9, 1.1]",
            {"shift": 3, "noise": 0.05, "scale": 0.1},
        ),
        "image": (
            "images (digits): shift up to 1 pixel (zero padding), rotate up to 10 degrees",
            {"shift": 1, "rotate": 10.0},
        ),
    },
    "device": {
        "auto": ("cuda if available, then mps, then cpu", {}),
        "cpu": ("the CPU", {}),
        "cuda": ("the first (or assigned) NVIDIA GPU", {}),
        "mps": ("Apple's Metal GPU", {}),
    },
    # Each choice switches on only its own tracker: logger=[csv,tensorboard,mlflow] combines them.
    "logger": {
        "csv": ("the run folder only: metrics.csv, summary.json (always written)", {}),
        "tensorboard": (
            "also TensorBoard event files in the run folder (pip install tensorboard)",
            {"tensorboard": True},
        ),
        "mlflow": (
            "also an MLflow run per run, nested per sweep (pip install mlflow)",
            {"mlflow": True},
        ),
    },
}

SCHEMAS: dict[str, type] = {
    "model": ModelConfig,
    "init": InitConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "data": DataConfig,
    "data/augment": AugmentConfig,
    "device": DeviceConfig,
    "logger": LoggerConfig,
}
COMBINED = {"logger"}  # groups whose choices combine: each node holds only what it sets
# Choices that take the user's own keys (`+model.hidden=64`, or a YAML file of the user's
# group that extends them): no dataclass checks them, since it would refuse those keys.
OPEN = {("model", "custom"), ("data", "custom")}


def choice_node(group: str, choice: str) -> dict[str, Any]:
    """The node `group=choice` selects, as a plain dict (dlrun.config.compose stores it).

    Plain dicts are cheap to store; the typed fields of dlrun.config.schema check
    them when Hydra merges them, except `model` and `data`, which take the
    user's own keys too (check_types does those).
    """
    values = CHOICES[group][choice][1]
    if group in COMBINED:
        return dict(values)  # a full node would reset what the other chosen nodes set
    node = (
        values(name=choice) if isinstance(values, type) else SCHEMAS[group](name=choice, **values)
    )
    return asdict(node)


def schema_of(group: str, name: Any) -> type | None:
    """The dataclass of a built-in choice (MLPConfig for model=mlp); None for a user's own."""
    if (group, name) in OPEN or name not in CHOICES.get(group, {}):
        return None
    values = CHOICES[group][name][1]
    return values if isinstance(values, type) else SCHEMAS[group]
