"""Where work runs: the device of a run, its CPU threads, and the CPUs and GPUs of sweep jobs.

Nothing here imports torch at module level: `dlrun --help` and Hydra's
resolvers (the parallel launcher's job count) use it before any training.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
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
    """A job's share of the CPUs when parallel jobs run side by side; None: no share."""
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():  # what SLURM granted this job
        return int(os.environ["SLURM_CPUS_PER_TASK"])
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


# --- threads that fit the machine ----------------------------------------------------

LOAD_WINDOW_S = 60.0  # os.getloadavg()[0] is an exponential average over this window
IDLE_SLACK = 0.25  # a core this little busy counts as free: an idle machine's load is rarely 0


@dataclass(frozen=True)
class Threads:
    """Torch's CPU threads for a run, and why that many (one phrase, printed and recorded)."""

    n: int
    reason: str

    def describe(self) -> str:
        return f"{self.n} thread{'s' if self.n != 1 else ''}: {self.reason}"


_chosen: list[Threads] = []  # the choice in force: torch's thread count is per process too


def choose_threads(requested: int | None, share: int | None = None) -> Threads:
    """`trainer.threads`, else the CPUs this process may use now, at least 1.

    The least of: the CPUs it may run on (affinity), what SLURM granted, a
    cgroup CPU quota, a sweep job's `share` of the CPUs, and the cores other
    processes leave free: the machine's cores less the 1-minute load average,
    less this process's own part in that average.
    """
    if requested is not None:
        return Threads(requested, f"trainer.threads={requested}")
    limits = [(cpu_count(), "CPU affinity"), (slurm_cpus(), "SLURM_CPUS_PER_TASK")]
    limits += [(cgroup_cpus(), "cgroup CPU quota"), (share, "this job's share of the sweep")]
    n, source = min((n, source) for n, source in limits if n)  # affinity is always there
    allowed = f"{n} CPU{'s' if n > 1 else ''} allowed ({source})"
    load = load_average()
    if load is None:
        return Threads(n, allowed)
    own = min(load, own_load())
    machine = machine_cpus()
    free = max(0, math.floor(machine - (load - own) + IDLE_SLACK))
    busy = f"load average {load:.2f}, {own:.2f} of it this process"
    return Threads(max(1, min(n, free)), f"{allowed}, {free} of {machine} free ({busy})")


def apply_threads(choice: Threads) -> Threads:
    """Set torch's thread count to the choice and keep it as the one in force."""
    import torch

    torch.set_num_threads(choice.n)
    _chosen[:] = [choice]
    return choice


def threads_in_use() -> Threads:
    """The thread count torch uses now, with the reason it was chosen."""
    import torch

    n = torch.get_num_threads()
    if _chosen and _chosen[0].n == n:
        return _chosen[0]
    return Threads(n, "set outside dlrun")


# Where each number comes from: small readers, so a test can stand in for each source.


def slurm_cpus() -> int | None:
    value = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None


def machine_cpus() -> int:
    """Every CPU of the machine: the load average counts runnable tasks on all of them."""
    return os.cpu_count() or 1


def own_load() -> float:
    """This process's part in the 1-minute load average.

    Its CPU time over its life as a steady rate, and the share of the average
    that a rate held for that long builds up: 1 - exp(-age / 60 s).
    """
    age = process_age_s()
    if not age or age <= 0:
        return 0.0
    return time.process_time() / age * (1 - math.exp(-age / LOAD_WINDOW_S))


def process_age_s(stat: Path = Path("/proc/self/stat"), uptime: Path = Path("/proc/uptime")):
    """Seconds since this process started (Linux), None where /proc cannot tell."""
    try:
        started = int(stat.read_text().rsplit(")", 1)[1].split()[19])  # field 22: start time
        return float(uptime.read_text().split()[0]) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")):
    """CPUs a cgroup CPU quota allows (rounded up), the tightest on the way to the root; None: none.

    cgroup v2: `cpu.max` holds "<quota> <period>" or "max <period>"; v1:
    cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us under the cpu controller.
    """
    try:
        lines = own.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            files = [(d / "cpu.max", None) for d in _up(root, path)]
        elif "cpu" in controllers.split(","):
            base = root / controllers if (root / controllers).is_dir() else root / "cpu"
            files = [(d / "cpu.cfs_quota_us", d / "cpu.cfs_period_us") for d in _up(base, path)]
        else:
            continue
        quotas += [q for q in map(_quota, files) if q is not None]
    return max(1, math.ceil(min(quotas))) if quotas else None


def _up(base: Path, path: str) -> list[Path]:
    """The cgroup's folder and each one above it, up to `base`."""
    parts = [p for p in path.strip().split("/") if p and p != ".."]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def _quota(files: tuple[Path, Path | None]) -> float | None:
    """CPUs one cgroup folder's quota allows, None: no quota (or no such file)."""
    limit, period = files
    try:
        words = limit.read_text().split()
        if period is not None:
            words = [words[0], period.read_text().strip()]
        quota, length = float(words[0]), float(words[1])
    except (OSError, IndexError, ValueError):  # "max": no quota
        return None
    return quota / length if quota > 0 and length > 0 else None
