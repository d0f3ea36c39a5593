"""How a run uses its device: arithmetic precision, torch.compile, cuDNN autotuning, streamed data.

`trainer.precision`:
  32    float32 everywhere (the default: exact, and what the tests pin).
  tf32  float32 storage, TensorFloat-32 matrix products and convolutions on NVIDIA GPUs
        from Ampere on (10 mantissa bits in the product, float32 accumulation);
        the same as 32 on a CPU.
  bf16  bfloat16 autocast of the forward pass and the loss; the weights, their gradients
        and the optimizer state stay float32 (master weights), so updates are not
        rounded away. No loss scaling is needed: bfloat16 has float32's exponent range.
`trainer.compile=true` runs the forward pass through `torch.compile(model,
mode=trainer.compile_mode)`; checkpoints, transfer and layer diagnostics keep
using the module itself, so state-dict names do not change. The first epochs pay
for compilation (seconds), and compiled dropout draws its masks from its own
generator, so a compiled run is not bit-for-bit the eager one. `default` mode
suits these small models; `reduce-overhead` adds CUDA graphs (less launch
overhead per step, more memory); `max-autotune` searches kernels for minutes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from dlrun.errors import ConfigError

PRECISIONS = ("32", "tf32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check(tcfg) -> None:
    if str(tcfg.precision) not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={tcfg.precision!r}: choose from {', '.join(PRECISIONS)}"
        )
    if tcfg.compile_mode not in COMPILE_MODES:
        raise ConfigError(
            f"trainer.compile_mode={tcfg.compile_mode!r}: choose from {', '.join(COMPILE_MODES)}"
        )


def configure(device: torch.device, tcfg) -> None:
    """Process-wide switches for this run's device: TF32, cuDNN's autotuner."""
    check(tcfg)
    if device.type == "cuda":
        tf32 = str(tcfg.precision) == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        # Autotuning picks the fastest convolution algorithm per shape: shapes are
        # fixed here (one batch size), but it is nondeterministic.
        torch.backends.cudnn.benchmark = not tcfg.deterministic


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context the forward pass and the loss run in."""
    if str(precision) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def forward_of(model: torch.nn.Module, tcfg) -> Callable[[torch.Tensor], torch.Tensor]:
    """The callable that runs the model's forward pass: the module, or its compiled form."""
    if not tcfg.compile:
        return model
    return torch.compile(model, mode=tcfg.compile_mode)
