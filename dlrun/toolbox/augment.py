"""Data augmentation on the device, one random transform per sample of each training batch.

Every draw comes from the run's batch generator (on the batch's device), so the
transforms cost no host sync and a seed reproduces them. Inputs are already
standardised, so zero padding pads with the training mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from dlrun.config.schema import AugmentConfig
from dlrun.errors import AugmentError

Augment = Callable[[Tensor, torch.Generator], Tensor]


def _uniform(n: int, low: float, high: float, like: Tensor, gen: torch.Generator) -> Tensor:
    """n draws from U(low, high), shaped (n,), on like's device and dtype."""
    u = torch.rand(n, generator=gen, device=like.device, dtype=like.dtype)
    return low + (high - low) * u


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    """(N,) -> (N, 1, ..., 1) so it broadcasts over one sample."""
    return values.view(-1, *([1] * (x.dim() - 1)))


def shift_signal(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Translate each signal (N, ..., L) by a random integer in [-max_shift, max_shift], zero padding."""
    n, length = x.shape[0], x.shape[-1]
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 1), generator=gen, device=x.device)
    # Output sample j reads input sample j - shift, i.e. padded sample j - shift + max_shift.
    padded = F.pad(x, (max_shift, max_shift))
    source = torch.arange(length, device=x.device) + (max_shift - shifts)
    source = source.view(n, *([1] * (x.dim() - 2)), length).expand_as(x)
    return torch.gather(padded, -1, source)


def add_noise(x: Tensor, std: float, gen: torch.Generator) -> Tensor:
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x + std * noise


def scale_amplitude(x: Tensor, scale: float, gen: torch.Generator) -> Tensor:
    """Multiply each sample by a factor drawn from U(1 - scale, 1 + scale)."""
    return x * _per_sample(_uniform(x.shape[0], 1.0 - scale, 1.0 + scale, x, gen), x)


def affine_images(
    x: Tensor, max_shift: int, max_degrees: float, flip: bool, gen: torch.Generator
) -> Tensor:
    """Shift (whole pixels), rotate and flip images (N, C, H, W) with one resampling."""
    n, _, height, width = x.shape
    angle = _uniform(n, -max_degrees, max_degrees, x, gen) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    mirror = torch.ones(n, device=x.device, dtype=x.dtype)
    if flip:
        coin = torch.randint(0, 2, (n,), generator=gen, device=x.device)
        mirror = 1.0 - 2.0 * coin.to(x.dtype)
    pixels = torch.randint(-max_shift, max_shift + 1, (2, n), generator=gen, device=x.device)
    # affine_grid maps output to input coordinates in [-1, 1]; one pixel is 2/size.
    # Reading from (u - 2s/size) moves the content by +s pixels.
    tx = -2.0 * pixels[0].to(x.dtype) / width
    ty = -2.0 * pixels[1].to(x.dtype) / height
    theta = torch.stack(
        [torch.stack([cos * mirror, -sin, tx], 1), torch.stack([sin * mirror, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _check(cfg: AugmentConfig, input_shape: tuple[int, ...]) -> bool:
    """Check against the data (ranges: dlrun.config.validate); True for images (C, H, W)."""
    image = len(input_shape) == 3
    if not image and (cfg.rotate > 0 or cfg.flip):
        raise AugmentError(
            f"data.augment.rotate/flip need images (C, H, W); this data has samples of shape {input_shape}"
        )
    if cfg.shift >= min(input_shape[-2:] if image else input_shape[-1:]):
        raise AugmentError(
            f"data.augment.shift={cfg.shift} is not smaller than the input {input_shape}"
        )
    return image


def build_augment(cfg: AugmentConfig, input_shape: tuple[int, ...]) -> Augment:
    """The per-batch transform for samples of this shape: (x, generator) -> x'.

    Samples of shape (C, H, W) are images; (L,) and (C, L) are signals, shifted
    along their last axis. Settings are read once here, not per batch.
    """
    image = _check(cfg, input_shape)
    shift, noise, scale = int(cfg.shift), float(cfg.noise), float(cfg.scale)
    rotate, flip = float(cfg.rotate), bool(cfg.flip)
    steps: list[Augment] = []
    if image and (shift or rotate or flip):
        steps.append(lambda x, g: affine_images(x, shift, rotate, flip, g))
    elif not image and shift:
        steps.append(lambda x, g: shift_signal(x, shift, g))
    if scale:
        steps.append(lambda x, g: scale_amplitude(x, scale, g))
    if noise:
        steps.append(lambda x, g: add_noise(x, noise, g))

    def augment(x: Tensor, gen: torch.Generator) -> Tensor:
        for step in steps:
            x = step(x, gen)
        return x

    return augment
