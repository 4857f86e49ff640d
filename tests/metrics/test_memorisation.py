"""The memorisation audit on synthetic feature sets."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.metrics.memorisation import memorisation_audit


def test_copies_are_flagged_and_honest_samples_are_not() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(500, 8))
    reference = rng.normal(size=(300, 8))
    honest = rng.normal(size=(190, 8))
    synthetic = np.concatenate([honest, train[:10] + 1e-9])  # 10 copies out of 200
    audit = memorisation_audit(synthetic, train, reference)
    m = audit.metrics()
    assert audit.likely_copies[190:].all()
    assert 0.05 <= m["memorisation/fraction"] <= 0.08
    assert m["memorisation/n_likely_copies"] == audit.likely_copies.sum()
    assert m["memorisation/threshold"] == pytest.approx(np.percentile(audit.reference, 1.0))
    assert m["memorisation/min_distance"] < 1e-6
    assert all(type(v) is float for v in m.values())


def test_closest_pairs_are_sorted_and_point_at_the_nearest_training_sample() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(50, 3))
    synthetic = train[[7, 3, 9]] + np.array([[0.3], [0.0], [0.1]])
    audit = memorisation_audit(synthetic, train, rng.normal(size=(40, 3)))
    pairs = audit.closest_pairs(16)
    assert [p[0] for p in pairs] == [1, 2, 0]
    assert [p[1] for p in pairs] == [3, 9, 7]
    assert [p[2] for p in pairs] == sorted(p[2] for p in pairs)


def test_percentile_moves_the_threshold() -> None:
    rng = np.random.default_rng(2)
    train, ref, syn = rng.normal(size=(100, 4)), rng.normal(size=(100, 4)), rng.normal(size=(100, 4))
    low = memorisation_audit(syn, train, ref, percentile=1.0)
    high = memorisation_audit(syn, train, ref, percentile=50.0)
    assert high.threshold > low.threshold
    assert 0.3 < high.metrics()["memorisation/fraction"] < 0.7
    with pytest.raises(ValueError, match="percentile"):
        memorisation_audit(syn, train, ref, percentile=0)
