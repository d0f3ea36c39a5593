"""What SLURM can grant and what it is doing, through its commands (sinfo, squeue, scancel).

No Hydra and no submitit here: plain values in, plain values out, so the
rules are tested against recorded command output (tests/test_slurm_cluster.py)
as well as a live cluster (tests/slurm/).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dlrun.errors import UsageError

DEFAULT_CPUS = 1  # CPUs per job when trainer.threads is null: small models train well on one
# A task in these states is over; one without a result after `lost_after_s` is lost.
FINAL = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
FINAL |= {"PREEMPTED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT"}
# Pending reasons that never clear as submitted (the request exceeds the partition's limits).
NEVER = {"PartitionConfig", "PartitionTimeLimit", "PartitionNodeLimit"}


@dataclass
class Request:
    """What each job of the sweep asks for; `why` names the key each value came from."""

    cpus: int
    mem_gb: int | None
    gpus: int
    minutes: int
    partition: str | None = None
    why: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        mem = f", {self.mem_gb} GB" if self.mem_gb else ""
        gpus = f", {self.gpus} GPU" if self.gpus else ""
        return f"{self.cpus} CPU{mem}{gpus}, {self.minutes} min each"


def size(launcher: dict, device: str, threads: int | None) -> Request:
    """The request of one job: the launcher's explicit values, else sized from the job.

    CPUs: hydra.launcher.cpus_per_task, else trainer.threads, else DEFAULT_CPUS.
    GPUs: hydra.launcher.gpus_per_node, else 1 when the job will use CUDA
    (device=cuda..., or device=auto with hydra.launcher.nodes_have_gpus=true).
    """
    why = {}
    cpus = launcher.get("cpus_per_task")
    if cpus is not None:
        why["cpus"] = f"hydra.launcher.cpus_per_task={cpus}"
    elif threads:
        cpus, why["cpus"] = threads, f"trainer.threads={threads}"
    else:
        cpus, why["cpus"] = DEFAULT_CPUS, "dlrun's default"
    gpus = launcher.get("gpus_per_node")
    if gpus is not None:
        why["gpus"] = f"hydra.launcher.gpus_per_node={gpus}"
    else:
        cuda = device.startswith("cuda") or (device == "auto" and launcher.get("nodes_have_gpus"))
        gpus = 1 if cuda else 0
        why["gpus"] = f"device={device}"
    mem_gb = launcher.get("mem_gb")
    if launcher.get("mem_per_cpu") or launcher.get("mem_per_gpu"):
        mem_gb = None  # sbatch takes one of --mem, --mem-per-cpu, --mem-per-gpu
    why["mem"] = f"hydra.launcher.mem_gb={mem_gb}"
    why["time"] = f"hydra.launcher.timeout_min={launcher.get('timeout_min')}"
    return Request(
        int(cpus), mem_gb, int(gpus), int(launcher.get("timeout_min") or 60),
        launcher.get("partition"), why,
    )  # fmt: skip


def largest(requests: list[Request]) -> Request:
    """One request that covers every job's (the sweep is one array: one size for all)."""
    first = requests[0]
    top = Request(first.cpus, first.mem_gb, first.gpus, first.minutes, first.partition, first.why)
    for r in requests[1:]:
        if r.cpus > top.cpus:
            top.cpus, top.why = r.cpus, {**top.why, "cpus": r.why["cpus"]}
        if r.gpus > top.gpus:
            top.gpus, top.why = r.gpus, {**top.why, "gpus": r.why["gpus"]}
    return top


def command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a SLURM client command; a missing or unreachable SLURM is a one-line UsageError."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise UsageError(
            f"hydra/launcher=slurm: SLURM's commands ({args[0]}, sbatch) are not on the PATH: "
            "run the sweep on the cluster's login node"
        ) from None
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"hydra/launcher=slurm: {args[0]} did not answer in {timeout:.0f} s"
        ) from None


@dataclass
class Node:
    name: str
    partition: str
    default: bool  # the cluster's default partition (sinfo marks it with *)
    cpus: int
    mem_mb: int
    gpus: int
    max_minutes: float  # the partition's time limit; inf: none


def gpu_count(gres: str) -> int:
    """GPUs in a sinfo %G field: `gpu:4`, `gpu:a100:2(S:0-1)`, `gpu:2,shard:8`, `(null)`."""
    return sum(int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))


def minutes(limit: str) -> float:
    """A sinfo %l time limit in minutes: `infinite`, `1-00:00:00`, `2:00:00`, `30:00`."""
    if limit.strip().lower() in ("infinite", "unlimited", "n/a", ""):
        return float("inf")
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + s / 60


