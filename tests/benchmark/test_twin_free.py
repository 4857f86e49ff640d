"""The benchmark's second reading on the test images without a near-duplicate in the train split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from medgan.benchmark.analysis import FractionRuns, analyse_fraction
from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.report import _twin_free_clause, _twin_free_markdown, twin_free_part
from medgan.data.dataset import DatasetInfo, PreparedDataset


def _dataset(labels: np.ndarray) -> PreparedDataset:
    info = DatasetInfo(name="toy", class_names=["lesion", "normal"], channels=1, spatial_dims=2, size=[4, 4],
                       source="test", sha256="x")
    return PreparedDataset(path=Path("toy"), info=info, images={}, labels={"test": labels})


def _runs(labels: np.ndarray, right: dict[str, np.ndarray], seeds: int) -> dict:
    """Run records whose prediction is right exactly where ``right[arm][seed]`` says."""
    sha = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    runs = {}
    for arm, table in right.items():
        for s in range(seeds):
            pred = np.where(table[s], labels, 1 - labels)
            runs[(arm, s)] = {"test_labels_sha256": sha, "test_proba": (np.eye(2)[pred] * 0.8 + 0.1).tolist(),
                              "val_balanced_accuracy": 0.7, "n_train": {"real": [10, 30], "synthetic": [0, 0]},
                              "steps": 60, "selected_step": 60, "selected_last": False, "curation": None}
    return runs


@pytest.fixture
def leaky() -> tuple[BenchmarkConfig, PreparedDataset, FractionRuns, np.ndarray]:
    """40 of 100 test images have a train twin; the real arm gets every one of them right, else both arms are alike."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 50)
    twin = np.zeros(100, dtype=bool)
    twin[:40] = True
    common = rng.random((3, 100)) < 0.7
    right = {"real": common | twin, "real+synthetic": common}
    cfg = BenchmarkConfig(arms=["real", "real+synthetic"], seeds=3, target_class="lesion")
    cfg.bootstrap.resamples = 300
    cfg.primary.metric = "balanced_accuracy"
    return cfg, _dataset(labels), FractionRuns(1.0, cfg.arms, [0, 1, 2], _runs(labels, right, 3)), twin


def test_a_test_mask_scores_exactly_the_kept_images(leaky) -> None:
    cfg, ds, fr, twin = leaky
    keep = ~twin
    masked = analyse_fraction(cfg, ds, fr, 0, test_mask=keep)
    # The same as a dataset whose test split holds only the kept images, and runs tested on it.
    labels = ds.labels["test"][keep]
    sha = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    cut = {k: {**r, "test_labels_sha256": sha, "test_proba": np.asarray(r["test_proba"])[keep].tolist()}
           for k, r in fr.runs.items()}
    alone = analyse_fraction(cfg, _dataset(labels), FractionRuns(1.0, fr.arms, fr.seeds, cut), 0)
    assert masked["n_test"] == alone["n_test"] == 60
    for arm in fr.arms:
        assert masked["metrics"][arm]["balanced_accuracy"] == alone["metrics"][arm]["balanced_accuracy"]
    assert masked["comparisons"][0]["metrics"] == alone["comparisons"][0]["metrics"]
    with pytest.raises(ValueError, match="test_mask has shape"):
        analyse_fraction(cfg, ds, fr, 0, test_mask=keep[:10])


def test_the_twin_free_part_removes_a_lead_that_recognition_gave(leaky) -> None:
    cfg, ds, fr, twin = leaky
    whole = analyse_fraction(cfg, ds, fr, 0)
    comp = next(c for c in whole["comparisons"] if c["primary"])
    assert (comp["arm"], comp["baseline"]) == ("real+synthetic", "real")
    # On all 100 images the real arm's recognised twins make synthetic data look harmful ...
    assert comp["metrics"]["balanced_accuracy"]["ci_high"] < 0
    tf = twin_free_part(cfg, ds, fr, 0, ~twin)
    assert tf is not None and tf["n_test"] == 60 and tf["counts"] == [30, 30]
    clean = next(c for c in tf["comparisons"] if c["primary"])["metrics"]["balanced_accuracy"]
    # ... and on the 60 without a twin the two arms are the same predictions.
    assert clean["diff"] == 0.0
    assert set(tf["metrics"]) == {"real", "real+synthetic"}
    assert set(tf["metrics"]["real"]) == {"recall/lesion", "balanced_accuracy"}
    block = {**whole, "twin_free": tf}
    said = _twin_free_clause(tf, block, ["lesion", "normal"], 0.95)
    assert said.startswith("On the 60 test images without one, real+synthetic vs real on balanced accuracy reads "
                           "+0.0 points")
    md = "\n".join(_twin_free_markdown(block, ["lesion", "normal"], "95%", "##"))
    assert "## On the test images without a twin in the train split" in md
    assert "60 test images (30 lesion, 30 normal)" in md
    assert "| real+synthetic vs real (primary) | balanced accuracy | +0.0 |" in md


def test_no_twin_free_part_where_a_class_keeps_too_few_images(leaky) -> None:
    cfg, ds, fr, _ = leaky
    keep = np.ones(100, dtype=bool)
    keep[ds.labels["test"] == 0] = False
    keep[0] = True  # one lesion image left
    assert twin_free_part(cfg, ds, fr, 0, keep) is None
    assert _twin_free_clause(None, {"primary": {"metric": "balanced_accuracy"}}, ["lesion", "normal"], 0.95) is None
    assert _twin_free_markdown({"twin_free": None}, ["lesion", "normal"], "95%", "##") == []
