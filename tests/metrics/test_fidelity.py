"""FID and KID through torchmetrics on precomputed features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from medgan.metrics.fidelity import fid, fidelity_metrics, kid


def _fid_closed_form(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root (a check, not the implementation)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * covmean))


def test_fid_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    b = rng.normal(size=(400, 6)) @ np.diag([1, 2, 1, 0.5, 1, 1]) + 0.3
    assert fid(a, b) == pytest.approx(_fid_closed_form(a, b), rel=1e-6)


def test_fid_is_zero_for_identical_sets_and_grows_with_shift() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 4))
    assert abs(fid(a, a)) < 1e-6
    assert fid(a, a + 1.0) == pytest.approx(4.0, rel=1e-6)  # ||mu shift||^2 with equal covariances


def test_fid_errors() -> None:
    with pytest.raises(ValueError, match="feature sizes differ"):
        fid(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        fid(np.zeros((5, 2)), np.zeros((1, 2)))


def test_kid_near_zero_for_same_distribution_and_seeded() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    state = torch.get_rng_state()
    same_mean, same_std = kid(a, b, subset_size=100, seed=0)
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is untouched
    far_mean, _ = kid(a, b + 2.0, subset_size=100, seed=0)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert far_mean > 10 * abs(same_mean)
    assert kid(a, b, subset_size=100, seed=0) == (same_mean, same_std)


def test_kid_lowers_the_subset_size_for_small_sets() -> None:
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(12, 3)), rng.normal(size=(7, 3))
    mean, std = kid(real, fake, subset_size=100)
    assert np.isfinite(mean) and np.isfinite(std)
    # The subsets drawn are of min(N, M) = 7 samples: the same draws as asking for 7, not 6.
    assert (mean, std) == kid(real, fake, subset_size=7) != kid(real, fake, subset_size=6)


def test_fidelity_metrics_returns_floats() -> None:
    rng = np.random.default_rng(4)
    out = fidelity_metrics(rng.normal(size=(50, 3)), rng.normal(size=(40, 3)))
    assert set(out) == {"fid", "kid_mean", "kid_std"}
    assert all(type(v) is float for v in out.values())
