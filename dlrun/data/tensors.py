"""Data sets as tensors on the device: split, standardise, move, batch.

Where the samples come from (generated sets, the user's files) is
dlrun.data.datasets. Small data sets live on the device for the whole run (the
lecture: parameters stay on the GPU and only minibatches move; at these sizes
the data can stay too). Minibatches are slices of a random permutation, not a
per-sample loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dlrun.config.schema import DataConfig
from dlrun.data.datasets import load_samples
from dlrun.errors import DataError

DEVICE_SHARE = 0.5  # data larger than this share of free GPU memory is streamed from the host


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    task: str  # "classification" | "regression"
    n_classes: int  # output width: classes, or target dimension for regression
    input_shape: tuple[int, ...]  # one sample's shape, e.g. (40,) or (1, 8, 8)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. the regression grid

    @property
    def n_out(self) -> int:
        return self.n_classes

    def describe(self) -> str:
        return (
            f"{self.task}, input {self.input_shape}, {self.n_classes} outputs, "
            f"train/val/test {len(self.train)}/{len(self.val)}/{len(self.test)}"
        )


def infer_task(y: np.ndarray, cfg: DataConfig) -> str:
    if cfg.task is not None:
        if cfg.task not in ("classification", "regression"):
            raise DataError(f"data.task={cfg.task}: expected classification or regression")
        return cfg.task
    if cfg.name in ("regression", "quadratic"):
        return "regression"
    if y.dtype.kind in "OUSb":
        return "classification"
    if y.dtype.kind in "iu" or (np.all(np.mod(y, 1) == 0) and len(np.unique(y)) <= 50):
        return "classification"
    return "regression"


def encode_labels(y_trainval: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Map any labels to 0..K-1; test labels unseen in training are an error."""
    classes, y_tv = np.unique(y_trainval, return_inverse=True)
    index = {c: i for i, c in enumerate(classes.tolist())}
    try:
        y_te = np.array([index[c] for c in y_test.tolist()], dtype=np.int64)
    except KeyError as e:
        raise DataError(f"test label {e} never occurs in the training split") from None
    return y_tv.astype(np.int64), y_te, len(classes)


def build_dataset(cfg: DataConfig, seed: int, device: torch.device) -> Dataset:
    """Build, split (train/val/test), standardise with training statistics, move to device."""
    if cfg.data_seed is None:  # generated data drawn anew for every run seed
        cfg = _with_data_seed(cfg, seed)
    x_tv, y_tv, x_te, y_te, extras = load_samples(cfg)
    if cfg.shuffle_positions:
        x_tv, x_te = shuffle_positions(x_tv), shuffle_positions(x_te)

    if cfg.classes is not None:
        keep = [int(c) for c in cfg.classes]
        tv, te = np.isin(y_tv, keep), np.isin(y_te, keep)
        if not tv.any():
            raise DataError(f"data.classes={keep}: no sample has these labels")
        x_tv, y_tv, x_te, y_te = x_tv[tv], np.asarray(y_tv)[tv], x_te[te], np.asarray(y_te)[te]
    task = infer_task(np.asarray(y_tv), cfg)
    if task == "classification":
        y_tv, y_te, n_out = encode_labels(np.asarray(y_tv), np.asarray(y_te))
        if n_out < 2:  # "trains" to loss 0 and accuracy 1 while learning nothing
            raise DataError(f"{_labels_of(cfg)} hold a single class: a classifier needs two")
    else:
        y_tv = np.asarray(y_tv, dtype=np.float32).reshape(len(y_tv), -1)
        y_te = np.asarray(y_te, dtype=np.float32).reshape(len(y_te), -1)
        n_out = y_tv.shape[1]

    # Validation is carved from the training split with the run seed; the test
    # split stays untouched until the end of training.
    rng = np.random.default_rng(seed)
    if "presplit_train" in extras:  # a builder that designed its training rows itself
        k = extras["presplit_train"]
        train_idx, val_idx = np.arange(k), np.arange(k, len(y_tv))
    else:
        order = rng.permutation(len(y_tv))
        # 0: no validation split, every training row trains (a paper's protocol)
        n_val = max(1, int(round(len(order) * cfg.val_fraction))) if cfg.val_fraction else 0
        val_idx, train_idx = order[:n_val], order[n_val:]
    if cfg.n_train is not None:
        if not 0 < cfg.n_train <= len(train_idx):
            raise DataError(f"data.n_train={cfg.n_train} must be in [1, {len(train_idx)}]")
        train_idx = train_idx[: cfg.n_train]
    x_tr, y_tr = x_tv[train_idx], y_tv[train_idx].copy()
    x_va, y_va = x_tv[val_idx], y_tv[val_idx]
    if task == "classification" and cfg.label_noise > 0:
        y_tr = corrupt_labels(y_tr, cfg.label_noise, n_out, rng)

    # Standardise with training statistics only: per feature for tables and
    # points, one scalar for signals and images (keeps translation invariance).
    per_feature = x_tr.ndim == 2 and cfg.name not in ("mnist1d",)
    axis = 0 if per_feature else None
    mean = x_tr.mean(axis=axis, keepdims=per_feature)
    std = x_tr.std(axis=axis, keepdims=per_feature) + 1e-8
    if not extras.get("standardize", True):  # the quadratic's spectrum is the point
        mean, std = 0.0, 1.0
    if extras.get("x_grid") is not None:
        extras["x_grid_std"] = ((extras["x_grid"] - mean) / std).astype(np.float32)

    # Inputs live on the device unless they would crowd out the model: then they
    # stay in host memory and each batch is copied over (to_device, below).
    n_bytes = 4 * sum(a.size for a in (x_tr, x_va, x_te))
    x_device = device if fits_on_device(n_bytes, device) else torch.device("cpu")

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        xt = torch.as_tensor(((x - mean) / std).astype(np.float32)).to(x_device)
        yt = torch.as_tensor(y).to(device)
        return Split(xt, yt)

    return Dataset(
        train=to_split(x_tr, y_tr),
        val=to_split(x_va, y_va),
        test=to_split(x_te, y_te),
        task=task,
        n_classes=int(n_out),
        input_shape=tuple(x_tr.shape[1:]),
        extras=extras,
    )


