"""Where torch runs: one rule for ``--device`` / ``device:``, used by training, sampling and the benchmark."""

from __future__ import annotations

import torch

from medgan.errors import MedganError

__all__ = ["resolve_device"]


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present (this process's local GPU under torchrun), else CPU.

    Raises:
        MedganError: ``cuda`` asked for but not available, or an unknown device string.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MedganError("--device cuda was asked for, but torch sees no CUDA GPU (install a CUDA build of torch)")
        return torch.device(device if ":" in device else f"cuda:{local_rank}")
    if device == "cpu":
        return torch.device("cpu")
    raise MedganError(f"unknown device '{device}' (allowed: auto, cpu, cuda, cuda:N)")
