"""Tiny GANs and benchmark configs for fast benchmark tests (the toy data is ``tests/conftest.py: make_disc_toy``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from medgan.configio import save_config
from tests.training.helpers import tiny_config

_CACHE: dict[str, Path] = {}


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
    """Write a benchmark YAML: 2 seeds, 1 epoch (3 steps), few bootstrap replicates, small fidelity draw."""
    cfg: dict[str, object] = {
        "data": str(data), "target_class": "lesion", "seeds": 2, "device": "cpu", "out": str(path.parent / "out"),
        # min_steps 1: the budget is the epochs' steps (3 on the toy), not the 200-step floor for real data.
        "classifier": {"epochs": 1, "batch_size": 16, "min_steps": 1},
        "gan": {"train_config": str(gan_yaml)},
        "bootstrap": {"resamples": 200},
        # A smoke-test two-sample test: 2 folds of 5 steps instead of 5 of 300 (its own tests are in tests/metrics).
        "fidelity": {"n_per_class": 6, "feature_epochs": 1, "c2st_folds": 2, "c2st_min_steps": 5},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}  # type: ignore[dict-item]
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
