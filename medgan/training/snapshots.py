"""What a run leaves for people to look at: sample grids, ``metrics.jsonl`` and loss curves.

None of this runs inside the hot loop except at its intervals.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.data.scaling import to_uint8_array
from medgan.training.schedule import Phase
from medgan.utils import atomic_file

__all__ = [
    "append_jsonl",
    "central_slices",
    "make_grid",
    "plot_loss_curves",
    "read_jsonl",
    "sample_grid",
    "save_grid",
    "standing_stats",
]


def central_slices(volume: np.ndarray) -> np.ndarray:
    """``(C, D, H, W)`` -> ``(C, S, 3 * S)``: central axial, coronal and sagittal slices side by side.

    Slices are padded to the largest extent S so volumes that are not cubes still tile.
    """
    c, d, h, w = volume.shape
    views = [volume[:, d // 2, :, :], volume[:, :, h // 2, :], volume[:, :, :, w // 2]]
    s = max(d, h, w)
    out = np.zeros((c, s, 3 * s), dtype=volume.dtype)
    for i, v in enumerate(views):
        out[:, : v.shape[1], i * s : i * s + v.shape[2]] = v
    return out


def make_grid(rows: Sequence[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile rows of uint8 images ``(N, C, H, W)`` (or volumes ``(N, C, D, H, W)``) into one image.

    Each element of ``rows`` is one row of the grid (one class). Volumes are shown as their three
    central slices. Returns ``(H_total, W_total)`` grey or ``(H_total, W_total, 3)`` RGB.
    """
    tiles_rows = []
    for row in rows:
        if row.ndim == 5:
            row = np.stack([central_slices(v) for v in row])
        tiles_rows.append(row)
    c = tiles_rows[0].shape[1]
    th = max(r.shape[2] for r in tiles_rows)
    tw = max(r.shape[3] for r in tiles_rows)
    ncol = max(len(r) for r in tiles_rows)
    grid = np.zeros((c, len(tiles_rows) * (th + pad) + pad, ncol * (tw + pad) + pad), dtype=np.uint8)
    for i, row in enumerate(tiles_rows):
        for j, img in enumerate(row):
            y, x = pad + i * (th + pad), pad + j * (tw + pad)
            grid[:, y : y + img.shape[1], x : x + img.shape[2]] = img
    return grid[0] if c == 1 else np.moveaxis(grid, 0, -1)


def save_grid(grid: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Save a grid from :func:`make_grid` as PNG (nearest upscaling by ``scale``), atomically."""
    from PIL import Image

    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    with atomic_file(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return Path(path)


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line (metrics are ``dict[str, float]`` plus the step)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines log; a torn last line (from a crash) is skipped."""
    out: list[dict[str, Any]] = []
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def plot_loss_curves(records: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Plot the losses, D outputs and augmentation p against step; ``None`` if there is nothing to plot."""
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    panels = [
        ("losses", ["d_loss", "g_loss"]),
        ("D outputs", ["d_real", "d_fake"]),
        ("augmentation p", ["aug_p"]),
    ]
    if any("fid" in r for r in records):
        panels.append(("FID (domain features)", ["fid"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2))
    for ax, (title, keys) in zip(np.atleast_1d(axes), panels, strict=True):
        for key in keys:
            pts = [(s, r[key]) for s, r in zip(steps, records, strict=True) if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=key)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(path)


@torch.no_grad()
def standing_stats(G: nn.Module, z_dim: int, num_classes: int, batch: int, device: torch.device, seed: int,
                   n_batches: int = 8, g_kwargs: dict[str, Any] | None = None) -> None:
    """Re-estimate G's batch-norm statistics for its current weights ("standing statistics").

    G_ema's weights are an average, so the running statistics copied from G do not match them and
    its eval-mode samples come out washed out. A few forward passes in train mode, with a
    cumulative average and latents from a dedicated generator (the training RNG is untouched),
    give statistics that fit. Networks without batch norm are left as they are.
    """
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes below
    gen = torch.Generator().manual_seed(seed)
    G.train()
    # A generator with noise inputs draws from the global RNG in train mode: fork it, so these
    # passes neither consume the training stream (exact resume) nor depend on where it stands.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(n_batches):
            z = torch.randn(batch, z_dim, generator=gen).to(device)
            y = torch.randint(0, num_classes, (batch,), generator=gen).to(device) if num_classes > 0 else None
            G(z, y, **(g_kwargs or {}))
    G.eval()
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def sample_grid(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, rows: int, phase: Phase | None,
                target_size: int) -> np.ndarray:
    """G_ema samples as a uint8 grid, one row per class; progressive stages upsampled to the target."""
    kwargs = {"stage": phase.stage, "alpha": phase.alpha} if phase is not None else {}
    was_training = G.training
    G.eval()
    imgs = G(z, y, **kwargs).float()
    G.train(was_training)
    if imgs.shape[-1] != target_size:
        factor = max(1, round(target_size / imgs.shape[-1]))
        imgs = imgs.repeat_interleave(factor, -1).repeat_interleave(factor, -2)
        if imgs.ndim == 5:
            imgs = imgs.repeat_interleave(factor, -3)
    u8 = to_uint8_array(imgs)
    per_row = len(u8) // rows
    return make_grid([u8[i * per_row : (i + 1) * per_row] for i in range(rows)])
