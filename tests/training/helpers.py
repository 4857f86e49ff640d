"""Small prepared datasets and configs for training tests (built in the test, never committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medgan.configio import load_config
from medgan.data.dataset import DatasetInfo, save_prepared
from medgan.training.config import TrainConfig


def make_toy_dataset(root: Path, *, size: int = 16, spatial_dims: int = 2, n: int = 48, channels: int = 1,
                     num_classes: int = 2, seed: int = 0) -> Path:
    """A prepared dataset whose classes differ visibly: class k is bright in the k-th band."""
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims + ((3,) if channels == 3 else ())
    images, labels = {}, {}
    for split, count in (("train", n), ("val", n // 4), ("test", n // 4)):
        lab = np.arange(count) % num_classes
        img = rng.integers(0, 60, size=(count, *shape)).astype(np.uint8)
        band = max(size // num_classes, 1)
        for i, k in enumerate(lab):
            img[i, ..., k * band : (k + 1) * band] = 220 if channels == 1 else img[i, ..., k * band : (k + 1) * band]
        images[split], labels[split] = img, lab
    info = DatasetInfo(name="toy", class_names=[f"class{k}" for k in range(num_classes)], channels=channels,
                       spatial_dims=spatial_dims, size=[size] * spatial_dims, source="test", sha256="")
    out = root / f"toy{spatial_dims}d_{size}"
    save_prepared(out, images, labels, info)
    return out


def tiny_config(data: Path, out: Path, *overrides: str) -> TrainConfig:
    """A deterministic, seconds-long training config on ``data``."""
    base = [
        f"data={data}", f"out={out}", "steps=6", "batch_size=8", "log_every=2", "sample_every=3",
        "checkpoint_every=100", "deterministic=true", "device=cpu", "r1_gamma=0.1", "r1_every=2",
        "model.g_channels=8", "model.d_channels=8", "model.g_max_channels=16", "model.d_max_channels=16",
        "model.z_dim=16", "augment.interval=1", "augment.speed_images=64", "augment.target=0.01",
    ]
    return load_config(TrainConfig, None, [*base, *overrides])
