"""medgan.pipeline.gate: likely copies and samples of the wrong class are dropped; the rest pass."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medgan.metrics.features import FeatureExtractor
from medgan.networks.classifier import FeatureNet
from medgan.pipeline.gate import GateResult, gate_candidates


class _Brightness(nn.Module):
    """A two-class 'classifier' by mean brightness: feature = the mean, class 0 = bright."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[10.0], [-10.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(1, 2, 3))[:, None])  # (B, 2)


def _flat(values: list[int]) -> np.ndarray:
    """uint8 (N, 1, 4, 4) images of constant grey levels."""
    return np.repeat(np.asarray(values, dtype=np.uint8), 16).reshape(len(values), 1, 4, 4)


def test_gate_drops_likely_copies_and_wrong_classes() -> None:
    fx = FeatureExtractor(FeatureNet(_Brightness()), name="toy")
    train = _flat([200, 210, 220, 40, 50, 60])
    test = _flat([205, 215, 45, 55])  # each 5 grey levels from the training set: the copy threshold
    train_f, test_f = fx.extract(train), fx.extract(test)
    # Class 0 (bright) candidates: an exact copy of a training image, two novel bright ones, a dark one.
    candidates = _flat([210, 230, 240, 30])
    d = gate_candidates(candidates, 0, fx, train_f, test_f)
    assert d.likely_copy.tolist() == [True, False, False, False]
    assert d.wrong_class.tolist() == [False, False, False, True]
    assert d.keep.tolist() == [False, True, True, False]
    assert d.predicted.tolist() == [0, 0, 0, 1] and d.probability[1] > 0.99
    assert 0 < d.threshold <= np.abs(train_f[:, 0] - 205 / 127.5 + 1).min() + 1e-9
    # The confidence threshold (curation's rule) drops a candidate the classifier is unsure about.
    unsure = _flat([128])  # mean ~0 -> p(class 0) ~ 0.52
    assert gate_candidates(unsure, 0, fx, train_f, test_f).keep.tolist() == [True]
    d = gate_candidates(unsure, 0, fx, train_f, test_f, confidence=0.6)
    assert d.wrong_class.tolist() == [True] and not d.keep.any()
    assert 0.5 < d.probability[0] < 0.6


def test_result_reports_kept_share_per_class() -> None:
    r = GateResult(
        class_names=["a", "b", "c"],
        candidates={0: 10, 1: 4},
        kept={0: 7, 1: 0},
        likely_copies={0: 1, 1: 0},
        wrong_class={0: 2, 1: 4},
        threshold=0.5,
    )
    assert r.kept_share(0) == 0.7 and r.kept_share(1) == 0.0 and np.isnan(r.kept_share(2))
    out = r.to_json()
    assert out["classes"]["a"] == {
        "candidates": 10,
        "kept": 7,
        "kept_share": 0.7,
        "likely_copies": 1,
        "wrong_class": 2,
    }
    assert "c" not in out["classes"] and out["threshold"] == 0.5
