"""Toy data, tiny GANs and benchmark configs for fast benchmark tests (built in the test, never committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from medgan.configio import save_config
from medgan.data.dataset import DatasetInfo, save_prepared
from tests.training.helpers import tiny_config

_CACHE: dict[str, Path] = {}


def toy_dataset(root: Path, *, size: int = 16, counts: tuple[int, int] = (12, 36), seed: int = 0,
                bright: int = 210) -> Path:
    """An imbalanced two-class prepared dataset: ``lesion`` (a bright disc, the minority) and ``normal``.

    The class signal survives flips and small rotations, so the classical arm stays learnable.
    Splits: train ``counts``, val 8 + 8, test 10 + 10.
    """
    key = f"data:{root}:{size}:{counts}:{seed}:{bright}"
    if key in _CACHE:
        return _CACHE[key]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 4) ** 2
    images, labels = {}, {}
    for split, (n0, n1) in (("train", counts), ("val", (8, 8)), ("test", (10, 10))):
        lab = np.array([0] * n0 + [1] * n1)
        img = rng.integers(0, 70, size=(len(lab), size, size)).astype(np.uint8)
        img[lab == 0] = np.where(disc, bright, img[lab == 0])
        images[split], labels[split] = img, lab
    info = DatasetInfo(name="toy", class_names=["lesion", "normal"], channels=1, spatial_dims=2,
                       size=[size, size], source="test", sha256="")
    out = root / f"toy_{size}_{seed}_{bright}"
    save_prepared(out, images, labels, info)
    _CACHE[key] = out
    return out


def gan_config(root: Path, data: Path) -> Path:
    """A seconds-long GAN training config (the benchmark replaces its data and out)."""
    path = root / "tiny_gan.yaml"
    if not path.is_file():
        save_config(tiny_config(data, root / "unused_gan_out", "steps=2"), path)
    return path


def gan_checkpoint(root: Path, data: Path) -> Path:
    """A tiny GAN trained on ``data`` (its train split, as ``medgan train`` does), cached per session."""
    from medgan.training.checkpoint import find_checkpoint
    from medgan.training.loop import train

    key = f"gan:{root}:{data}"
    if key not in _CACHE:
        out = root / f"gan_{data.name}"
        train(tiny_config(data, out, "steps=2"), overwrite=True, progress=False)
        _CACHE[key] = find_checkpoint(out)
    return _CACHE[key]


def bench_config(path: Path, data: Path, gan_yaml: Path, **sections: object) -> Path:
    """Write a benchmark YAML: 2 seeds, 1 epoch, few bootstrap replicates, small fidelity draw."""
    cfg: dict[str, object] = {
        "data": str(data), "target_class": "lesion", "seeds": 2, "device": "cpu", "out": str(path.parent / "out"),
        "classifier": {"epochs": 1, "batch_size": 16},
        "gan": {"train_config": str(gan_yaml)},
        "bootstrap": {"resamples": 200},
        "fidelity": {"n_per_class": 6, "feature_epochs": 1},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}  # type: ignore[dict-item]
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
