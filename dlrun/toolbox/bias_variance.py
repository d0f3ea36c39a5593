"""The bias–variance decomposition of a regression model's error, measured over seeds.

With f the true function and the predictions of several seeds on one grid,

    bias² = mean over x of (mean over seeds of ŷ(x) − f(x))²
    variance = mean over x of the variance over seeds of ŷ(x)     (ddof 0)
    noise = noise_std²

so bias² + variance is the mean over seeds of the grid MSE against f, and
adding the noise gives the expected error on a fresh noisy target.
"""

from __future__ import annotations

import numpy as np


def decompose(y_preds: list[np.ndarray], f_true: np.ndarray, noise_std: float) -> dict[str, float]:
    """bias², variance and noise of predictions from several seeds on one grid (the formulas above)."""
    f = np.asarray(f_true, dtype=float).reshape(-1)
    y = np.stack([np.asarray(p, dtype=float).reshape(-1) for p in y_preds])  # (seeds, grid)
    bias2 = float(np.mean((y.mean(axis=0) - f) ** 2))
    variance = float(np.mean(y.var(axis=0)))
    noise = float(noise_std) ** 2
    return {
        "bias2": bias2,
        "variance": variance,
        "noise": noise,
        "total": bias2 + variance + noise,
        "n": len(y_preds),
    }
