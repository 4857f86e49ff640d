"""Benchmark statistics: metrics against sklearn / torchmetrics, and the bootstrap on known cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from medgan.benchmark.stats import (
    _ovr_auc,
    compare,
    make_resampler,
    metric_names,
    metric_values,
    run_metrics,
    summarise,
)

NAMES = ["malignant", "normal, benign"]


def _summary(labels: np.ndarray, probas: np.ndarray, key: str, **kw: object) -> dict:
    res = make_resampler(labels, probas.shape[0], **kw)  # type: ignore[arg-type]
    point = metric_values(labels, probas, np.arange(len(labels))[None], NAMES)[key][:, 0]
    boot = metric_values(labels, probas, res.cases, NAMES)[key]
    return summarise(point, boot, res)


def _one_hot(pred: np.ndarray, k: int = 2) -> np.ndarray:
    return np.eye(k)[pred] * 0.8 + 0.1


def test_perfect_classifier_has_accuracy_one_with_ci_one_one() -> None:
    labels = np.array([0] * 30 + [1] * 70)
    probas = np.stack([_one_hot(labels)] * 3)  # 3 seeds, all perfect
    for key in ("accuracy", "balanced_accuracy", "recall/malignant", "auroc_macro"):
        s = _summary(labels, probas, key, resamples=500)
        assert (s["mean"], s["ci_low"], s["ci_high"]) == (1.0, 1.0, 1.0), key


def test_coin_flip_ci_covers_half_with_the_binomial_width() -> None:
    n = 2000
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, n)
    probas = _one_hot(rng.integers(0, 2, n))[None]  # one seed of coin flips
    s = _summary(labels, probas, "accuracy", resamples=2000, seed=3)
    assert s["ci_low"] < 0.5 < s["ci_high"]
    half_width = (s["ci_high"] - s["ci_low"]) / 2
    assert half_width == pytest.approx(1.96 * np.sqrt(0.25 / n), rel=0.12)


def test_stratified_resampling_keeps_every_class_count() -> None:
    labels = np.array([0] * 7 + [1] * 13 + [2] * 5)
    res = make_resampler(labels, 4, resamples=50, seed=0)
    for row in res.cases:
        assert np.bincount(labels[row], minlength=3).tolist() == [7, 13, 5]
    assert res.seeds.shape == (50, 4) and res.seeds.max() < 4
    fixed = make_resampler(labels, 4, resamples=5, resample_seeds=False)
    assert (fixed.seeds == np.arange(4)).all()


def test_metrics_match_sklearn_and_torchmetrics() -> None:
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[labels]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = proba.argmax(1)
    got = run_metrics(proba, labels, names)
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    p, r, f, _ = precision_recall_fscore_support(labels, pred, labels=[0, 1, 2], zero_division=0)
    for c, slug in enumerate(names):
        assert got[f"recall/{slug}"] == pytest.approx(r[c])
        assert got[f"precision/{slug}"] == pytest.approx(p[c])
        assert got[f"f1/{slug}"] == pytest.approx(f[c])
    sk_auc = roc_auc_score(labels, proba, multi_class="ovr", average="macro")
    assert got["auroc_macro"] == pytest.approx(sk_auc, abs=1e-6)  # torchmetrics works in float32
    # The vectorised AUROC behind the bootstrap agrees with torchmetrics on the full set.
    ours = metric_values(labels, proba[None], np.arange(300)[None], names)["auroc_macro"][0, 0]
    assert ours == pytest.approx(got["auroc_macro"], abs=1e-6)


def test_bootstrap_auroc_matches_sklearn_on_resamples_with_ties() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 80)
    scores = np.round(rng.random(80) + 0.3 * labels, 1)  # rounding makes many ties
    res = make_resampler(labels, 1, resamples=5, seed=4)
    got = _ovr_auc(scores, labels == 1, res.cases)
    want = [roc_auc_score(labels[row] == 1, scores[row]) for row in res.cases]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_identical_arms_differ_by_exactly_zero() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 60)
    probas = rng.dirichlet([1, 1], size=(3, 60))
    res = make_resampler(labels, 3, resamples=300)
    point = metric_values(labels, probas, np.arange(60)[None], NAMES)["balanced_accuracy"][:, 0]
    boot = metric_values(labels, probas, res.cases, NAMES)["balanced_accuracy"]
    c = compare(point, boot, point, boot, res)
    assert (c["diff"], c["ci_low"], c["ci_high"], c["p_bootstrap"]) == (0.0, 0.0, 0.0, 1.0)
    assert not c["significant"] and c["p_ttest"] == 1.0 and c["seeds_better"] == c["seeds_worse"] == 0


def test_a_clear_lift_is_significant_and_a_loss_says_it_hurt() -> None:
    rng = np.random.default_rng(6)
    labels = np.array([0] * 60 + [1] * 140)
    good = np.stack([_one_hot(np.where(rng.random(200) < 0.95, labels, 1 - labels)) for _ in range(4)])
    poor = np.stack([_one_hot(np.where(rng.random(200) < 0.70, labels, 1 - labels)) for _ in range(4)])
    res = make_resampler(labels, 4, resamples=500)
    idx = np.arange(200)[None]
    pg, pp = (metric_values(labels, p, idx, NAMES)["recall/malignant"][:, 0] for p in (good, poor))
    bg, bp = (metric_values(labels, p, res.cases, NAMES)["recall/malignant"] for p in (good, poor))
    up = compare(pg, bg, pp, bp, res)
    assert up["significant"] and up["ci_low"] > 0 and up["p_bootstrap"] < 0.01 and up["seeds_better"] == 4
    down = compare(pp, bp, pg, bg, res)
    assert down["significant"] and down["ci_high"] < 0 and down["diff"] == pytest.approx(-up["diff"])


def test_resampling_seeds_widens_the_interval_when_seeds_disagree() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 400)
    # Seed 0 is nearly perfect, seed 1 close to chance: the seed-to-seed spread is large.
    probas = np.stack([_one_hot(np.where(rng.random(400) < acc, labels, 1 - labels)) for acc in (0.95, 0.55)])
    narrow = _summary(labels, probas, "accuracy", resamples=1000, resample_seeds=False)
    wide = _summary(labels, probas, "accuracy", resamples=1000, resample_seeds=True)
    assert narrow["mean"] == wide["mean"]
    assert wide["ci_high"] - wide["ci_low"] > 3 * (narrow["ci_high"] - narrow["ci_low"])


def test_metric_names_put_the_target_class_first() -> None:
    names = metric_names(["normal", "pneumonia"], target=1)
    assert names[:4] == ["balanced_accuracy", "recall/pneumonia", "precision/pneumonia", "f1/pneumonia"]
    assert names.index("recall/normal") > names.index("auroc_macro")