def _labels_of(cfg: DataConfig) -> str:
    """Where the labels come from, as the user typed it."""
    if cfg.name == "table":
        return f"the labels of data.target={cfg.target}"
    if cfg.classes is not None:
        return f"the samples of data.classes={list(cfg.classes)}"
    return f"the labels of data={cfg.name}" + (f" data.path={cfg.path}" if cfg.path else "")


def _with_data_seed(cfg: DataConfig, seed: int) -> DataConfig:
    import dataclasses

    if dataclasses.is_dataclass(cfg):
        return dataclasses.replace(cfg, data_seed=seed)
    copy = cfg.copy()  # an OmegaConf node: a copy, so the run's config stays as typed
    copy.data_seed = seed
    return copy


POSITIONS_SEED = 42  # the MNIST-1D paper's


def shuffle_positions(x: np.ndarray) -> np.ndarray:
    """Each sample's positions (flattened features) in one fixed order.

    np.random.RandomState(42).permutation is the legacy generator the paper seeds
    with np.random.seed(42), so 40 positions get exactly the paper's permutation.
    """
    order = np.random.RandomState(POSITIONS_SEED).permutation(int(np.prod(x.shape[1:])))
    return x.reshape(len(x), -1)[:, order].reshape(x.shape)


def corrupt_labels(y: np.ndarray, fraction: float, n_classes: int, rng) -> np.ndarray:
    """Replace exactly round(fraction * n) labels by a different class chosen at random."""
    y = y.copy()
    n_flip = int(round(fraction * len(y)))
    idx = rng.choice(len(y), size=n_flip, replace=False)
    shift = rng.integers(1, n_classes, size=n_flip)  # never the original label
    y[idx] = (y[idx] + shift) % n_classes
    return y


def batches(
    n: int, batch_size: int, device: torch.device, generator: torch.Generator, shuffle: bool = True
):
    """Index tensors for one epoch: slices of a random permutation (or of 0..n-1), on the device."""
    if not shuffle:
        return torch.arange(n, device=device).split(batch_size)
    perm = torch.randperm(n, device=device, generator=generator)
    return perm.split(batch_size)


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether a data set of `nbytes` should live on the device for the whole run."""
    if device.type != "cuda":
        return True  # the CPU's tensors are already in host memory; MPS shares it
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * free


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of host data on the device: pinned, copied without blocking the host.

    The caching host allocator keeps a pinned block until its copy has finished,
    so the next batch may be gathered while this one is in flight.
    """
    if batch.device == device:
        return batch
    return batch.pin_memory().to(device, non_blocking=True)
