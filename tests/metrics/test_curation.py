"""The curation rule: confident in the intended class, and not a likely copy of a training image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medgan.metrics.curation import curate, curate_with_classifier
from medgan.networks.classifier import build_classifier
from medgan.training.classifier import train_classifier

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_the_rule_on_known_numbers() -> None:
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 0, 0])
    copies = np.array([False, False, False, True, False])
    got = curate(proba, labels, confidence=0.8, likely_copies=copies)
    assert got.keep.tolist() == [True, False, True, False, False]
    assert got.reasons.tolist() == ["kept", "wrong_class", "kept", "likely_copy", "wrong_class"]
    assert got.kept == [1, 1] and got.candidates == [4, 1] and got.kept_share == [0.25, 1.0]
    assert got.dropped == {"wrong_class": 2, "likely_copy": 1}
    np.testing.assert_allclose(got.confidence, [0.9, 0.6, 0.8, 0.95, 0.1])
    # q = 0 keeps every image ranked in its own class but the copies; a class without candidates has no share.
    loose = curate(proba, labels, confidence=0.0, likely_copies=copies, num_classes=3)
    assert loose.keep.tolist() == [True, True, True, False, False] and math.isnan(loose.kept_share[2])
    # Ranked first is needed too: 0.4 for the intended class passes q = 0.3 only if no class beats it.
    three = curate(np.array([[0.4, 0.3, 0.3], [0.35, 0.4, 0.25]]), np.array([0, 0]), confidence=0.3)
    assert three.keep.tolist() == [True, False]
    with pytest.raises(ValueError, match="confidence"):
        curate(proba, labels, confidence=1.2)
    with pytest.raises(ValueError, match="likely_copies"):
        curate(proba, labels, confidence=0.5, likely_copies=copies[:2])


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = np.clip(rng.normal((60 + 130 * labels)[:, None, None, None], 30, size=(n, 1, 8, 8)), 0, 255)
    return images.astype(np.uint8), labels


def test_with_a_classifier_copies_and_wrong_classes_are_dropped() -> None:
    train, val = _images(40, 0), _images(20, 1)
    torch.manual_seed(0)
    model, _ = train_classifier(
        build_classifier("cnn", 2, 1, 2, channels=(8, 16)),
        train,
        val,
        epochs=6,
        batch_size=8,
        lr=3e-3,
        seed=0,
    )
    fresh = _images(12, 2)
    # Candidates: fresh images of their class, exact copies of training images, and mislabelled ones.
    images = np.concatenate([fresh[0], train[0][:4], fresh[0][:4]])
    labels = np.concatenate([fresh[1], train[1][:4], 1 - fresh[1][:4]])
    got = curate_with_classifier(model, (images, labels), train[0], val[0], confidence=0.6)
    assert got.reasons[12:16].tolist() == ["likely_copy"] * 4
    assert got.reasons[16:].tolist() == ["wrong_class"] * 4
    assert got.keep[:12].mean() >= 0.75  # fresh images of the right class mostly pass
