"""Tests for medgan.synth.sampling: batch-size-free output, latents, truncation, checkpoint loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.errors import MedganError
from medgan.networks import build_generator
from medgan.synth import sampling
from medgan.synth.sampling import (
    LATENT_BLOCK,
    LoadedGenerator,
    forward_block,
    iter_samples,
    keep_largest_component,
    load_generator,
    sample_block,
    sample_classes,
    sample_latents,
)
from medgan.training.checkpoint import load_checkpoint, save_checkpoint
from medgan.training.loop import train
from medgan.utils import file_sha256
from tests.conftest import make_banded_toy
from tests.training.helpers import tiny_config


def _loaded(spatial_dims: int, num_classes: int = 2) -> LoadedGenerator:
    """A small randomly initialised cgan generator, as load_generator would hand it over."""
    torch.manual_seed(0)
    size = 16 if spatial_dims == 2 else 8
    G = build_generator("residual", z_dim=16, num_classes=num_classes, out_channels=1, size=size,
                        spatial_dims=spatial_dims, base_channels=4, max_channels=16)
    G.eval().requires_grad_(False)
    return LoadedGenerator(
        G=G, class_names=[f"c{k}" for k in range(max(num_classes, 2))], num_classes=num_classes, z_dim=16,
        spatial_dims=spatial_dims, channels=1, size=[size] * spatial_dims, spacing=None,
        checkpoint_sha256="ab" * 32, checkpoint_path="-", dataset={}, config={}, family="residual",
        device=torch.device("cpu"),
    )


def _all(gen: LoadedGenerator, class_index: int | None, n: int, **kw) -> np.ndarray:
    return np.concatenate(list(iter_samples(gen, class_index, n, **kw)))


# Output independent of the batch size.


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_iter_samples_output_does_not_depend_on_batch_size(spatial_dims: int) -> None:
    gen = _loaded(spatial_dims)
    n = 2 * LATENT_BLOCK + 9  # two full latent blocks and a padded one
    ref = None
    for bs in (1, 7, LATENT_BLOCK, 100, 1000):
        batches = list(iter_samples(gen, 1, n, seed=3, batch_size=bs))
        assert [len(b) for b in batches[:-1]] == [bs] * (len(batches) - 1)
        assert sum(len(b) for b in batches) == n
        out = np.concatenate(batches)
        assert out.dtype == np.uint8 and out.shape == (n, 1, *gen.size)
        if ref is None:
            ref = out
        np.testing.assert_array_equal(out, ref, err_msg=f"batch_size={bs}")
    assert len(np.unique(ref.reshape(n, -1), axis=0)) == n  # every sample is different
    # Sample i does not depend on n either: a shorter run is a prefix of a longer one.
    np.testing.assert_array_equal(_all(gen, 1, 70, seed=3, batch_size=9), ref[:70])


def test_sample_block_is_random_access_into_iter_samples() -> None:
    # SyntheticDataset reads one block at a time: the bytes must be those of iter_samples at the same positions.
    gen = _loaded(2)
    n = 2 * LATENT_BLOCK + 9
    ref = _all(gen, 1, n, seed=3, batch_size=50)
    np.testing.assert_array_equal(sample_block(gen, 1, 2, seed=3, keep=9), ref[2 * LATENT_BLOCK:])
    np.testing.assert_array_equal(sample_block(gen, 1, 1, seed=3), ref[LATENT_BLOCK : 2 * LATENT_BLOCK])
    np.testing.assert_array_equal(sample_block(gen, 1, 0, seed=3, keep=5), ref[:5])
    for bad in ({"block": -1}, {"keep": 0}, {"keep": LATENT_BLOCK + 1}):
        with pytest.raises(MedganError, match="out of range"):
            sample_block(gen, 1, **{"block": 0, **bad})
    with pytest.raises(MedganError, match="not one of this model's 2 classes"):
        sample_block(gen, 2, 0)


class _Recorder(torch.nn.Module):
    """Wraps G and records the latents of every forward call."""

    def __init__(self, G: torch.nn.Module) -> None:
        super().__init__()
        self.G = G
        self.calls: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append(z.clone())
        return self.G(z, y)


def test_generator_always_runs_on_whole_latent_blocks() -> None:
    # Why the output cannot depend on the batch size: kernels may round differently for another
    # batch shape (differences of ~1e-7 that rarely, but sometimes, flip a uint8 pixel), so G only
    # ever sees the same (LATENT_BLOCK, z_dim) blocks of latents, whatever the batch size.
    gen = _loaded(2)
    recorded = {}
    for bs in (1, 50, 300):
        gen.G = _Recorder(gen.G.G if isinstance(gen.G, _Recorder) else gen.G)
        list(iter_samples(gen, 0, 150, seed=1, batch_size=bs))
        assert all(z.shape == (LATENT_BLOCK, 16) for z in gen.G.calls)
        recorded[bs] = torch.cat(gen.G.calls)
    assert len(recorded[1]) == 3 * LATENT_BLOCK  # 150 samples: two blocks and a padded third
    assert torch.equal(recorded[1], recorded[50]) and torch.equal(recorded[1], recorded[300])
    torch.testing.assert_close(recorded[1][:150], sample_latents(16, 150, seed=1, class_index=0), rtol=0, atol=0)


def test_forward_block_bounds_memory_for_large_volumes() -> None:
    assert forward_block([28, 28]) == forward_block([224, 224]) == forward_block([28, 28, 28]) == LATENT_BLOCK
    assert forward_block([64, 64, 64]) == 16 and forward_block([128, 128, 128]) == 2
    assert forward_block([1024, 1024, 1024]) == 1
    assert all(LATENT_BLOCK % forward_block([s] * 3) == 0 for s in (8, 28, 64, 100, 128))


def test_small_forward_blocks_keep_the_output_free_of_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "_FORWARD_VOXELS", 8 * 16 * 16)  # as if 16² images were large volumes
    gen = _loaded(2)
    assert forward_block(gen.size) == 8
    outs = {}
    for bs in (3, 64, 500):
        gen.G = _Recorder(gen.G.G if isinstance(gen.G, _Recorder) else gen.G)
        outs[bs] = _all(gen, 1, 150, seed=2, batch_size=bs)
        assert all(z.shape == (8, 16) for z in gen.G.calls)
        assert len(gen.G.calls) == 8 + 8 + 3  # per latent block 8 passes; the last 22 samples need 3
    np.testing.assert_array_equal(outs[3], outs[64])
    np.testing.assert_array_equal(outs[3], outs[500])


def test_seed_and_class_change_the_output() -> None:
    gen = _loaded(2)
    a = _all(gen, 0, 20, seed=1)
    np.testing.assert_array_equal(a, _all(gen, 0, 20, seed=1))
    assert not np.array_equal(a, _all(gen, 0, 20, seed=2))
    assert not np.array_equal(a, _all(gen, 1, 20, seed=1))
    z0, z1 = sample_latents(16, 20, seed=1, class_index=0), sample_latents(16, 20, seed=1, class_index=1)
    assert z0.shape == (20, 16) and not torch.equal(z0, z1)


def test_unconditional_generator_takes_no_class() -> None:
    gen = _loaded(2, num_classes=0)
    out = _all(gen, None, 5, seed=0)
    assert out.shape == (5, 1, 16, 16)


# Truncation.


def test_truncation_keeps_latents_within_bounds() -> None:
    plain = sample_latents(32, 500, seed=0)
    assert plain.abs().max() > 2.0  # untruncated latents do reach past the bound
    for t in (0.5, 1.0, 2.0):
        z = sample_latents(32, 500, seed=0, truncation=t)
        assert z.shape == (500, 32)
        assert z.abs().max() <= t
        assert z.std() > 0.5 * min(t, 1.0)  # still spread over the interval, not collapsed
    gen = _loaded(2)
    assert not np.array_equal(_all(gen, 0, 10, seed=0), _all(gen, 0, 10, seed=0, truncation=0.5))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_truncation_is_an_error(bad: float) -> None:
    with pytest.raises(MedganError, match="--truncation must be a positive number"):
        sample_latents(8, 4, truncation=bad)
    with pytest.raises(MedganError, match="--truncation must be a positive number"):
        next(iter_samples(_loaded(2), 0, 4, truncation=bad))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, r"--n must be a positive number of samples, got 0"),
        ({"n": -1}, r"--n must be a positive number of samples, got -1"),
        ({"batch_size": 0}, r"--batch-size must be positive, got 0"),
        ({"seed": -3}, r"--seed must be a non-negative integer, got -3"),
        ({"class_index": 2}, r"class index 2 is not one of this model's 2 classes"),
        ({"class_index": None}, r"class index None is not one of this model's 2 classes"),
    ],
)
def test_iter_samples_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"class_index": 0, "n": 4, "seed": 0, "batch_size": 4, **kwargs}
    gen = _loaded(2)
    with pytest.raises(MedganError, match=message):
        next(iter_samples(gen, args.pop("class_index"), args.pop("n"), **args))


# Loading checkpoints.


@pytest.fixture(scope="module")
def progressive_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Progressive 8² runs stopped in stage 0, in the stage-1 fade-in, and at the end of the schedule.

    The schedule (64 images per phase, batch 16) is: stage 0 stable for steps 0-3, stage 1 fading
    in for steps 4-7 and stable for steps 8-11.
    """
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("progressive")
    data = make_banded_toy(root, size=8)
    schedule = ["model.family=progressive", "progressive.target_resolution=8", "progressive.start_resolution=4",
                "progressive.fade_images=64", "progressive.stable_images=64", "progressive.default_batch_size=16"]
    runs = {}
    for name, steps in (("stage0", 2), ("fading", 6), ("done", 12)):
        runs[name] = train(tiny_config(data, root / name, f"steps={steps}", *schedule), progress=False).run_dir
    return runs


