"""Data sets as tensors on the device: build, split, standardise, batch.

Small data sets live on the device for the whole run (the lecture: parameters
stay on the GPU and only minibatches move; at these sizes the data can stay
too). Minibatches are slices of a random permutation, not a per-sample loader.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dlrun.config import ConfigError, DataConfig


class DataError(ConfigError):
    """A data set that cannot be built from the given settings or file."""


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


def cache_dir() -> Path:
    root = os.environ.get("DLRUN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dlrun"
    )
    return Path(root)


# --- builders: each returns numpy (x_trainval, y_trainval, x_test, y_test, extras) ---


def _split_test(x: np.ndarray, y: np.ndarray, cfg: DataConfig):
    rng = np.random.default_rng(cfg.data_seed)
    order = rng.permutation(len(y))
    n_test = int(round(len(y) * cfg.test_fraction))
    if n_test < 1 or n_test >= len(y):
        raise DataError(f"data.test_fraction={cfg.test_fraction} leaves no train or test samples")
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def build_mnist1d(cfg: DataConfig):
    """MNIST-1D generated offline by the `mnist1d` package, cached by its arguments."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=True)
    args.update(num_samples=cfg.n_samples, train_split=1.0 - cfg.test_fraction, seed=cfg.data_seed)
    args.pop("url", None)  # never the download path
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"mnist1d-{key}.npz"
    if path.exists():
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    else:
        from mnist1d.utils import ObjectView

        d = make_dataset(ObjectView(dict(args)))
        arrays = {k: d[k] for k in ("x", "y", "x_test", "y_test")}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)  # atomic: parallel jobs never read half a file
    return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], {}


def build_digits(cfg: DataConfig):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images[:, None, :, :].astype(np.float32)  # (N, 1, 8, 8)
    return (*_split_test(x, d.target, cfg), {})


def build_moons(cfg: DataConfig):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=cfg.data_seed)
    return (*_split_test(x, y, cfg), {})


def build_circles(cfg: DataConfig):
    from sklearn.datasets import make_circles

    x, y = make_circles(
        n_samples=cfg.n_samples, noise=cfg.noise, factor=0.5, random_state=cfg.data_seed
    )
    return (*_split_test(x, y, cfg), {})


def build_spirals(cfg: DataConfig, n_arms: int = 3):
    rng = np.random.default_rng(cfg.data_seed)
    per_arm = cfg.n_samples // n_arms
    xs, ys = [], []
    for arm in range(n_arms):
        r = np.linspace(0.05, 1.0, per_arm)
        theta = 4.0 * r + 2 * np.pi * arm / n_arms + rng.normal(0, cfg.noise, per_arm)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(per_arm, arm))
    return (*_split_test(np.concatenate(xs), np.concatenate(ys), cfg), {})


def true_function(x: np.ndarray) -> np.ndarray:
    """The regression task's true function f(x) = sin(2 pi x) + x on [-1, 1]."""
    return np.sin(2 * np.pi * x) + x


def build_regression(cfg: DataConfig, seed: int):
    # With data.data_seed=null every run seed draws a new training set: what the
    # variance of the bias-variance decomposition is measured over.
    rng = np.random.default_rng(cfg.data_seed)
    x = rng.uniform(-1, 1, size=(cfg.n_samples, 1))
    y = true_function(x) + rng.normal(0, cfg.noise, size=x.shape)
    n_test = int(round(cfg.n_samples * cfg.test_fraction))
    grid = np.linspace(-1, 1, 201)[:, None]
    extras = {"x_grid": grid, "f_grid": true_function(grid), "noise_std": np.array(cfg.noise)}
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test], extras


