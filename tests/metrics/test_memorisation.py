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


def test_p_value_is_calibrated_for_an_honest_generator_and_small_for_a_copier() -> None:
    rng = np.random.default_rng(3)
    null = []
    for _ in range(200):  # samples drawn like the held-out images: no copying
        train, ref, syn = rng.normal(size=(300, 4)), rng.normal(size=(150, 4)), rng.normal(size=(400, 4))
        null.append(memorisation_audit(syn, train, ref).p_value())
    assert np.mean(np.array(null) < 0.05) <= 0.05  # conservative: at most its nominal rate of false alarms
    assert np.mean(np.array(null) < 0.5) > 0.2  # but not a test that never speaks
    train, ref = rng.normal(size=(500, 4)), rng.normal(size=(600, 4))
    copier = np.concatenate([rng.normal(size=(380, 4)), train[:20] + 1e-6])  # 5 % copies, 1 % expected
    m = memorisation_audit(copier, train, ref).metrics()
    assert m["memorisation/n_likely_copies"] >= 20 and m["memorisation/p_value"] < 1e-3
    none = memorisation_audit(rng.normal(size=(5, 4)) + 50, train, ref)  # far from everything
    assert none.metrics()["memorisation/n_likely_copies"] == 0 and none.p_value() == 1.0


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


def test_translation_audit_skips_the_own_source_and_flags_copies_of_either_domain() -> None:
    from medgan.metrics.memorisation import translation_audit

    rng = np.random.default_rng(3)
    src_train, tgt_train = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) + 3.0
    src_ref, tgt_ref = rng.normal(size=(100, 6)), rng.normal(size=(100, 6)) + 3.0
    idx = np.arange(30)
    # 28 faithful translations (each near its own source), one copy of another source image, one target copy.
    out = src_train[idx] + 1e-4
    out[28] = src_train[150] + 1e-9
    out[29] = tgt_train[5] + 1e-9
    audit = translation_audit(out, src_train[idx], idx, src_train, tgt_train, src_ref, tgt_ref)
    m = audit.metrics()
    assert np.flatnonzero(audit.likely_copies).tolist() == [28, 29]
    assert m["memorisation/fraction"] == pytest.approx(2 / 30)
    assert m["memorisation/fraction_other_source"] == pytest.approx(1 / 30)
    assert m["memorisation/fraction_target"] == pytest.approx(1 / 30)
    # Output 0's own source is skipped when looking for other source images.
    assert audit.nearest_other_source[28] == 150 and audit.nearest_other_source[0] != 0
    assert m["memorisation/median_distance_to_source"] < 1e-3
    # The plain audit against every training image would call all 30 copies.
    every_train, every_ref = np.concatenate([src_train, tgt_train]), np.concatenate([src_ref, tgt_ref])
    plain = memorisation_audit(out, every_train, every_ref)
    assert plain.likely_copies.all()
