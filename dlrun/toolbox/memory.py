"""The memory a model needs beside what the machine has: one too large is refused before it exists.

`model.width=2000000000` asks for 16 GB in its first layer. Linux grants such
a request lazily, and the kernel's OOM killer ends the process (kill -9, no
message, a half-made run folder) once initialisation touches the pages. So a
built-in model is first built on PyTorch's meta device (shapes, no storage)
and its size compared with the memory the host has available.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dlrun.errors import ModelError

# weights, gradients, an optimizer's two moments (Adam's m and v), and update_cos's weights
# at the last epoch's end, their change since the one before, and the weights now while it
# measures the next change (dlrun.toolbox.diagnostics.Turning)
TRAINING_COPIES = 7


def available_bytes(device: torch.device) -> int:
    """Free memory of the device: CUDA's free memory, or the host's MemAvailable."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(build: Callable[[], nn.Module], what: str) -> None:
    """Refuse, in one line, a model whose training copies exceed the host's available memory."""
    try:
        with torch.device("meta"):
            meta = build()
    except RuntimeError as e:
        if "overflow" in str(e):  # one tensor of more than 2**63 bytes
            raise ModelError(f"{what}: too large to allocate ({str(e)[:120]})") from None
        return  # a model that cannot be built says why when it is built for real
    except Exception:
        return
    n = sum(p.numel() for p in meta.parameters())
    need = TRAINING_COPIES * sum(p.numel() * p.element_size() for p in meta.parameters())
    free = available_bytes(torch.device("cpu"))
    if need > free:
        raise ModelError(
            f"{what}: {n:,} parameters need about {need / 2**30:.1f} GiB to train (weights, "
            f"gradients, optimizer state, update_cos), and {free / 2**30:.1f} GiB of memory is available"
        )