def parse_nodes(text: str) -> list[Node]:
    """`sinfo -h -N -o '%N|%P|%c|%m|%G|%l'` -> one Node per node and partition."""
    nodes = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        name, part, cpus, mem, gres, limit = parts
        mem_mb = int(re.sub(r"\D", "", mem) or 0)  # "22644", "22644+" for mixed nodes
        nodes.append(
            Node(name, part.rstrip("*"), part.endswith("*"), int(re.sub(r"\D", "", cpus) or 0),
                 mem_mb, gpu_count(gres), minutes(limit))
        )  # fmt: skip
    return nodes


def nodes() -> list[Node]:
    out = command("sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G|%l")
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"hydra/launcher=slurm: sinfo failed: {first}")
    return parse_nodes(out.stdout)


def refusal(request: Request, known: list[Node]) -> str | None:
    """Why no node can ever run `request` (one line naming the resource), or None if one can."""
    if request.partition:
        pool = [n for n in known if n.partition == request.partition]
        where = f"partition {request.partition}"
        if not pool:
            names = ", ".join(sorted({n.partition for n in known})) or "none"
            return f"hydra.launcher.partition={request.partition}: no such partition (SLURM has: {names})"
    else:
        pool = [n for n in known if n.default] or known
        where = f"the default partition {pool[0].partition}" if pool else "this cluster"
        if not pool:
            return "hydra/launcher=slurm: sinfo lists no nodes"
    need = [
        ("cpus", request.cpus, lambda n: n.cpus, "CPUs"),
        ("mem", (request.mem_gb or 0) * 1024, lambda n: n.mem_mb, "MB of memory"),
        ("gpus", request.gpus, lambda n: n.gpus, "GPUs"),
        ("time", request.minutes, lambda n: n.max_minutes, "minutes"),
    ]
    for key, wanted, offer, unit in need:
        best = max(offer(n) for n in pool)
        if wanted > best:
            hint = " (set device=cpu, or gpus_per_node)" if key == "gpus" else ""
            return (
                f"{request.why[key]} asks each job for {wanted:g} {unit}, but the largest node "
                f"of {where} offers {best:g}{hint}"
            )
    fits = [n for n in pool if all(w <= offer(n) for _, w, offer, _ in need)]
    if not fits:
        return f"no node of {where} has {request} together"
    return None


def check(request: Request) -> None:
    """UsageError (one line) when SLURM can never run a job of this size."""
    reason = refusal(request, nodes())
    if reason:
        raise UsageError(reason)


def queue(array_id: str) -> dict[str, tuple[str, str]] | None:
    """{task id: (state, reason)} of one submission, finished tasks too until SLURM forgets them.

    None when squeue cannot answer now (the controller restarting, a timeout):
    no task is judged from that. An id SLURM has forgotten (MinJobAge) is `{}`.
    """
    try:
        out = command("squeue", "-h", "-r", "-t", "all", "-j", array_id, "-o", "%i|%T|%r")
    except UsageError:
        return None
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return None
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


class Watch:
    """Which tasks are lost (over, or gone from the queue, without a result) and which pend why.

    A task counts as lost only after `grace_s` without a result in a final
    state or absent from squeue: the result file may reach a shared file
    system late, and a requeued task passes through states that are not final.
    """

    def __init__(self, grace_s: float, pending_every_s: float, clock: Callable = time.monotonic):
        self.grace_s, self.pending_every_s, self.clock = grace_s, pending_every_s, clock
        self.gone_since: dict[str, float] = {}
        self.last: dict[str, str] = {}
        self.reported = clock()

    def lost(self, tasks: set[str], states: dict[str, tuple[str, str]]) -> dict[str, str]:
        """{task: its last state seen ('CANCELLED', 'gone from squeue')} for tasks now lost."""
        now, verdict = self.clock(), {}
        for task in tasks:
            state, reason = states.get(task, (None, ""))
            if state is not None:
                self.last[task] = state
            if state == "PENDING" and reason in NEVER:
                verdict[task] = f"PENDING ({reason}: never runs as submitted)"
            elif state is None or state.split()[0] in FINAL:
                since = self.gone_since.setdefault(task, now)
                if now - since >= self.grace_s:
                    verdict[task] = self.last.get(task, "gone from squeue")
            else:
                self.gone_since.pop(task, None)  # PENDING, RUNNING, COMPLETING, REQUEUED...
        return verdict

    def pending(self, tasks: set[str], states: dict[str, tuple[str, str]]) -> dict[str, str]:
        """{task: reason} of pending tasks, every `pending_every_s` (else empty)."""
        now = self.clock()
        if now - self.reported < self.pending_every_s:
            return {}
        self.reported = now
        return {t: states[t][1] for t in tasks if t in states and states[t][0] == "PENDING"}


def cancel(task: str) -> None:
    command("scancel", task)