def test_load_generator_refuses_an_unfinished_progressive_run(progressive_runs: dict[str, Path]) -> None:
    assert load_checkpoint(progressive_runs["stage0"])["stage"] == 0
    with pytest.raises(MedganError, match=r"at stage 1 of 2 \(fade-in alpha 1\.00\).*train it to its last stage"):
        load_generator(progressive_runs["stage0"], "cpu")
    fading = load_checkpoint(progressive_runs["fading"])
    assert fading["stage"] == 1 and 0 < fading["alpha"] < 1
    with pytest.raises(MedganError, match=r"at stage 2 of 2 \(fade-in alpha 0\.\d\d\)"):
        load_generator(progressive_runs["fading"], "cpu")


def test_load_generator_rebuilds_a_finished_run(progressive_runs: dict[str, Path]) -> None:
    gen = load_generator(progressive_runs["done"], "cpu")
    ckpt_file = Path(gen.checkpoint_path)
    assert ckpt_file.name == "step_000012.pt" and gen.checkpoint_sha256 == file_sha256(ckpt_file)
    assert gen.family == "progressive" and gen.class_names == ["class0", "class1"] and gen.num_classes == 2
    assert (gen.spatial_dims, gen.channels, gen.size, gen.z_dim) == (2, 1, [8, 8], 16)
    assert not gen.G.training and not any(p.requires_grad for p in gen.G.parameters())
    images, labels, names = sample_classes(progressive_runs["done"], n_per_class=3, device="cpu")
    assert images.shape == (6, 1, 8, 8) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] and names == ["class0", "class1"]
    np.testing.assert_array_equal(images[:3], _all(gen, 0, 3, seed=0))