def _load_file(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    if not cfg.path:
        raise DataError(f"data={cfg.name} needs data.path=<file>")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path={cfg.path}: no such file")
    if cfg.name == "npz":
        try:
            with np.load(path) as f:
                if "x" not in f.files or "y" not in f.files:
                    raise DataError(f"{path} must hold arrays 'x' and 'y' (has {f.files})")
                return f["x"], f["y"]
        except (OSError, ValueError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"data.path={cfg.path}: not a readable .npz file ({e})") from None
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except Exception as e:  # pandas raises many types for a malformed file
        raise DataError(f"data.path={cfg.path}: cannot read the table ({e})") from None
    if not cfg.target:
        raise DataError(f"data=table needs data.target=<column> (columns: {list(frame.columns)})")
    if cfg.target not in frame.columns:
        raise DataError(
            f"data.target={cfg.target} is not a column of {path.name}: {list(frame.columns)}"
        )
    y = frame.pop(cfg.target).to_numpy()
    x = pd.get_dummies(frame, dtype=np.float32).to_numpy(dtype=np.float32)
    return x, y


def build_file(cfg: DataConfig):
    x, y = _load_file(cfg)
    if len(x) != len(y):
        raise DataError(f"{cfg.path}: x has {len(x)} rows but y has {len(y)}")
    if np.isnan(np.asarray(x, dtype=np.float64)).any():
        raise DataError(f"{cfg.path}: the inputs contain missing values")
    return (*_split_test(np.asarray(x, dtype=np.float32), y, cfg), {})


BUILDERS = {
    "mnist1d": build_mnist1d,
    "digits": build_digits,
    "moons": build_moons,
    "circles": build_circles,
    "spirals": build_spirals,
    "table": build_file,
    "npz": build_file,
}


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
    if not 0.0 < cfg.val_fraction < 1.0:
        raise DataError(f"data.val_fraction={cfg.val_fraction} must be in (0, 1)")
    if not 0.0 <= cfg.label_noise <= 1.0:
        raise DataError(f"data.label_noise={cfg.label_noise} must be in [0, 1]")
    if cfg.data_seed is None:  # generated data drawn anew for every run seed
        cfg = _with_data_seed(cfg, seed)
    if cfg.name == "regression":
        x_tv, y_tv, x_te, y_te, extras = build_regression(cfg, seed)
    elif cfg.name == "quadratic":
        from dlrun.quadratic import build_quadratic

        x_tv, y_tv, x_te, y_te, extras = build_quadratic(cfg)
    elif cfg.name in BUILDERS:
        x_tv, y_tv, x_te, y_te, extras = BUILDERS[cfg.name](cfg)
    else:
        raise DataError(
            f"unknown data set {cfg.name!r}; choose from {sorted([*BUILDERS, 'regression'])}"
        )

    if cfg.classes is not None:
        keep = [int(c) for c in cfg.classes]
        tv, te = np.isin(y_tv, keep), np.isin(y_te, keep)
        if not tv.any():
            raise DataError(f"data.classes={keep}: no sample has these labels")
        x_tv, y_tv, x_te, y_te = x_tv[tv], np.asarray(y_tv)[tv], x_te[te], np.asarray(y_te)[te]
    task = infer_task(np.asarray(y_tv), cfg)
    if task == "classification":
        y_tv, y_te, n_out = encode_labels(np.asarray(y_tv), np.asarray(y_te))
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
        n_val = max(1, int(round(len(order) * cfg.val_fraction)))
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

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        xt = torch.as_tensor(((x - mean) / std).astype(np.float32)).to(device)
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


def _with_data_seed(cfg: DataConfig, seed: int) -> DataConfig:
    import dataclasses

    if dataclasses.is_dataclass(cfg):
        return dataclasses.replace(cfg, data_seed=seed)
    copy = cfg.copy()  # an OmegaConf node: a copy, so the run's config stays as typed
    copy.data_seed = seed
    return copy


def corrupt_labels(y: np.ndarray, fraction: float, n_classes: int, rng) -> np.ndarray:
    """Replace exactly round(fraction * n) labels by a different class chosen at random."""
    y = y.copy()
    n_flip = int(round(fraction * len(y)))
    idx = rng.choice(len(y), size=n_flip, replace=False)
    shift = rng.integers(1, n_classes, size=n_flip)  # never the original label
    y[idx] = (y[idx] + shift) % n_classes
    return y


def batches(n: int, batch_size: int, device: torch.device, generator: torch.Generator):
    """Index tensors for one epoch: slices of a random permutation, on the device."""
    perm = torch.randperm(n, device=device, generator=generator)
    return perm.split(batch_size)
