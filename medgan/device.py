"""Where torch runs: one rule for ``--device`` / ``device:``, used by training, sampling and the benchmark;
and which rows of a random draw this process keeps under ``torchrun`` (:func:`rank_rows`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from medgan.errors import MedganError

__all__ = ["cpu_cores", "rank_rows", "resolve_device"]


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present (this process's local GPU under torchrun), else CPU.

    Raises:
        MedganError: ``cuda`` asked for but not available, or an unknown device string.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MedganError(
                "--device cuda was asked for, but torch sees no CUDA GPU (install a CUDA build of torch)"
            )
        return torch.device(device if ":" in device else f"cuda:{local_rank}")
    if device == "cpu":
        return torch.device("cpu")
    raise MedganError(f"unknown device '{device}' (allowed: auto, cpu, cuda, cuda:N)")


def rank_rows(draw: Callable[[int], torch.Tensor], batch: int) -> torch.Tensor:
    """Random rows for this rank's ``batch``, cut from one draw for the whole global batch.

    Every rank keeps the same RNG stream (same seed, same calls) and draws ``world * batch`` rows,
    then keeps its own ``batch``: the noise of rank r is rows ``[r * batch, (r + 1) * batch)`` of
    what a single process at the global batch would draw. So a DDP run sees the same latents and
    augmentations as a single-process run, whatever the number of processes. ``draw(n)`` must
    return ``n`` rows. In a world of one this is just ``draw(batch)``.

    It lives here, under the networks, because the style generator's noise inputs draw from the
    same stream inside its forward pass (``medgan.training.distributed`` re-exports it).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return draw(batch)
    rank = dist.get_rank()
    return draw(dist.get_world_size() * batch)[rank * batch : (rank + 1) * batch]


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask on Linux, else the machine's count)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
