"""Device choice and ``torch.distributed`` set-up for runs launched with ``torchrun``.

medgan uses PyTorch's own engine: ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous; :func:`setup` joins the process group (gloo on CPU, NCCL on CUDA). A plain
``medgan train`` is a world of one and never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from medgan.errors import MedganError

__all__ = ["DistInfo", "barrier", "broadcast_object", "resolve_device", "setup", "teardown"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


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


def setup(device_arg: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; return this process's place and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_arg, local)
    info = DistInfo(rank, world, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return info, device


def teardown() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op in a world of one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: object, src: int = 0) -> object:
    """Send a picklable object from ``src`` to every rank (identity in a world of one)."""
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj
