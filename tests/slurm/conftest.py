"""Tests against a live SLURM cluster (`tests/slurm/cluster.sh up`), marked `slurm`.

Deselected by default (pyproject's addopts); `.ci/run` brings a cluster up and
runs `pytest -m slurm tests/slurm`. Without a reachable cluster they skip and
say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def cluster_missing() -> str | None:
    """Why the live tests cannot run here, or None."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on the PATH (tests/slurm/cluster.sh up installs SLURM)"
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return 'SLURM_CONF is unset: eval "$(tests/slurm/cluster.sh env)"'
    try:
        out = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if out.returncode != 0 or not out.stdout.strip():
        return f"the cluster of SLURM_CONF={conf} does not answer (tests/slurm/cluster.sh up)"
    return None


@pytest.fixture(scope="session", autouse=True)
def live_cluster():
    reason = cluster_missing()
    if reason:
        pytest.skip(reason)
