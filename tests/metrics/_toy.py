"""A tiny two-class prepared dataset (dark vs bright noise images) for fast metric tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medgan.data.dataset import DatasetInfo, PreparedDataset, load_dataset, save_prepared


def toy_images(n: int, label: int, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    base = 70 if label == 0 else 180
    return np.clip(rng.normal(base, 25, size=(n, *size)), 0, 255).astype(np.uint8)


def make_toy_dataset(folder: Path, size: tuple[int, ...] = (8, 8), n: tuple[int, int, int] = (40, 12, 12),
                     seed: int = 0) -> PreparedDataset:
    """``folder/dataset.npz`` + ``dataset.json``: classes ``dark`` and ``bright`` in every split."""
    rng = np.random.default_rng(seed)
    images, labels = {}, {}
    for split, count in zip(("train", "val", "test"), n, strict=True):
        half = count // 2
        images[split] = np.concatenate([toy_images(half, 0, size, rng), toy_images(count - half, 1, size, rng)])
        labels[split] = np.array([0] * half + [1] * (count - half))
    info = DatasetInfo(name="toy", class_names=["dark", "bright"], channels=1, spatial_dims=len(size),
                       size=list(size), source="test", sha256="")
    save_prepared(folder, images, labels, info)
    return load_dataset(folder)
