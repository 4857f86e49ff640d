"""The one conversion between stored pixels and network tensors: uint8 ``0..255`` <-> float ``[-1, 1]``.

A prepared dataset, a PNG and a synthetic sample are uint8; every network (G, D, the classifiers,
the feature nets) sees ``x = u8 / 127.5 - 1``. Going back rounds half to even and clips.

Example:
    >>> to_model_input(np.array([0, 255], np.uint8))
    tensor([-1.,  1.])
    >>> to_uint8_array(torch.tensor([-1.0, 0.0, 1.0]))
    array([  0, 128, 255], dtype=uint8)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["to_model_input", "to_uint8", "to_uint8_array"]


def to_model_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, *spatial)`` -> float32 in ``[-1, 1]`` (``u8 / 127.5 - 1``), on the same device.

    Raises:
        ValueError: the images are not uint8.
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in ``[-1, 1]`` -> uint8 ``[0, 255]`` (rounded, clipped), on the same device."""
    return torch.clamp(torch.round((x.float() + 1.0) * 127.5), 0, 255).to(torch.uint8)


def to_uint8_array(x: Any) -> np.ndarray:
    """Like :func:`to_uint8` for a tensor or an array; returns a numpy array on the host."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    return to_uint8(t).cpu().numpy()
