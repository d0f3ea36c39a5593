"""Where samples come from: the built-in data sets, generated offline, and the user's files.

Each builder returns numpy arrays (x_trainval, y_trainval, x_test, y_test,
extras); dlrun.data splits, standardises and moves them to the device.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from dlrun.config import DataConfig
from dlrun.errors import ConfigError, DataError
from dlrun.runs import atomic_write


def cache_dir() -> Path:
    root = os.environ.get("DLRUN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dlrun"
    )
    return Path(root)


def _split_test(x: np.ndarray, y: np.ndarray, cfg: DataConfig):
    rng = np.random.default_rng(cfg.data_seed)
    order = rng.permutation(len(y))
    n_test = int(round(len(y) * cfg.test_fraction))
    if n_test < 1 or n_test >= len(y):
        raise DataError(f"data.test_fraction={cfg.test_fraction} leaves no train or test samples")
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


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


def _load_file(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    if not cfg.path:
        raise DataError(f"data={cfg.name} needs data.path=<file>")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path={cfg.path}: no such file")
    if cfg.name == "npz":
        return _load_npz(path, cfg)
    return _load_table(path, cfg)


def _load_npz(path: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:  # never unpickle a file: it could run code
            if "x" not in f.files or "y" not in f.files:
                raise DataError(f"{path} must hold arrays 'x' and 'y' (has {f.files})")
            x, y = f["x"], f["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"data.path={cfg.path}: not a readable .npz file ({_first(e)})") from None
    where = f"data.path={cfg.path}:"
    if x.dtype.kind not in "biuf" or len(x) == 0:
        raise DataError(
            f"{where} x must be a non-empty array of numbers (has {x.dtype}, {x.shape})"
        )
    _check_finite(x.reshape(len(x), -1), [f"x[:, {i}]" for i in range(x[0].size)], where)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(
            f"{where} y holds nan or inf at sample {int(np.argwhere(~np.isfinite(y))[0][0])}"
        )
    if x.ndim > 1 and (x == x[:1]).all():
        raise DataError(f"{where} x is the same in every sample: nothing to learn from")
    return x, y


def _load_table(path: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    where = f"data.path={cfg.path}:"
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except ImportError:
        raise DataError(f"{where} reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as e:  # pandas raises many types for a malformed file
        raise DataError(f"{where} cannot read the table ({_first(e)})") from None
    if not cfg.target:
        raise DataError(f"data=table needs data.target=<column> (columns: {list(frame.columns)})")
    if cfg.target not in frame.columns:
        raise DataError(
            f"data.target={cfg.target} is not a column of {path.name}: {list(frame.columns)}"
        )
    if frame.empty:
        raise DataError(f"{where} the table has no rows")
    missing = frame[cfg.target].isna().to_numpy()
    if missing.any():
        raise DataError(f"data.target={cfg.target}: row {_row(missing)} has no label")
    y = frame.pop(cfg.target).to_numpy()
    for column in frame.columns:
        if frame[column].nunique(dropna=False) <= 1:
            raise DataError(f"{where} column {column!r} is the same in every row: drop it")
    numeric = frame.select_dtypes("number")
    _check_finite(numeric.to_numpy(dtype=np.float64), list(numeric.columns), where)
    blank = frame.isna().to_numpy()
    if blank.any():
        column = frame.columns[np.argwhere(blank)[0][1]]
        raise DataError(f"{where} column {column!r} has no value in row {_row(blank.any(1))}")
    x = pd.get_dummies(frame, dtype=np.float32).to_numpy(dtype=np.float32)
    return x, y


def _check_finite(x: np.ndarray, names: list, where: str) -> None:
    """A DataError naming the first input column that holds nan or inf."""
    bad = ~np.isfinite(x)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataError(f"{where} column {names[column]!r} holds {x[row, column]} in row {row + 1}")


def _row(mask: np.ndarray) -> int:
    """The first flagged row as a file's line reads it: 1 is the first row after the header."""
    return int(np.argmax(mask)) + 1


def _first(e: BaseException) -> str:
    return (" ".join(str(e).split()) or type(e).__name__)[:200]


def build_file(cfg: DataConfig):
    x, y = _load_file(cfg)
    if len(x) != len(y):
        raise DataError(f"{cfg.path}: x has {len(x)} rows but y has {len(y)}")
    return (*_split_test(np.asarray(x, dtype=np.float32), y, cfg), {})


def build_custom(cfg: DataConfig):
    """`data=custom`: the user's `data._target_` returns (x, y) or (x_train, y_train, x_test, y_test).

    Arrays or tensors; dlrun's own data keys are not passed, the user's are.
    With (x, y), data.test_fraction of the samples is held out as the test split.
    """
    from dataclasses import fields

    from dlrun.compose import instantiate
    from dlrun.config import DataConfig as Schema

    if cfg.get("_target_") in (None, "???"):
        raise DataError("data=custom needs data._target_=<module.function> (docs/custom.md)")
    own = {f.name for f in fields(Schema)}
    node = {key: value for key, value in cfg.items() if key not in own}
    try:
        out = instantiate(node)
    except ConfigError as e:
        raise DataError(f"data.{e}") from None
    if isinstance(out, dict):
        out = tuple(out[k] for k in ("x", "y", "x_test", "y_test") if k in out)
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 4):
        raise DataError(
            f"data._target_={cfg._target_} must return (x, y) or (x_train, y_train, x_test, y_test)"
        )
    arrays = [_as_array(a) for a in out]
    for x, y in zip(arrays[::2], arrays[1::2]):
        if len(x) != len(y):
            raise DataError(f"data._target_={cfg._target_}: x has {len(x)} rows but y has {len(y)}")
    if len(arrays) == 2:
        return (*_split_test(arrays[0].astype(np.float32), arrays[1], cfg), {})
    x_tv, y_tv, x_te, y_te = arrays
    return x_tv.astype(np.float32), y_tv, x_te.astype(np.float32), y_te, {}


def _as_array(a) -> np.ndarray:
    """numpy from a tensor (any device), array or list."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def build_quadratic(cfg: DataConfig):
    from dlrun.quadratic import build_quadratic as build

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
