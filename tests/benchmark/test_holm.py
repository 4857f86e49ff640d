"""Statistics for many arms: Holm's adjustment, the primary comparison chosen on validation, the power line."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from medgan.benchmark.analysis import FractionRuns, analyse_fraction
from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.stats import binomial_se, choose_on_validation, detectable_lift, holm
from medgan.data.dataset import DatasetInfo, PreparedDataset


def test_holm_matches_a_hand_computed_example() -> None:
    # Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 so that
    # the adjusted values keep the order of the raw ones (the step-down's running maximum).
    assert holm([0.01, 0.04, 0.03, 0.005]) == [0.03, 0.06, 0.06, 0.02]
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02]) == [0.02]  # a family of one is not adjusted
    assert holm([]) == []
    # NaN is left out of the family (m = 2 here) and stays NaN.
    got = holm([math.nan, 0.2, 0.01])
    assert math.isnan(got[0]) and got[1:] == [0.2, 0.02]


def test_holm_agrees_with_statsmodels_when_installed() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(0, 0.2, size=12)
    want = multitest.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm(p), want, atol=1e-12)


def test_choose_on_validation_takes_the_best_mean_first_of_equals() -> None:
    assert choose_on_validation({"a": [0.6, 0.8], "b": [0.75, 0.75], "c": [0.7, 0.9]}) == "c"
    assert choose_on_validation({"a": [0.7], "b": [0.7]}) == "a"
    assert choose_on_validation({}) is None


def test_detectable_lift_follows_its_formula() -> None:
    diffs = [0.05, 0.02, -0.01, 0.04, 0.03]
    se_test = binomial_se([0.7], [42])
    assert se_test == pytest.approx(math.sqrt(0.7 * 0.3 / 42))
    got = detectable_lift(diffs, se_test, alpha=0.05, power=0.8)
    se_seeds = np.std(diffs, ddof=1) / math.sqrt(5)
    se = math.sqrt(se_seeds**2 + 2 * se_test**2)
    assert got["se"] == pytest.approx(se) and got["lift"] == pytest.approx(
        (1.959964 + 0.841621) * se, rel=1e-5
    )
    # Balanced accuracy: the mean of the per-class recalls, so its SE is sqrt(sum p(1-p)/n) / K.
    assert binomial_se([0.5, 0.9], [100, 400]) == pytest.approx(math.sqrt(0.25 / 100 + 0.09 / 400) / 2)
    # A perfect recall on 10 images is taken as 0.95: its standard error is not zero.
    assert binomial_se([1.0], [10]) == pytest.approx(math.sqrt(0.95 * 0.05 / 10))
    one = detectable_lift([0.1], se_test)  # one seed: only the test-set part is known
    assert math.isnan(one["se_seeds"]) and one["se"] == pytest.approx(math.sqrt(2) * se_test)


def _fake_runs(labels: np.ndarray, quality: dict[str, float], val: dict[str, float], seeds: int) -> dict:
    """Run records with predictions right with probability ``quality[arm]`` and a given val score."""
    rng = np.random.default_rng(0)
    sha = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    runs = {}
    for arm, q in quality.items():
        for s in range(seeds):
            pred = np.where(rng.random(len(labels)) < q, labels, 1 - labels)
            proba = np.eye(2)[pred] * 0.8 + 0.1
            runs[(arm, s)] = {
                "test_labels_sha256": sha,
                "test_proba": proba.tolist(),
                "val_balanced_accuracy": val[arm],
                "n_train": {"real": [10, 30], "synthetic": [0, 0]},
                "steps": 60,
                "selected_step": 60 - s,
                "selected_last": s == 0,
                "curation": None,
            }
    return runs


def test_primary_is_the_best_synthetic_arm_on_validation_and_the_rest_is_holm_adjusted() -> None:
    labels = np.array([0] * 40 + [1] * 60)
    info = DatasetInfo(
        name="toy",
        class_names=["lesion", "normal"],
        channels=1,
        spatial_dims=2,
        size=[4, 4],
        source="test",
        sha256="x",
    )
    ds = PreparedDataset(path=Path("toy"), info=info, images={}, labels={"test": labels})
    arms = ["real", "real+classical", "real+synthetic", "real+classical+synthetic", "synthetic-only"]
    quality = {
        "real": 0.7,
        "real+classical": 0.72,
        "real+synthetic": 0.74,
        "real+classical+synthetic": 0.9,
        "synthetic-only": 0.5,
    }
    # On validation real+synthetic looks best, although real+classical+synthetic is better on test: the
    # primary arm is chosen on validation, never on the test split.
    val = {
        "real": 0.7,
        "real+classical": 0.7,
        "real+synthetic": 0.8,
        "real+classical+synthetic": 0.75,
        "synthetic-only": 0.9,
    }
    cfg = BenchmarkConfig(arms=arms, seeds=3, target_class="lesion")
    cfg.bootstrap.resamples = 300
    got = analyse_fraction(
        cfg, ds, FractionRuns(1.0, arms, [0, 1, 2], _fake_runs(labels, quality, val, 3)), 0
    )
    p = got["primary"]
    assert (p["arm"], p["baseline"], p["metric"]) == ("real+synthetic", "real+classical", "recall/lesion")
    primary = [c for c in got["comparisons"] if c["primary"]]
    assert len(primary) == 1 and (primary[0]["arm"], primary[0]["baseline"]) == (
        "real+synthetic",
        "real+classical",
    )
    # The primary p-value stands; every other (comparison, headline metric) pair is adjusted together.
    assert (
        primary[0]["metrics"]["recall/lesion"]["p_holm"]
        == primary[0]["metrics"]["recall/lesion"]["p_bootstrap"]
    )
    family = [
        (c, k)
        for c in got["comparisons"]
        for k in ("recall/lesion", "balanced_accuracy")
        if not (c["primary"] and k == "recall/lesion")
    ]
    assert len(family) == 2 * len(got["comparisons"]) - 1
    assert [c["metrics"][k]["p_holm"] for c, k in family] == holm(
        [c["metrics"][k]["p_bootstrap"] for c, k in family]
    )
    assert all(c["metrics"][k]["p_holm"] >= c["metrics"][k]["p_bootstrap"] for c, k in family)
    # The power line: a finite detectable lift on the 40 lesion test images.
    assert got["power"]["n_test"] == 40 and 0 < got["power"]["lift"] < 1
    # Runs whose selected step was their last are listed for the report's check.
    assert got["selected_last"] == [f"{arm}:0" for arm in arms]
    assert got["steps"]["real"] == [60, 60, 60]


def test_the_baseline_falls_back_to_real_when_real_classical_did_not_run() -> None:
    labels = np.array([0] * 20 + [1] * 20)
    info = DatasetInfo(
        name="toy",
        class_names=["lesion", "normal"],
        channels=1,
        spatial_dims=2,
        size=[4, 4],
        source="test",
        sha256="x",
    )
    ds = PreparedDataset(path=Path("toy"), info=info, images={}, labels={"test": labels})
    arms = ["real", "real+synthetic"]
    runs = _fake_runs(labels, {"real": 0.7, "real+synthetic": 0.7}, {"real": 0.7, "real+synthetic": 0.7}, 2)
    cfg = BenchmarkConfig(arms=arms, seeds=2, target_class="lesion")
    cfg.bootstrap.resamples = 100
    cfg.primary.metric = "balanced_accuracy"
    got = analyse_fraction(cfg, ds, FractionRuns(1.0, arms, [0, 1], runs), 0)
    assert (got["primary"]["arm"], got["primary"]["baseline"], got["primary"]["metric"]) == (
        "real+synthetic",
        "real",
        "balanced_accuracy",
    )
    assert got["power"]["n_test"] == 40
