"""The config schema: typed dataclasses, registered in Hydra's ConfigStore by dlrun.compose.

Defaults live here, with their units. Each config group's choices are stored
as nodes of its dataclass, so `optimizer=adam` selects a node and a typo or a
wrong type fails at compose time. YAML in `conf/` only holds the primary
config's defaults list and Hydra's own settings; `experiments/` holds diffs.
This module imports no torch, so `dlrun --help` and `dlrun list` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MISSING = "???"


@dataclass
class ModelConfig:
    name: str = "mlp"
    width: int = 100  # hidden units per layer (channels for CNNs)
    depth: int = 2  # hidden layers (conv layers for CNNs)
    activation: str = "relu"  # relu | tanh | sigmoid | gelu | leaky_relu | elu | identity
    # Drop probability after each hidden activation. Inverted dropout: kept units are
    # scaled by 1/(1-p) in training, so evaluation uses the weights as they are (the
    # lecture keeps units with probability p and rescales at test time instead).
    dropout: float = 0.0
    bottleneck: int | None = None  # width of a narrow linear layer in the middle
    kernel_size: int = 5  # CNNs only
    batch_norm: bool = False


@dataclass
class MLPConfig(ModelConfig):
    """`model=mlp`, the default job's model, tuned on MNIST-1D: test accuracy 0.64-0.70
    over seeds 0-2 (2 CPU cores, about 5 s of training)."""

    width: int = 512
    dropout: float = 0.3


@dataclass
class InitConfig:
    name: str = "default"
    std: float = 0.01  # `normal` only
    value: float = 0.1  # `constant` only
    gain: float | None = None  # None: the activation's recommended gain


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0  # L2 coefficient (decoupled for adamw)
    momentum: float = 0.0  # sgd family (and rmsprop): the mu of v = mu v + g
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    alpha: float = 0.99  # rmsprop's smoothing constant
    rho: float = 0.9  # adadelta's smoothing constant
    dampening: float = 0.0


@dataclass
class ScheduleConfig:
    name: str = "constant"
    warmup_epochs: int = 0  # linear warm-up: epoch e <= W runs at lr * e / (W + 1) (0: off)
    step_size: int = 30  # epochs between decays (`step`)
    gamma: float = 0.1  # decay factor (`step`)
    min_lr: float = 0.0  # floor for `cosine`


@dataclass
class AugmentConfig:
    name: str = "none"
    shift: int = 0  # max translation in samples (1-D) or pixels (2-D)
    noise: float = 0.0  # std of additive Gaussian noise, in standardised units
    scale: float = 0.0  # amplitude scaling in [1 - scale, 1 + scale]
    rotate: float = 0.0  # max rotation in degrees (images)
    flip: bool = False  # random horizontal flips (images)


@dataclass
class DataConfig:
    name: str = "mnist1d"
    path: str | None = None  # `table` / `npz`: the user's file
    target: str | None = None  # `table`: the target column
    task: str | None = None  # None: inferred (classification or regression)
    n_samples: int = 5000  # generated data sets: samples before the test split
    test_fraction: float = 0.2  # fraction held out as the test split
    val_fraction: float = 0.1  # fraction of the training split used for validation
    n_train: int | None = None  # train on a random subset of this many samples
    classes: list[int] | None = None  # keep only these labels (renumbered 0..k-1)
    label_noise: float = 0.0  # fraction of training labels replaced at random
    noise: float = 0.1  # synthetic sets: input noise (regression: target noise std)
    data_seed: int | None = 42  # seed of generated data (null: the run seed; regression only)
    condition: float = 100.0  # `quadratic`: condition number kappa of the Hessian
    dim: int = 20  # `quadratic`: number of input features
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EarlyStoppingConfig:
    patience: int | None = 20  # epochs without improvement (None: off)
    min_delta: float = 0.0  # smallest change that counts as an improvement
    monitor: str = "val_loss"  # a metrics.csv column; *_acc is maximised
    restore_best: bool = True  # test (and `last` state) with the best weights


@dataclass
class TrainerConfig:
    epochs: int = 100
    batch_size: int = 128
    deterministic: bool = False  # torch.use_deterministic_algorithms
    threads: int | None = (
        None  # CPU threads for torch (None: torch's default, or a sweep job's share)
    )
    eval_batch_size: int = 4096
    max_grad_norm: float | None = None  # gradient clipping (None: off)
    layer_stats: bool = True  # write layers.csv
    progress: bool = True  # rich progress bar
    target_loss: float | None = None  # stop once the training loss is at or below this
    divergence_loss: float = 1e6  # train loss above this (or nan) ends the run as diverged
    # 32 | tf32 (TensorFloat-32 products on NVIDIA GPUs) | bf16 (bfloat16 autocast of the
    # forward pass and loss, float32 weights and optimizer): dlrun/speed.py
    precision: str = "32"
    compile: bool = False  # torch.compile the model's forward pass
    compile_mode: str = "default"  # torch.compile's mode: default | reduce-overhead | max-autotune
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class DeviceConfig:
    name: str = "auto"  # auto picks cuda, then mps, then cpu


@dataclass
class TransferConfig:
    source: str | None = None  # a run folder whose best weights are loaded
    freeze: list[str] = field(default_factory=list)  # layer prefixes, or ["features"]
    reset_head: bool = False
    # Overrides (key=value) that train the source first, into transfer.source,
    # when that folder has no checkpoint yet: a transfer experiment in one command.
    pretrain: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    defaults: list[Any] = field(
        default_factory=lambda: [
            "_self_",
            {"model": "mlp"},
            {"init": "default"},
            {"optimizer": "adam"},
            {"schedule": "constant"},
            {"data": "mnist1d"},
            {"data/augment": "none"},  # after data: the choice lands in data.augment
            {"device": "auto"},
        ]
    )
    model: ModelConfig = MISSING  # type: ignore[assignment]
    init: InitConfig = MISSING  # type: ignore[assignment]
    optimizer: OptimizerConfig = MISSING  # type: ignore[assignment]
    schedule: ScheduleConfig = MISSING  # type: ignore[assignment]
    data: DataConfig = MISSING  # type: ignore[assignment]
    device: DeviceConfig = MISSING  # type: ignore[assignment]
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    seed: int = 0
    name: str = "${model.name}-${data.name}"  # the run folder's name after its time
    resume: str | None = None  # a run folder to continue from its last checkpoint
    quick: bool = False  # with experiment=X: X's small size (its `# quick:` header line)


# Every choice a user can type, with its one-line description (`dlrun list`) and
# what makes the choice what it is: values for the group's dataclass, or a
# dataclass of its own whose defaults are the choice's. Defaults stay in one place.
CHOICES: dict[str, dict[str, tuple[str, dict[str, Any] | type]]] = {
    "model": {
        "mlp": ("fully connected net: depth x width, activation, dropout, bottleneck", MLPConfig),
        "cnn1d": ("1-D convolutions over a sequence (MNIST-1D), then a linear head", {}),
        "cnn2d": ("2-D convolutions over an image (digits), then a linear head", {}),
        "deep_linear": ("the lecture's linear network W_L...W_1 x: no nonlinearity", {}),
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
}

SCHEMAS: dict[str, type] = {
    "model": ModelConfig,
    "init": InitConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "data": DataConfig,
    "data/augment": AugmentConfig,
    "device": DeviceConfig,
}


def choice_node(group: str, choice: str) -> Any:
    """The dataclass instance that `group=choice` selects."""
    values = CHOICES[group][choice][1]
    if isinstance(values, type):
        return values(name=choice)
    return SCHEMAS[group](name=choice, **values)