def test_load_generator_refuses_a_checkpoint_without_a_generator(tmp_path: Path) -> None:
    path = save_checkpoint({"step": 0}, tmp_path / "step_000000.pt")
    with pytest.raises(MedganError, match="checkpoint lacks G_ema, model, dataset, class_names, config"):
        load_generator(path, "cpu")


# Mask cleanup (model.g_keep_largest).


def test_keep_largest_component_keeps_the_largest_blob_with_full_connectivity() -> None:
    masks = np.zeros((3, 1, 6, 6, 6), np.uint8)
    masks[0, 0, 0:2, 0:2, 0:2] = 255  # 8 voxels ...
    masks[0, 0, 2, 2, 2] = 255  # ... joined through a corner (26-connectivity): one blob of 9
    masks[0, 0, 5, 5, 0] = 255  # a stray voxel
    masks[1, 0, 4:6, 4:6, 4:6] = 255  # two blobs: 8 voxels and 3
    masks[1, 0, 0, 0, 0:3] = 255
    out = keep_largest_component(masks)
    assert out.dtype == np.uint8 and out.shape == masks.shape
    assert int((out[0] > 0).sum()) == 9 and out[0, 0, 2, 2, 2] == 255 and out[0, 0, 5, 5, 0] == 0
    assert int((out[1] > 0).sum()) == 8 and out[1, 0, 0, 0, 0] == 0
    assert not out[2].any()  # an empty mask stays empty
    flat = np.zeros((1, 1, 5, 5), np.uint8)  # 2D: 8-connectivity
    flat[0, 0, 0, 0] = flat[0, 0, 1, 1] = flat[0, 0, 4, 4] = 255
    assert int((keep_largest_component(flat) > 0).sum()) == 2


def test_a_generator_with_mask_cleanup_samples_one_component_per_mask() -> None:
    from scipy import ndimage

    gen = _loaded(3)
    gen.G.binary = True  # a random binary G scatters blobs all over the volume
    raw = _all(gen, 0, 8, seed=1)
    count = [ndimage.label(v[0] > 127, structure=np.ones((3, 3, 3)))[1] for v in raw]
    assert max(count) > 1
    gen.keep_largest_component = True
    clean = _all(gen, 0, 8, seed=1)
    assert set(np.unique(clean).tolist()) <= {0, 255}
    for r, c in zip(raw, clean, strict=True):
        assert ndimage.label(c[0] > 127, structure=np.ones((3, 3, 3)))[1] <= 1
        assert not (c & ~r).any()  # only removes voxels
