"""Domain IS: an Inception-Score-like figure with the domain classifier; bounds and sanity on real data."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.metrics.domain_is import domain_is_metrics, inception_score
from medgan.metrics.evaluate import evaluate


def test_inception_score_bounds_on_known_probabilities():
    assert inception_score(np.eye(3)[[0, 1, 2, 0, 1, 2]]) == pytest.approx(3.0)  # confident and balanced: K
    assert inception_score(np.tile([[0.7, 0.3]], (5, 1))) == pytest.approx(1.0)  # one repeated prediction: 1
    assert inception_score(np.eye(2)[[0, 0, 0, 0]]) == pytest.approx(1.0)  # confident but one class: 1
    with pytest.raises(ValueError):
        inception_score(np.zeros((0, 2)))


def test_domain_is_of_real_test_images_and_of_one_repeated_image(breast, breast_fx):
    test = breast.channel_first("test")
    real = domain_is_metrics(breast_fx, test, test)
    assert 1.0 < real["domain_is"] <= 2.0 and real["domain_is/max"] == 2.0
    assert real["domain_is/real_test"] == pytest.approx(real["domain_is"])
    repeated = domain_is_metrics(breast_fx, np.repeat(test[:1], 50, axis=0))
    assert repeated["domain_is"] == pytest.approx(1.0, abs=1e-6)


def test_evaluate_reports_domain_is_beside_fid(breast, breast_fx):
    train = breast.channel_first("train")
    metrics = evaluate(
        breast, (train[:60], breast.labels["train"][:60]), extractor=breast_fx, metrics=("fid", "domain_is")
    )
    assert {"fid", "domain_is", "domain_is/real_test", "domain_is/max"} <= metrics.keys()
    assert 1.0 <= metrics["domain_is"] <= 2.0
