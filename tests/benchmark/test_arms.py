"""What each arm trains on, the seeded classical augmentation, and the GAN's train-only data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.benchmark.arms import (
    ClassicalAugment,
    arm_data,
    take_per_class,
    write_train_only,
)
from medgan.benchmark.config import ClassicalConfig
from medgan.data.dataset import load_dataset
from medgan.synth.plan import ClassPlan
from tests.conftest import make_disc_toy


def _pool(counts: list[int], shape: tuple[int, ...] = (1, 4, 4)) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    images = np.stack([np.full(shape, 100 + i % 100, np.uint8) for i in range(len(labels))])
    return images, labels


def test_each_arm_gets_its_training_data() -> None:
    real = (np.zeros((8, 1, 4, 4), np.uint8), np.array([0, 0, 1, 1, 1, 1, 1, 1]))
    pool = _pool([6, 6])
    add = ClassPlan("balance").per_class([2, 6])
    assert add == [4, 0]

    plain = arm_data("real", real, None, add)
    assert plain.train is real and plain.extra is None and not plain.classical
    assert (plain.n_real, plain.n_synthetic) == ([2, 6], [0, 0])
    assert arm_data("real+classical", real, None, add).classical

    both = arm_data("real+classical+synthetic", real, pool, add)
    assert both.classical and both.train is real and both.n_synthetic == [4, 0]
    assert both.extra is not None and np.bincount(both.extra[1]).tolist() == [4]

    tstr = arm_data("synthetic-only", real, pool, add)
    assert tstr.extra is None and not tstr.classical and (tstr.n_real, tstr.n_synthetic) == ([0, 0], [2, 6])
    assert np.bincount(tstr.train[1]).tolist() == [2, 6] and tstr.train[0].min() >= 100  # all synthetic

    with pytest.raises(ValueError, match="needs synthetic"):
        arm_data("real+synthetic", real, None, add)
    with pytest.raises(ValueError, match="not enough"):
        take_per_class(*_pool([1, 6]), [4, 0])


def test_classical_augment_is_seeded_and_keeps_shape_and_range() -> None:
    x = torch.rand(16, 1, 16, 16) * 2 - 1
    cfg = ClassicalConfig(affine_prob=1.0, noise_prob=1.0, contrast_prob=1.0, rotate90_prob=0.5)
    a = ClassicalAugment(cfg, 2, seed=3)(x)
    b = ClassicalAugment(cfg, 2, seed=3)(x)
    c = ClassicalAugment(cfg, 2, seed=4)(x)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    # Global RNG use elsewhere does not change the augmentation.
    torch.manual_seed(123)
    assert torch.equal(ClassicalAugment(cfg, 2, seed=3)(x), a)

    vol = torch.rand(4, 1, 8, 8, 8) * 2 - 1
    out = ClassicalAugment(ClassicalConfig(flip_axes=[0, 2], affine_prob=1.0), 3, seed=0)(vol)
    assert out.shape == vol.shape and not torch.equal(out, vol)


def test_classical_augment_operations() -> None:
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    off = ClassicalConfig(flip_prob=0.0, affine_prob=0.0, noise_prob=0.0, contrast_prob=0.0)
    assert torch.equal(ClassicalAugment(off, 2, seed=0)(x), x)
    flip = ClassicalConfig(flip_prob=1.0, flip_axes=[1], affine_prob=0.0, noise_prob=0.0, contrast_prob=0.0)
    assert torch.equal(ClassicalAugment(flip, 2, seed=0)(x), x.flip(-1))
    # An identity affine (no rotation, zoom or shift) leaves the image as it was.
    still = ClassicalConfig(flip_prob=0.0, affine_prob=1.0, rotate_degrees=0.0, scale=0.0, translate=0.0,
                            noise_prob=0.0, contrast_prob=0.0)
    torch.testing.assert_close(ClassicalAugment(still, 2, seed=0)(x), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="flip_axes"):
        ClassicalAugment(ClassicalConfig(flip_axes=[2]), 2, seed=0)


def test_train_only_copy_has_no_val_or_test_images(tmp_path: Path) -> None:
    ds = load_dataset(make_disc_toy(tmp_path))
    copy = load_dataset(write_train_only(ds, tmp_path / "gan_data"))
    assert np.array_equal(copy.images["train"], ds.images["train"])
    assert np.array_equal(copy.labels["train"], ds.labels["train"])
    assert len(copy.images["val"]) == len(copy.images["test"]) == 0
    assert copy.info.class_names == ds.info.class_names and ds.info.sha256 in copy.info.source
