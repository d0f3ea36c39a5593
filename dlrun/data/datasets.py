"""Where samples come from: the built-in data sets, generated offline (the user's files: dlrun.data.files).

Each builder returns numpy arrays (x_trainval, y_trainval, x_test, y_test,
extras); dlrun.data.tensors splits, standardises and moves them to the device.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from dlrun.config.schema import DataConfig
from dlrun.data.files import build_custom, build_file, split_test
from dlrun.errors import DataError
from dlrun.folders.runs import atomic_write


def cache_dir() -> Path:
    root = os.environ.get("DLRUN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dlrun"
    )
    return Path(root)


def mnist1d_settings(cfg: DataConfig) -> dict:
    """The generator's settings that dlrun changes, and the package version that fixes the rest."""
    from importlib.metadata import version

    return {
        "num_samples": cfg.n_samples,
        "train_split": 1.0 - cfg.test_fraction,
        "seed": cfg.data_seed,
        "mnist1d": version("mnist1d"),
    }


def mnist1d_cache_file(cfg: DataConfig) -> Path:
    """Where the generated MNIST-1D arrays of these settings are cached (x, y, x_test, y_test)."""
    key = json.dumps(mnist1d_settings(cfg), sort_keys=True).encode()
    return cache_dir() / f"mnist1d-{hashlib.sha256(key).hexdigest()[:16]}.npz"


def build_mnist1d(cfg: DataConfig):
    """MNIST-1D generated offline by the `mnist1d` package, cached by its arguments.

    A cache hit reads one .npz without importing the package (which imports
    matplotlib's pyplot: most of a second). The key is the settings dlrun
    changes plus the package's version, whose defaults fix the rest.
    """
    settings = mnist1d_settings(cfg)
    path = mnist1d_cache_file(cfg)
    if path.exists():
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    else:
        from mnist1d.data import get_dataset_args, make_dataset
        from mnist1d.utils import ObjectView

        args = get_dataset_args(as_dict=True)
        args.pop("url", None)  # never the download path
        args.update({k: v for k, v in settings.items() if k in args})
        d = make_dataset(ObjectView(dict(args)))
        arrays = {k: d[k] for k in ("x", "y", "x_test", "y_test")}
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic: parallel jobs never read half a file, a full disk leaves none
        atomic_write(path, lambda tmp: _savez(tmp, arrays))
    return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], {}


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append .npz to a name
        np.savez(f, **arrays)


def build_digits(cfg: DataConfig):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images[:, None, :, :].astype(np.float32)  # (N, 1, 8, 8)
    return (*split_test(x, d.target, cfg), {})


def build_moons(cfg: DataConfig):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=cfg.data_seed)
    return (*split_test(x, y, cfg), {})


def build_circles(cfg: DataConfig):
    from sklearn.datasets import make_circles

    x, y = make_circles(
        n_samples=cfg.n_samples, noise=cfg.noise, factor=0.5, random_state=cfg.data_seed
    )
    return (*split_test(x, y, cfg), {})


def build_spirals(cfg: DataConfig, n_arms: int = 3):
    rng = np.random.default_rng(cfg.data_seed)
    per_arm = cfg.n_samples // n_arms
    xs, ys = [], []
    for arm in range(n_arms):
        r = np.linspace(0.05, 1.0, per_arm)
        theta = 4.0 * r + 2 * np.pi * arm / n_arms + rng.normal(0, cfg.noise, per_arm)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(per_arm, arm))
    return (*split_test(np.concatenate(xs), np.concatenate(ys), cfg), {})


def true_function(x: np.ndarray) -> np.ndarray:
    """The regression task's true function f(x) = sin(2 pi x) + x on [-1, 1]."""
    return np.sin(2 * np.pi * x) + x


def build_regression(cfg: DataConfig):
    # With data.data_seed=null every run seed draws a new training set: what the
    # variance of the bias-variance decomposition is measured over.
    rng = np.random.default_rng(cfg.data_seed)
    x = rng.uniform(-1, 1, size=(cfg.n_samples, 1))
    y = true_function(x) + rng.normal(0, cfg.noise, size=x.shape)
    n_test = int(round(cfg.n_samples * cfg.test_fraction))
    grid = np.linspace(-1, 1, 201)[:, None]
    extras = {"x_grid": grid, "f_grid": true_function(grid), "noise_std": np.array(cfg.noise)}
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test], extras


def build_quadratic(cfg: DataConfig):
    from dlrun.data.quadratic import build_quadratic as build

    return build(cfg)


BUILDERS = {
    "mnist1d": build_mnist1d,
    "digits": build_digits,
    "moons": build_moons,
    "circles": build_circles,
    "spirals": build_spirals,
    "regression": build_regression,
    "quadratic": build_quadratic,
    "table": build_file,
    "npz": build_file,
}


def load_samples(cfg: DataConfig):
    """(x_trainval, y_trainval, x_test, y_test, extras) of the data set `cfg.name`."""
    # data=custom, or a choice of the user's own (--config-dir) that names a _target_
    if cfg.name == "custom" or (hasattr(cfg, "get") and cfg.get("_target_") is not None):
        return build_custom(cfg)
    if cfg.name not in BUILDERS:
        raise DataError(f"unknown data set {cfg.name!r}; choose from {sorted(BUILDERS)}")
    return BUILDERS[cfg.name](cfg)
