"""medgan.training.snapshots: sample grids, standing batch-norm statistics, metrics.jsonl and loss curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from medgan.training.schedule import Phase
from medgan.training.snapshots import (
    append_jsonl,
    central_slices,
    make_grid,
    plot_loss_curves,
    read_jsonl,
    sample_grid,
    save_grid,
    standing_stats,
)


class ConstG(nn.Module):
    """G(z, y) = the class index as a flat image in [-1, 1]: -1 for class 0, +1 for class 1."""

    def __init__(self, size: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.size, self.spatial_dims = size, spatial_dims
        self.seen: list[dict[str, object]] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor | None, **kw: object) -> torch.Tensor:
        self.seen.append({"training": self.training, **kw})
        value = (2.0 * y.float() - 1.0) if y is not None else torch.zeros(len(z))
        return value.reshape(-1, 1, *(1,) * self.spatial_dims).expand(-1, 1, *(self.size,) * self.spatial_dims)


def test_sample_grid_is_one_row_per_class_in_eval_mode() -> None:
    G = ConstG(4)
    G.train()
    z, y = torch.zeros(6, 2), torch.tensor([0, 0, 0, 1, 1, 1])
    grid = sample_grid(G, z, y, rows=2, phase=None, target_size=4)
    assert G.seen == [{"training": False}] and G.training  # sampled in eval mode, then put back
    pad = 2
    assert grid.dtype == np.uint8 and grid.shape == (2 * (4 + pad) + pad, 3 * (4 + pad) + pad)  # grey (H, W)
    assert np.all(grid[pad : pad + 4, pad : pad + 4] == 0)  # row 0: class 0 -> -1 -> black
    assert np.all(grid[2 * pad + 4 : 2 * pad + 8, pad : pad + 4] == 255)  # row 1: class 1 -> +1 -> white


PHASE = Phase(stage=1, alpha=0.5, resolution=4, fading=True, batch_size=2, lr=1e-3, images_seen=0, stage_start_step=0)


def test_sample_grid_upsamples_progressive_stages_to_the_target() -> None:
    G = ConstG(4, spatial_dims=3)
    grid = sample_grid(G, torch.zeros(2, 2), torch.tensor([0, 1]), rows=2, phase=PHASE, target_size=8)
    assert G.seen[0] == {"training": False, "stage": 1, "alpha": 0.5}
    # Volumes (8³ after upsampling) are shown as three central slices side by side: tiles 8 × 24.
    assert grid.shape == (2 * (8 + 2) + 2, 24 + 4)


def test_make_grid_and_central_slices() -> None:
    vol = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(1, 2, 3, 4)  # (C, D, H, W), not a cube
    tiles = central_slices(vol)
    assert tiles.shape == (1, 4, 12)
    assert np.array_equal(tiles[0, :3, :4], vol[0, 1])  # axial: the middle slice
    rgb = np.full((2, 3, 5, 5), 7, np.uint8)
    grid = make_grid([rgb, rgb[:1]], pad=1)
    assert grid.shape == (2 * 6 + 1, 2 * 6 + 1, 3) and grid[1, 1].tolist() == [7, 7, 7]
    assert grid[7, 7].tolist() == [0, 0, 0]  # the shorter row is padded


def test_save_grid_writes_a_scaled_png(tmp_path: Path) -> None:
    grid = np.array([[0, 255], [128, 64]], np.uint8)
    path = save_grid(grid, tmp_path / "g.png", scale=3)
    with Image.open(path) as im:
        arr = np.asarray(im)
    assert arr.shape == (6, 6) and np.array_equal(arr[::3, ::3], grid)


class TinyBNG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4, momentum=0.3)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.bn(self.fc(z) + (0.0 if y is None else y.float()[:, None]))


def test_standing_stats_refit_batch_norm_without_touching_the_training_rng() -> None:
    torch.manual_seed(1)
    G = TinyBNG()
    with torch.no_grad():
        G.fc.bias.fill_(5.0)  # the activations' mean is far from the initial running mean 0
    state = torch.get_rng_state()
    standing_stats(G, z_dim=3, num_classes=2, batch=64, device=torch.device("cpu"), seed=0, n_batches=4)
    assert torch.equal(state, torch.get_rng_state())
    assert not G.training and G.bn.momentum == 0.3  # eval mode, momentum restored
    tracked, mean = G.bn.num_batches_tracked, G.bn.running_mean
    assert tracked is not None and mean is not None
    assert int(tracked) == 4
    assert torch.allclose(mean, torch.full((4,), 5.5), atol=0.5)  # bias 5 + mean label 0.5
    first = mean.clone()
    standing_stats(G, z_dim=3, num_classes=2, batch=64, device=torch.device("cpu"), seed=0, n_batches=4)
    assert G.bn.running_mean is not None and torch.equal(first, G.bn.running_mean)  # seeded: the same statistics again


def test_standing_stats_leaves_a_network_without_batch_norm_alone() -> None:
    G = nn.Linear(3, 3)
    G.train()

    def forward(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        raise AssertionError("no forward pass is needed")

    G.forward = forward  # type: ignore[method-assign, assignment]
    standing_stats(G, 3, 0, 4, torch.device("cpu"), seed=0)
    assert G.training


def test_metrics_jsonl_round_trip_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"step": 1, "d_loss": 0.5})
    append_jsonl(path, {"step": 2, "d_loss": 0.25, "fid": 40.0})
    with open(path, "a") as fh:
        fh.write('{"step": 3, "d_lo')  # a crash mid-write
    assert read_jsonl(path) == [{"step": 1, "d_loss": 0.5}, {"step": 2, "d_loss": 0.25, "fid": 40.0}]
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()[:2]] == [1, 2]


@pytest.mark.parametrize("with_fid", [False, True])
def test_plot_loss_curves(tmp_path: Path, with_fid: bool) -> None:
    assert plot_loss_curves([], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    records = [{"step": s, "d_loss": 1.0 / s, "g_loss": s / 10, "d_real": 0.1, "d_fake": -0.1, "aug_p": 0.0}
               for s in range(1, 6)]
    if with_fid:
        records[-1]["fid"] = 12.0
    path = plot_loss_curves(records, tmp_path / "loss.png")
    assert path == tmp_path / "loss.png"
    with Image.open(path) as im:
        width, height = im.size
    assert height == 320 and width == (4 if with_fid else 3) * 420  # one panel per quantity, FID when logged
