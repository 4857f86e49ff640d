"""Controlled degradations of real images: the sanity figures every quality metric must pass.

A metric earns trust when visibly degraded real images score clearly worse than clean real ones
(STYLE.md, habit 14). Each function maps uint8 ``(N, C, *spatial)`` to the same shape and dtype,
in 2D and 3D, and is deterministic for a given ``seed``.

Example:
    >>> for name, fn in DEGRADATIONS.items():
    ...     print(name, c2st(train, fn(test))["auc"])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from medgan.networks.layers import binomial_blur

__all__ = ["DEGRADATIONS", "block", "blur", "noise", "quantise", "stripes"]


def _check(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (4, 5):
        raise ValueError(f"images must be uint8 (N, C, H, W) or (N, C, D, H, W), got {x.dtype} {x.shape}")
    return x


def _to_u8(t: torch.Tensor) -> np.ndarray:
    return t.round().clamp(0, 255).to(torch.uint8).numpy()


def blur(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian-like blur: the separable 5-tap binomial filter ``[1 4 6 4 1] / 16`` along every axis."""
    return _to_u8(binomial_blur(torch.from_numpy(_check(x)).double()))


def noise(x: np.ndarray, sigma: float = 8.0, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``sigma`` grey levels (seeded)."""
    x = _check(x)
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(x + rng.normal(0.0, sigma, x.shape)), 0, 255).astype(np.uint8)


def stripes(x: np.ndarray, amplitude: float = 8.0, seed: int = 0) -> np.ndarray:
    """Vertical stripes: columns alternately brightened and darkened by ``amplitude`` grey levels."""
    x = _check(x)
    pattern = np.where(np.arange(x.shape[-1]) % 2 == 0, amplitude, -amplitude)
    return np.clip(x + pattern, 0, 255).astype(np.uint8)


def block(x: np.ndarray, factor: int = 4, seed: int = 0) -> np.ndarray:
    """Blocking: every ``factor^d`` block replaced by its mean (as a coarse JPEG or nearest upscale would)."""
    x = _check(x)
    t = torch.from_numpy(x).double()
    pool = F.avg_pool2d if x.ndim == 4 else F.avg_pool3d
    coarse = pool(t, factor, ceil_mode=True)
    up = coarse.repeat_interleave(factor, dim=2)
    for axis in range(3, x.ndim):
        up = up.repeat_interleave(factor, dim=axis)
    crop = (slice(None), slice(None), *(slice(0, s) for s in x.shape[2:]))
    return _to_u8(up[crop])


def quantise(x: np.ndarray, levels: int = 16, seed: int = 0) -> np.ndarray:
    """Intensity quantised to ``levels`` grey levels (banding), each bin shown at its centre."""
    x = _check(x)
    step = 256 // levels
    return (x // step * step + step // 2).astype(np.uint8)


DEGRADATIONS: dict[str, Callable[..., np.ndarray]] = {
    "blur": blur,
    "noise_sigma8": noise,
    "vertical_stripes": stripes,
    "blocking_4x4": block,
    "quantised_16": quantise,
}
"""The degradations of the sanity table in docs/metrics.md, by name."""
