"""The shared engine with the progressive family: stages in the log, exact resume mid-fade, errors."""

from __future__ import annotations

import json

import pytest
import torch

from medgan.errors import MedganError
from medgan.training.checkpoint import load_checkpoint
from medgan.training.loop import train
from medgan.training.schedule import phase_at
from tests.conftest import make_banded_toy
from tests.training.helpers import tiny_config
from tests.training.test_loop import _assert_states_equal

# 16² toy, 4 -> 8 -> 16; 16 images per phase at batch 8 = 2 steps per phase:
# stage 0 stable: steps 0-1; stage 1 fade 2-3, stable 4-5; stage 2 fade 6-7, stable 8-9.
PROG = [
    "model.family=progressive", "model.g_channels=2", "model.d_channels=2", "model.g_max_channels=16",
    "model.d_max_channels=16", "steps=null", "progressive.target_resolution=16",
    "progressive.fade_images=16", "progressive.stable_images=16", "progressive.default_batch_size=8",
]


def _cfg(data, out, *extra):
    return tiny_config(data, out, *PROG, *extra)


def test_progressive_run_reaches_the_target_and_logs_stage_and_alpha(tmp_path):
    data = make_banded_toy(tmp_path)
    result = train(_cfg(data, tmp_path / "run", "log_every=1"), progress=False)
    assert result.step == 10
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["resolution"] for r in lines] == [4, 4, 8, 8, 8, 8, 16, 16, 16, 16]
    assert [r["alpha"] for r in lines][2:6] == [0.0, 0.5, 1.0, 1.0]
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["stage"] == 2 and ckpt["alpha"] == 1.0
    # Sample grids of early stages are upsampled to the target size for display.
    from PIL import Image

    early, final = (Image.open(tmp_path / "run" / "samples" / f"step_{s:06d}.png") for s in (3, 9))
    assert early.size == final.size


def test_resume_mid_fade_across_a_stage_boundary_is_bitwise_exact(tmp_path):
    data = make_banded_toy(tmp_path)
    cfg_half = _cfg(data, tmp_path / "half", "steps=7")
    assert phase_at(7, cfg_half.progressive).fading  # the resume point falls inside stage 2's fade-in
    full = train(_cfg(data, tmp_path / "full", "steps=12"), progress=False)
    train(cfg_half, progress=False)
    half_ckpt = load_checkpoint(tmp_path / "half")
    assert half_ckpt["stage"] == 2 and 0.0 < half_ckpt["alpha"] < 1.0
    resumed = train(_cfg(data, tmp_path / "half", "steps=12"), resume=tmp_path / "half", progress=False)
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "augment", "step", "images_seen", "stage", "alpha"):
        _assert_states_equal(a[key], b[key], key)


def test_target_resolution_must_match_the_data(tmp_path):
    data = make_banded_toy(tmp_path)
    with pytest.raises(MedganError, match=r"target_resolution is 32, but the data is 16"):
        train(_cfg(data, tmp_path / "run", "progressive.target_resolution=32"), progress=False)


@pytest.mark.parametrize(("item", "text"), [
    ("progressive.resolutions=[]", "resolutions"),
    ("progressive.resolutions=[4, 16, 8]", "increasing"),
])
def test_bad_stage_lists_are_refused(tmp_path, item, text):
    with pytest.raises(MedganError, match=text):
        _cfg(make_banded_toy(tmp_path), tmp_path / "run", item)


def test_progressive_checkpoint_samples_through_the_shared_sampler(tmp_path):
    from medgan.synth.sampling import iter_samples, load_generator

    data = make_banded_toy(tmp_path)
    train(_cfg(data, tmp_path / "run"), progress=False)
    gen = load_generator(tmp_path / "run", "cpu")
    batch = next(iter_samples(gen, 1, 5, seed=0))
    assert batch.shape == (5, 1, 16, 16) and batch.dtype.name == "uint8"
    assert torch.is_tensor(torch.from_numpy(batch))
