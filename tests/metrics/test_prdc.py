"""Precision / recall / density / coverage on Gaussian features, against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.errors import MedganError
from medgan.metrics.prdc import knn_radii, prdc


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The definitions written out with full distance matrices (independent of NearestNeighbors)."""

    def radii(x: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radii(real), radii(fake)
    d = np.linalg.norm(real[:, None] - fake[None], axis=-1)  # (N, M)
    inside_real = d <= r_real[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d <= r_fake[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum() / (k * fake.shape[0])),
        "coverage": float((d.min(axis=1) <= r_real).mean()),
    }


@pytest.mark.parametrize("shift", [0.0, 0.7, 3.0])
def test_matches_the_definitions(shift: float) -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 5))
    fake = rng.normal(size=(90, 5)) + shift
    ours = prdc(real, fake, k=3)
    ref = _brute_force(real, fake, 3)
    assert ours == pytest.approx(ref)


def test_same_distribution_scores_high_and_shift_scores_low() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 4))
    same = prdc(real, rng.normal(size=(400, 4)), k=3)
    far = prdc(real, rng.normal(size=(400, 4)) + 4.0, k=3)
    assert same["precision"] > 0.8 and same["recall"] > 0.8 and same["coverage"] > 0.8
    assert 0.7 < same["density"] < 1.3
    assert far["precision"] < 0.05 and far["recall"] < 0.05 and far["coverage"] < 0.05


def test_mode_collapse_keeps_precision_but_loses_recall() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 4))
    collapsed = np.repeat(real[:1] * 0.0, 200, axis=0)  # every sample at the mode
    out = prdc(real, collapsed, k=3)
    assert out["precision"] == 1.0
    assert out["recall"] <= 0.01
    assert out["coverage"] < 0.1
    assert out["density"] > 1.0  # crowded in the densest region: density exceeds 1


def test_boundary_points_count_as_inside() -> None:
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    # k=1: each real ball reaches its nearest neighbour, radius 1; a fake at 4.0 is on the boundary.
    out = prdc(real, np.array([[4.0], [4.0], [9.0]]), k=1)
    assert out["precision"] == pytest.approx(2 / 3)


def test_knn_radii_skip_the_point_itself() -> None:
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_too_few_samples_says_how_many_are_needed() -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(MedganError, match=r"k\+1 = 4"):
        prdc(rng.normal(size=(10, 2)), rng.normal(size=(3, 2)), k=3)


def test_bad_shapes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="equal F"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="k must"):
        prdc(np.zeros((10, 2)), np.zeros((10, 2)), k=0)
