"""Checkpoint -> synthetic samples. Inference only: G_ema in eval mode, no autograd, in batches.

The seed fixes the output exactly: the latents of one class are drawn at once on the CPU from a
generator seeded by ``(seed, class)``, so the bytes do not depend on the batch size or device
order of work (on the same device type).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.errors import MedganError

__all__ = ["LoadedGenerator", "iter_samples", "load_generator", "sample_classes"]


@dataclass
class LoadedGenerator:
    """G_ema rebuilt from a checkpoint, with what callers need to know about it."""

    G: nn.Module
    class_names: list[str]
    num_classes: int
    z_dim: int
    spatial_dims: int
    channels: int
    size: list[int]
    spacing: list[float] | None
    checkpoint_sha256: str
    checkpoint_path: str
    dataset: dict[str, Any]
    config: dict[str, Any]
    family: str
    device: torch.device


def load_generator(checkpoint: str | Path, device: str = "auto") -> LoadedGenerator:
    """Verify and load a checkpoint (file or run folder) and rebuild its G_ema.

    Raises:
        MedganError: a missing, corrupt or altered checkpoint; a progressive run that has not yet
            reached its target resolution.
    """
    from medgan.training.checkpoint import load_checkpoint
    from medgan.training.distributed import resolve_device
    from medgan.training.loop import build_networks

    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    spec = ckpt["model"]
    G, _ = build_networks(spec)
    G.load_state_dict(ckpt["G_ema"])
    G.eval().requires_grad_(False).to(dev)
    if spec["family"] == "progressive":
        final = G.num_stages - 1
        if int(ckpt.get("stage", final)) < final or float(ckpt.get("alpha", 1.0)) < 1.0:
            raise MedganError(
                f"this progressive checkpoint is at stage {ckpt.get('stage')} (alpha {ckpt.get('alpha'):.2f}) of "
                f"{final}; train it to the target resolution before sampling", ckpt["path"])
    g = spec["generator"]
    ds = ckpt["dataset"]
    return LoadedGenerator(
        G=G, class_names=list(ckpt["class_names"]), num_classes=int(g["num_classes"]), z_dim=int(g["z_dim"]),
        spatial_dims=int(ds["spatial_dims"]), channels=int(ds["channels"]), size=list(ds["size"]),
        spacing=ds.get("spacing"), checkpoint_sha256=ckpt["sha256"], checkpoint_path=ckpt["path"],
        dataset=ds, config=ckpt["config"], family=spec["family"], device=dev,
    )


def _latents(n: int, z_dim: int, seed: int, class_index: int, truncation: float | None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(class_index))
    z = torch.empty(n, z_dim)
    if truncation is not None and truncation > 0:
        torch.nn.init.trunc_normal_(z, 0.0, 1.0, -truncation, truncation, generator=gen)
    else:
        z.normal_(generator=gen)
    return z


@torch.inference_mode()
def iter_samples(gen: LoadedGenerator, class_index: int | None, n: int, *, seed: int = 0, batch_size: int = 256,
                 truncation: float | None = None) -> Iterator[np.ndarray]:
    """Yield uint8 batches ``(b, C, *spatial)`` of ``n`` samples of one class (``None``: unconditional).

    Args:
        gen: from :func:`load_generator`.
        class_index: the class to condition on; must be ``None`` only for unconditional models.
        n: how many samples.
        seed: fixes the latents, hence the output bytes.
        batch_size: samples per forward pass (does not change the output).
        truncation: resample latents outside ``[-t, t]`` (fidelity over diversity); ``None`` = off.
    """
    if n <= 0:
        raise MedganError(f"--n must be positive, got {n}")
    if batch_size <= 0:
        raise MedganError(f"--batch-size must be positive, got {batch_size}")
    c = 0 if class_index is None else int(class_index)
    z_all = _latents(n, gen.z_dim, seed, c, truncation)
    for start in range(0, n, batch_size):
        z = z_all[start : start + batch_size].to(gen.device)
        y = torch.full((len(z),), c, dtype=torch.long, device=gen.device) if gen.num_classes > 0 else None
        x = gen.G(z, y).float()
        yield torch.clamp(torch.round((x + 1.0) * 127.5), 0, 255).to(torch.uint8).cpu().numpy()


def sample_classes(checkpoint: str | Path, n_per_class: int, seed: int = 0, device: str = "auto",
                   batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n_per_class`` samples of every class: ``(images u8 (N, C, *spatial), labels (N,), class_names)``."""
    gen = load_generator(checkpoint, device)
    classes = range(gen.num_classes) if gen.num_classes > 0 else [None]
    images, labels = [], []
    for c in classes:
        for batch in iter_samples(gen, c, n_per_class, seed=seed, batch_size=batch_size):
            images.append(batch)
            labels.append(np.full(len(batch), 0 if c is None else c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels), gen.class_names
