"""The shipped style-family configs load, validate and build networks of the data's shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medgan.configio import load_config
from medgan.networks import build_generator
from medgan.training.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize(
    ("name", "size", "spatial_dims"),
    [
        ("style_breastmnist", 28, 2),
        ("style_breastmnist64", 64, 2),
        ("style_pneumoniamnist", 28, 2),
        ("style_adrenalmnist3d", 28, 3),
    ],
)
def test_style_config_validates_and_builds(name, size, spatial_dims):
    cfg = load_config(TrainConfig, CONFIGS / f"{name}.yaml", [])
    cfg.validate()
    m = cfg.model
    assert m.family == "style" and not m.d_spectral_norm and m.d_mbstd and cfg.collapse_share == 0.5
    G = build_generator(
        "style",
        z_dim=m.z_dim,
        num_classes=2,
        size=size,
        spatial_dims=spatial_dims,
        base_channels=m.g_channels,
        max_channels=m.g_max_channels,
        w_dim=m.w_dim,
        mapping_layers=m.mapping_layers,
        output=m.g_output,
    )
    with torch.no_grad():
        x = G.eval()(torch.randn(2, m.z_dim), torch.tensor([0, 1]))
    assert x.shape == (2, 1, *([size] * spatial_dims))
    assert sum(p.numel() for p in G.parameters()) < 1_000_000  # sized for a CPU
