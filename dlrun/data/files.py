"""The user's own data: a CSV or Parquet table, an NPZ file, or data=custom's function.

Each is checked as it is read (missing or constant columns, nan or inf, ragged
rows) and refused in one line naming the file, the column and the row; an
NPZ file is never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dlrun.config.schema import DataConfig
from dlrun.errors import ConfigError, DataError


def split_test(x: np.ndarray, y: np.ndarray, cfg: DataConfig):
    rng = np.random.default_rng(cfg.data_seed)
    order = rng.permutation(len(y))
    n_test = int(round(len(y) * cfg.test_fraction))
    if n_test < 1 or n_test >= len(y):
        raise DataError(f"data.test_fraction={cfg.test_fraction} leaves no train or test samples")
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


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
    return (*split_test(np.asarray(x, dtype=np.float32), y, cfg), {})


def build_custom(cfg: DataConfig):
    """`data=custom`: the user's `data._target_` returns (x, y) or (x_train, y_train, x_test, y_test).

    Arrays or tensors; dlrun's own data keys are not passed, the user's are.
    With (x, y), data.test_fraction of the samples is held out as the test split.
    """
    from dataclasses import fields

    from dlrun.config.compose import instantiate
    from dlrun.config.schema import DataConfig as Schema

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
        return (*split_test(arrays[0].astype(np.float32), arrays[1], cfg), {})
    x_tv, y_tv, x_te, y_te = arrays
    return x_tv.astype(np.float32), y_tv, x_te.astype(np.float32), y_te, {}


def _as_array(a) -> np.ndarray:
    """numpy from a tensor (any device), array or list."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)
