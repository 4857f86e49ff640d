"""A tiny training config for training tests (the toy datasets are built by ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

from medgan.configio import load_config
from medgan.training.config import TrainConfig


def tiny_config(data: Path, out: Path, *overrides: str) -> TrainConfig:
    """A deterministic, seconds-long training config on ``data``."""
    base = [
        f"data={data}", f"out={out}", "steps=6", "batch_size=8", "log_every=2", "sample_every=3",
        "checkpoint_every=100", "deterministic=true", "device=cpu", "r1_gamma=0.1", "r1_every=2",
        "model.g_channels=8", "model.d_channels=8", "model.g_max_channels=16", "model.d_max_channels=16",
        "model.z_dim=16", "augment.interval=1", "augment.speed_images=64", "augment.target=0.01",
    ]
    return load_config(TrainConfig, None, [*base, *overrides])


def tiny_cycle_config(data: Path, out: Path, *overrides: str) -> TrainConfig:
    """A deterministic, seconds-long cycle-family config: class 0 -> class 1 of ``data`` (two classes)."""
    base = [
        f"data={data}", f"out={out}", "steps=4", "batch_size=4", "log_every=2", "sample_every=2",
        "checkpoint_every=100", "deterministic=true", "device=cpu", "d_steps=1", "model.family=cycle",
        "model.g_channels=4", "model.d_channels=4", "model.g_max_channels=8", "cycle.source_class=0",
        "cycle.target_class=1", "cycle.g_blocks=1", "cycle.d_layers=1", "augment.interval=1",
        "augment.speed_images=64", "augment.target=0.01",
    ]
    return load_config(TrainConfig, None, [*base, *overrides])
