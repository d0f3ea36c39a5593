"""Where work runs: the device of a run, and the CPUs and GPUs of parallel sweep jobs.

Nothing here imports torch at module level: `dlrun --help` and Hydra's
resolvers (the parallel launcher's job count) use it before any training.
"""

from __future__ import annotations

import os
from typing import Any

from dlrun.errors import ConfigError


def resolve_device(name: str):
    """`device=auto|cpu|cuda|cuda:k|mps` -> a torch.device, refusing one that is not there."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is visible (try device=auto or cpu)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps but Apple's Metal backend is not available")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ConfigError(f"device={name!r}: choose from auto, cpu, cuda, mps")
    return torch.device(name)


def cpu_count() -> int:
    """CPUs this process may use (SLURM and taskset restrict it below os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_n_jobs() -> int:
    """Parallel local jobs (hydra/launcher=parallel): one per GPU, else one per CPU."""
    import torch

    n_gpus = torch.cuda.device_count()
    return n_gpus if n_gpus > 0 else cpu_count()


def threads_per_job(launcher: dict[str, Any], n_cpus: int) -> int | None:
    """Torch threads for one job so that parallel jobs share the CPUs; None: torch's default."""
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    n_jobs = launcher.get("n_jobs")
    if n_jobs is not None:
        if n_jobs < 0:  # joblib's -1 is every CPU, -2 all but one
            n_jobs = n_cpus + 1 + n_jobs
        return max(1, n_cpus // max(1, n_jobs))
    if "submitit" in str(launcher.get("_target_", "")):
        return 1  # submitit_local starts every job at once; SLURM grants one CPU unless asked
    return None  # the basic launcher runs one job at a time


def place_device(name: str, job_num: int, n_gpus: int) -> str:
    """Round robin over the GPUs a job sees: job k runs on cuda:(k mod n) when n > 1."""
    if n_gpus > 1 and name in ("auto", "cuda"):
        return f"cuda:{job_num % n_gpus}"
    return name
