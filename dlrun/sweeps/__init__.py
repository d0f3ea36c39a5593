"""Sweeps: Hydra multiruns of `dlrun train -m`, and stacked replicas.

job (one job of a multirun, the sweep callback that keeps sweep.csv),
count (how many jobs a sweep runs: `job #4 (5 of 9)`, the time it has left),
plan (what a sweep varies and how many jobs it plans), workers (a joblib or
submitit_local sweep's workers stop with their driver),
batched (hydra/launcher=batched: compatible jobs trained as one stacked model),
replicas (grouping jobs into stacks, each replica's own run folder),
replica_loop (the stack's epoch loop), replica_steps (the replicas' optimizer
steps, one call where their settings agree), stacked (the stacked model). The
launcher plugins themselves live in hydra_plugins/ (Hydra finds them there);
a new launcher is a plugin there that calls this package.

May import run and every layer below it.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # `hydra.callbacks` in conf/train.yaml, and in every sweep's .hydra/config.yaml,
    # names dlrun.sweeps.SweepIndex: imported on first use, as Hydra instantiates it.
    if name == "SweepIndex":
        from dlrun.sweeps.job import SweepIndex

        return SweepIndex
    raise AttributeError(f"module 'dlrun.sweeps' has no attribute {name!r}")
