"""The issue's acceptance criteria, on the real MedMNIST files (skipped when they are absent).

The feature nets come from the session fixtures in ``tests/metrics/conftest.py`` (trained once).
"""

from __future__ import annotations

import numpy as np
import pytest

from medgan.data.dataset import PreparedDataset
from medgan.metrics import evaluate
from medgan.metrics.fidelity import fid
from medgan.metrics.memorisation import memorisation_audit
from medgan.metrics.prdc import prdc


def _noise_like(images: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=images.shape, dtype=np.uint8)


def test_domain_classifier_is_better_than_chance(breast_fx, adrenal_fx) -> None:
    # The feature space is only meaningful if its classifier learnt something about the classes.
    assert breast_fx.scores["balanced_accuracy"] > 0.6
    assert adrenal_fx.scores["balanced_accuracy"] > 0.55
    assert breast_fx.domain_metrics().keys() == {"domain_classifier/accuracy", "domain_classifier/balanced_accuracy"}


@pytest.mark.parametrize("which", ["breast", "adrenal"])
def test_fid_real_test_is_far_below_noise(which: str, request: pytest.FixtureRequest) -> None:
    ds: PreparedDataset = request.getfixturevalue(which)
    fx = request.getfixturevalue(f"{which}_fx")
    train_f = fx.split_features(ds, "train")
    test_f = fx.split_features(ds, "test")
    noise_f = fx.extract(_noise_like(ds.channel_first("test")))
    fid_test, fid_noise = fid(train_f, test_f), fid(train_f, noise_f)
    assert fid_test < 0.1 * fid_noise, (fid_test, fid_noise)


def test_planted_copies_are_found(breast: PreparedDataset, breast_fx) -> None:
    train_x, test_x = breast.channel_first("train"), breast.channel_first("test")
    train_f, test_f = breast_fx.split_features(breast, "train"), breast_fx.split_features(breast, "test")
    copies = np.random.default_rng(1).choice(len(train_x), size=8, replace=False)
    planted = np.concatenate([test_x[:152], train_x[copies]])  # 95% real test, 5% exact training copies
    audit = memorisation_audit(breast_fx.extract(planted), train_f, test_f)
    fraction = audit.metrics()["memorisation/fraction"]
    assert 0.04 <= fraction <= 0.07, fraction
    # Every planted copy is flagged, and the closest pairs point at the copied training images.
    assert audit.likely_copies[152:].all()
    assert {j for _, j, _ in audit.closest_pairs(16)} >= set(copies.tolist())

    honest = memorisation_audit(test_f, train_f, test_f).metrics()["memorisation/fraction"]
    assert honest <= 0.02, honest


def test_wrong_labels_raise_per_class_fid(breast: PreparedDataset, breast_fx) -> None:
    test_x, test_y = breast.channel_first("test"), breast.labels["test"]
    shuffled = np.random.default_rng(0).permutation(test_y)
    right = evaluate(breast, (test_x, test_y), extractor=breast_fx, metrics=("fid", "kid", "prdc"))
    wrong = evaluate(breast, (test_x, shuffled), extractor=breast_fx, metrics=("fid", "kid", "prdc"))
    assert right["fid/class_mean"] < wrong["fid/class_mean"]
    for slug in ("malignant", "normal_benign"):
        assert right[f"fid/class_{slug}"] < wrong[f"fid/class_{slug}"]
    assert right["fid"] == pytest.approx(wrong["fid"])  # the whole-set FID ignores labels


def test_precision_recall_real_vs_real_and_collapse(breast: PreparedDataset, breast_fx) -> None:
    train_f, test_f = breast_fx.split_features(breast, "train"), breast_fx.split_features(breast, "test")
    honest = prdc(train_f, test_f, k=3)
    assert honest["precision"] >= 0.6 and honest["recall"] >= 0.6, honest

    collapsed = breast_fx.extract(np.repeat(breast.channel_first("test")[:1], 500, axis=0))
    mode = prdc(train_f, collapsed, k=3)
    assert mode["recall"] <= 0.1, mode
    assert mode["coverage"] <= 0.1, mode


def test_evaluate_3d_end_to_end(adrenal: PreparedDataset, adrenal_fx) -> None:
    test_x, test_y = adrenal.channel_first("test"), adrenal.labels["test"]
    from medgan.metrics.c2st import C2STConfig
    from medgan.metrics.swd import SWDConfig

    # Short pixel tests (their detection power is tested in test_c2st.py / test_swd.py).
    metrics = evaluate(adrenal, (test_x, test_y), extractor=adrenal_fx,
                       c2st=C2STConfig(folds=2, epochs=1, min_steps=0, max_per_side=30),
                       swd=SWDConfig(max_images=100, directions=128, repeats=1))
    assert all(isinstance(v, float) for v in metrics.values())
    assert {"c2st/auc", "c2st/real_vs_real_auc", "swd/level_28", "swd/mean"} <= metrics.keys()
    # Binary masks: every real voxel, train or test, lies at one of the two mask values.
    assert (metrics["values/mode_low"], metrics["values/mode_high"]) == (0.0, 255.0)
    assert metrics["values/near_modes_real"] == 1.0 and metrics["values/near_modes_synthetic"] == 1.0
    # Real adrenal masks are one piece (or nearly); the same masks speckled are not.
    assert metrics["values/one_piece_real"] >= 0.9 and metrics["values/components_real"] <= 1.2
    from medgan.metrics.evaluate import value_metrics

    speckled = test_x.copy()
    rng = np.random.default_rng(0)
    for v in speckled:  # 20 isolated voxels in each mask's background, at least 2 voxels apart
        free = np.argwhere(v[0] == 0)
        free = free[(free % 2 == 0).all(1)]
        for z, y, x in free[rng.choice(len(free), 20, replace=False)]:
            v[0, z, y, x] = 255
    seen = value_metrics(adrenal.channel_first("train"), speckled)
    assert seen["values/components_synthetic"] >= metrics["values/components_real"] + 15
    assert seen["values/one_piece_synthetic"] == 0.0
    # Hyperplastic glands are the larger: size alone tells the class in train and in held-out test
    # masks alike; the same masks with their labels swapped read as sizes drawn backwards.
    assert metrics["values/size_auc_real/class_hyperplasia"] >= 0.62
    assert metrics["values/size_auc_synthetic/class_hyperplasia"] >= 0.62
    assert metrics["values/foreground_real/class_hyperplasia"] > 1.15 * metrics["values/foreground_real/class_normal"]
    swapped = value_metrics(adrenal.channel_first("train"), test_x, real_labels=adrenal.labels["train"],
                            synthetic_labels=1 - test_y, class_names=list(adrenal.info.class_names))
    assert swapped["values/size_auc_synthetic/class_hyperplasia"] <= 0.38
    assert metrics["precision"] >= 0.6 and metrics["recall"] >= 0.6
    assert metrics["memorisation/fraction"] <= 0.02
    assert {"fid/class_normal", "fid/class_hyperplasia", "coverage/class_hyperplasia"} <= metrics.keys()
