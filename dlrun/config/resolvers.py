"""dlrun's OmegaConf resolvers: unique folders, names, jobs per machine, step sizes.

Registered before any composition (dlrun.config.compose.setup_hydra) and at
the import of the sweep job module, whose workers resolve `hydra.sweep.subdir`
themselves.

The textbook step sizes are those of the ill-conditioned quadratic
(data=quadratic, dlrun/data/quadratic.py): with the training Hessian's
eigenvalues log-spaced in [L/kappa, L], L = 2, gradient descent and Polyak's
heavy ball (Polyak 1964; Nesterov, "Introductory Lectures on Convex
Optimization", 2004; Goh, "Why Momentum Really Works", Distill 2017) are tuned by

    gradient descent:  lr = 2 / (L + mu)
    heavy ball:        lr = 4 / (sqrt(L) + sqrt(mu))^2,  momentum = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2
"""

from __future__ import annotations

import math

L_MAX = 2.0  # largest Hessian eigenvalue of data=quadratic (the bias direction has exactly this curvature)


def _default_n_jobs() -> int:
    from dlrun.placement import default_n_jobs

    return default_n_jobs()


def register_resolvers() -> None:
    """dlrun's resolvers (idempotent).

    Launcher workers (joblib, submitit) resolve `hydra.sweep.subdir` themselves,
    so dlrun.sweeps.job calls this at import: unpickling the sweep callback in a
    worker registers them before Hydra needs them. `dlrun_unique` is cached:
    every later resolution (and the copies Hydra sends to workers) sees the
    folder created the first time.
    """
    from omegaconf import OmegaConf

    from dlrun import paths

    if not OmegaConf.has_resolver("dlrun_unique"):
        OmegaConf.register_new_resolver("dlrun_unique", paths.unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("dlrun_slug"):
        OmegaConf.register_new_resolver("dlrun_slug", paths.slug)
    if not OmegaConf.has_resolver("dlrun_name"):
        OmegaConf.register_new_resolver("dlrun_name", paths.cut_name)
    if not OmegaConf.has_resolver("dlrun_n_jobs"):
        OmegaConf.register_new_resolver("dlrun_n_jobs", _default_n_jobs, use_cache=True)
    if not OmegaConf.has_resolver("dlrun_is_set"):
        # experiments/early_stopping.yaml: restore the best weights only when stopping early
        OmegaConf.register_new_resolver("dlrun_is_set", lambda value: value is not None)
    if not OmegaConf.has_resolver("dlrun_textbook_lr"):
        # experiments/optimizers_kappa.yaml: step sizes tuned from the quadratic's curvature
        OmegaConf.register_new_resolver("dlrun_textbook_lr", textbook_lr)
        OmegaConf.register_new_resolver("dlrun_textbook_momentum", textbook_momentum)
    if not OmegaConf.has_resolver("dlrun_per_choice"):
        # experiments/optimizers.yaml: each optimizer's step, momentum's at SGD's effective step
        OmegaConf.register_new_resolver("dlrun_per_choice", per_choice)


def textbook_lr(optimizer: str, condition: float) -> float:
    mu = L_MAX / float(condition)
    if optimizer == "momentum":
        return 4.0 / (math.sqrt(L_MAX) + math.sqrt(mu)) ** 2
    return 2.0 / (L_MAX + mu)


def textbook_momentum(optimizer: str, condition: float) -> float:
    if optimizer != "momentum":
        return 0.0
    root = math.sqrt(float(condition))
    return ((root - 1.0) / (root + 1.0)) ** 2


def per_choice(choice: str, table: dict) -> float:
    """table[choice]: a value per group choice, for a sweep over the group (one line if absent)."""
    if choice not in table:
        raise ValueError(
            f"{choice} has no value in the table ({', '.join(table)}): set it yourself"
        )
    return table[choice]
