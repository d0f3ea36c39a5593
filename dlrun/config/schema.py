"""The config schema: typed dataclasses, registered in Hydra's ConfigStore by dlrun.config.compose.

Defaults live here, with their units; the comment beside a field is its
description in `dlrun train --help`. Each config group's choices
(dlrun.config.choices) are stored as nodes of its dataclass, so `optimizer=adam`
selects a node and a typo or a wrong type fails at compose time. YAML in `conf/` only holds the primary
config's defaults list and Hydra's own settings; `experiments/` holds diffs.
This module imports no torch, so `dlrun --help` and `dlrun list` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlrun.config.claims import ClaimConfig

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
    kernel_size: int = 5  # CNNs only: every conv layer's kernel...
    first_kernel_size: int | None = None  # ...but the first layer's (None: kernel_size)
    batch_norm: bool = False  # BatchNorm after each hidden layer
    residual: bool = False  # mlp only: h = h + act(fc(h)) for hidden layers after the first
    bidirectional: bool = True  # gru only: read the sequence both ways


@dataclass
class MLPConfig(ModelConfig):
    """`model=mlp`, the default job's model, tuned on MNIST-1D: test accuracy 0.64-0.70
    over seeds 0-2 (2 CPU cores, about 5 s of training)."""

    width: int = 512
    dropout: float = 0.3


@dataclass
class CustomModelConfig:
    """`model=custom`: your own nn.Module (docs/custom.md).

    Built by hydra.utils.instantiate from `_target_` and your own keys
    (`+model.hidden=64`), plus `input_shape` and `n_outputs` when its
    signature takes them. Not a ModelConfig: dlrun's width, depth... mean
    nothing to your class, so they are not passed to it.
    """

    name: str = "custom"
    _target_: str = MISSING  # dotted path of an nn.Module class, or of a function returning one


@dataclass
class CNN1DConfig(ModelConfig):  # the MNIST-1D paper's CNN (batch_norm=false: exactly)
    width: int = 25
    depth: int = 3
    kernel_size: int = 3
    first_kernel_size: int | None = 5
    batch_norm: bool = True  # Adam at 1e-3 trains it in 100 epochs (0.78 -> 0.92 here)


@dataclass
class GRUConfig(ModelConfig):  # the MNIST-1D paper's GRU, reading both ways
    width: int = 6  # hidden units per direction
    depth: int = 1  # stacked GRU layers
    activation: str = "tanh"  # fixed by the GRU's gates; sets the initializers' gain


@dataclass
class InitConfig:
    name: str = "default"
    std: float = 0.01  # `normal` only
    value: float = 0.1  # `constant` only
    gain: float | None = None  # None: the activation's recommended gain


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3  # learning rate (step size)
    weight_decay: float = 0.0  # L2 coefficient (decoupled for adamw)
    momentum: float = 0.0  # sgd family (and rmsprop): the mu of v = mu v + g
    nesterov: bool = False  # Nesterov momentum (looks one step ahead)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam's moment decay rates
    eps: float = 1e-8  # added to denominators of the adaptive methods
    alpha: float = 0.99  # rmsprop's smoothing constant
    rho: float = 0.9  # adadelta's smoothing constant
    dampening: float = 0.0  # sgd family: fraction of the gradient left out of the momentum


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
    val_fraction: float = 0.1  # fraction of the training split used for validation (0: none)
    n_train: int | None = None  # train on a random subset of this many samples
    classes: list[int] | None = None  # keep only these labels (renumbered 0..k-1)
    label_noise: float = 0.0  # fraction of training labels replaced at random
    shuffle_positions: bool = False  # one fixed permutation of every sample's positions
    noise: float = 0.1  # synthetic sets: input noise (regression: target noise std)
    data_seed: int | None = 42  # seed of generated data (null: the run seed; regression only)
    condition: float = 100.0  # `quadratic`: condition number kappa of the Hessian
    dim: int = 20  # `quadratic`: number of input features
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class CustomDataConfig(DataConfig):
    """`data=custom`: your own function returning (x, y) or (x_train, y_train, x_test, y_test).

    dlrun's data keys (val_fraction, n_train, label_noise, augment...) apply as
    for any data set; your own keys (`+data.root=...`) go to the function.
    """

    _target_: str = MISSING  # dotted path of a function returning arrays or tensors


@dataclass
class EarlyStoppingConfig:
    patience: int | None = 20  # epochs without improvement (None: off)
    min_delta: float = 0.0  # smallest change that counts as an improvement
    monitor: str = "val_loss"  # a metrics.csv column; *_acc is maximised
    restore_best: bool = True  # test (and `last` state) with the best weights


@dataclass
class TrainerConfig:
    epochs: int = 100  # passes over the training set, at most
    steps: int | None = None  # optimizer steps to train for, instead of epochs (None: epochs)
    batch_size: int = 128  # samples per optimizer step
    shuffle: bool = True  # a new batch order every epoch (false: the same order every epoch)
    deterministic: bool = False  # torch.use_deterministic_algorithms
    # CPU threads for torch (None: the CPUs this process may use that the load average
    # says are free, within a sweep job's share: dlrun/placement.py)
    threads: int | None = None
    eval_batch_size: int = 4096  # samples per forward pass when evaluating (memory only)
    max_grad_norm: float | None = None  # gradient clipping (None: off)
    layer_stats: bool = True  # write layers.csv
    progress: bool = True  # rich progress bar
    target_loss: float | None = None  # stop once the training loss is at or below this
    divergence_loss: float = 1e6  # train loss above this (or nan) ends the run as diverged
    # Seconds between resumable checkpoints (and one after the first epoch); stretched
    # so that saving stays under 2% of the run. A kill loses at most this much training.
    checkpoint_every_s: float = 30.0
    # 32 | tf32 (TensorFloat-32 products on NVIDIA GPUs) | bf16 (bfloat16 autocast of the
    # forward pass and loss, float32 weights and optimizer): dlrun/run/speed.py
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
    reset_head: bool = False  # keep the head freshly initialised (needs a `head` module)
    # Overrides (key=value) that train the source first, into transfer.source,
    # when that folder has no checkpoint yet: a transfer experiment in one command.
    pretrain: list[str] = field(default_factory=list)


@dataclass
class LoggerConfig:
    """Trackers that get each epoch's numbers besides the run folder (always written).

    Choices only switch their own tracker on, so they combine: logger=[csv,tensorboard].
    """

    tensorboard: bool = False  # event files in the run folder: tensorboard --logdir outputs
    mlflow: bool = False  # one MLflow run per run, nested under a sweep's parent run
    tracking_uri: str | None = (
        None  # MLflow's store (None: MLFLOW_TRACKING_URI, else MLflow's default)
    )
    experiment: str = "dlrun"  # the MLflow experiment runs go to


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
            {"logger": "csv"},
        ]
    )
    # Any: a built-in choice is a typed node, `custom` (and a user's YAML choice) a plain one
    model: Any = MISSING
    init: InitConfig = MISSING  # type: ignore[assignment]
    optimizer: OptimizerConfig = MISSING  # type: ignore[assignment]
    schedule: ScheduleConfig = MISSING  # type: ignore[assignment]
    data: Any = MISSING
    device: DeviceConfig = MISSING  # type: ignore[assignment]
    logger: LoggerConfig = MISSING  # type: ignore[assignment]
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    seed: int = 0  # initialisation, batch order, validation split
    name: str = "${model.name}-${data.name}"  # the run folder's name after its time
    resume: str | None = None  # a run folder to continue from its last checkpoint
    quick: bool = False  # with experiment=X: X's small size (its `# quick:` header line)
    claims: dict[str, ClaimConfig] = field(default_factory=dict)  # checks; training ignores them
