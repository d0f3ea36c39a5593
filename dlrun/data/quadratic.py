"""A least-squares problem with a chosen condition number (its textbook step sizes: dlrun.config.resolvers).

The training inputs are built so that the Hessian of the mean squared error of a
linear model (weights and bias) is exactly diag(lambda) with lambda log-spaced in
[L/kappa, L], L = 2: so `data.condition` is the condition number kappa itself.
Then, for gradient descent and Polyak's heavy ball (Polyak 1964; e.g. Nesterov,
"Introductory Lectures on Convex Optimization", 2004, and Goh, "Why Momentum
Really Works", Distill 2017), the textbook-tuned settings are

    gradient descent:  lr = 2 / (L + mu),  error shrinks by (kappa - 1) / (kappa + 1) per step
    heavy ball:        lr = 4 / (sqrt(L) + sqrt(mu))^2,  momentum = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2,
                       error shrinks by (sqrt(kappa) - 1) / (sqrt(kappa) + 1) per step

so steps to a tolerance grow like kappa and like sqrt(kappa): the lecture's
"quadratic acceleration". torch.optim.SGD's momentum (v = mu v + g, w -= lr v)
is exactly the heavy ball w' = w - lr g + mu (w - w_prev).
"""

from __future__ import annotations

import numpy as np

from dlrun.config.resolvers import L_MAX
from dlrun.errors import DataError


def eigenvalues(condition: float, dim: int) -> np.ndarray:
    return np.geomspace(L_MAX / condition, L_MAX, dim)


def build_quadratic(cfg, n_train: int = 200):
    """(x_trainval, y_trainval, x_test, y_test, extras) with an exact training Hessian.

    The first `n_train` rows are the training split (extras["presplit_train"]),
    the rest validation; inputs are not standardised (extras["standardize"]).
    """
    if cfg.condition < 1:
        raise DataError(f"data.condition={cfg.condition} must be at least 1")
    rng = np.random.default_rng(cfg.data_seed)
    dim = cfg.dim
    lam = eigenvalues(cfg.condition, dim)
    # Orthonormal columns orthogonal to the all-ones vector: centred inputs, so
    # the bias decouples from the weights in the Hessian.
    q, _ = np.linalg.qr(np.column_stack([np.ones(n_train), rng.normal(size=(n_train, dim))]))
    x_train = q[:, 1:] * np.sqrt(n_train * lam / 2.0)  # (2/n) X^T X = diag(lam)
    # Each eigendirection carries the same share 1/dim of the initial loss at w = 0.
    w_star = np.sqrt(2.0 / (dim * lam)) * rng.choice([-1.0, 1.0], size=dim)
    n_other = max(n_train // 4, 10)
    x_val = rng.normal(size=(n_other, dim)) * np.sqrt(lam / 2.0)
    x_test = rng.normal(size=(n_other, dim)) * np.sqrt(lam / 2.0)
    x_trainval = np.concatenate([x_train, x_val])
    extras = {"presplit_train": n_train, "standardize": False}
    return x_trainval, x_trainval @ w_star, x_test, x_test @ w_star, extras
