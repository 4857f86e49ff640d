"""What a run leaves for people to look at: sample grids, ``metrics.jsonl`` and loss curves.

None of this runs inside the hot loop except at its intervals.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medgan.utils import atomic_file

__all__ = ["append_jsonl", "central_slices", "make_grid", "plot_loss_curves", "read_jsonl", "save_grid"]


def to_uint8(x: Any) -> np.ndarray:
    """Images in [-1, 1] (tensor or array) to uint8 [0, 255]."""
    arr = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    return np.clip(np.rint((arr + 1.0) * 127.5), 0, 255).astype(np.uint8)


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
