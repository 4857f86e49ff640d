"""The shared classifier training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.data.scaling import to_model_input
from medgan.networks.classifier import build_classifier
from medgan.training.classifier import classifier_scores, predict_proba, train_classifier

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _toy(n: int, seed: int, size: tuple[int, ...] = (8, 8)) -> tuple[np.ndarray, np.ndarray]:
    """Dark (class 0) vs bright (class 1) noise images, uint8 (N, 1, *size)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    mean = (70 + 110 * labels).reshape(n, *([1] * (len(size) + 1)))
    images = np.clip(rng.normal(mean, 25, size=(n, 1, *size)), 0, 255)
    return images.astype(np.uint8), labels


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_classifier("cnn", 2, 1, 2, channels=(8, 16))


def test_learns_a_separable_task_and_keeps_the_best_epoch() -> None:
    train, val = _toy(48, 0), _toy(16, 1)
    model, history = train_classifier(_net(), train, val, epochs=4, batch_size=8, lr=3e-3, seed=0)
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0, 4.0]
    assert sum(row["selected"] for row in history) == 1.0
    best = max(history, key=lambda r: (r["val_balanced_accuracy"], -r["val_loss"]))
    assert best["selected"] == 1.0
    assert best["val_balanced_accuracy"] == 1.0
    # The returned weights are those of the selected epoch.
    scores = classifier_scores(predict_proba(model, val[0]), val[1])
    assert scores["balanced_accuracy"] == best["val_balanced_accuracy"]
    assert not model.training


def test_same_seed_same_result_and_caller_rng_untouched() -> None:
    train, val = _toy(32, 0), _toy(8, 1)
    net = _net()
    state = torch.get_rng_state()
    m1, h1 = train_classifier(net, train, val, epochs=2, batch_size=8, seed=5)
    assert torch.equal(state, torch.get_rng_state())
    m2, h2 = train_classifier(_net(), train, val, epochs=2, batch_size=8, seed=5)
    assert h1 == h2
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, h3 = train_classifier(_net(), train, val, epochs=2, batch_size=8, seed=6)
    assert h3 != h1


def test_transform_sees_scaled_batches_and_extra_train_is_used() -> None:
    train, val, extra = _toy(20, 0), _toy(8, 1), _toy(11, 2)
    seen: list[torch.Tensor] = []

    def transform(x: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return torch.flip(x, dims=[-1])

    train_classifier(_net(), train, val, epochs=2, batch_size=8, transform=transform, extra_train=extra)
    assert sum(len(x) for x in seen) == 2 * (20 + 11)
    assert all(x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 for x in seen)
    assert min(len(x) for x in seen) >= 2  # a trailing batch of one is merged (batch norm needs two)


def test_progress_is_called_per_epoch() -> None:
    rows: list[dict] = []
    train_classifier(_net(), _toy(16, 0), _toy(8, 1), epochs=3, batch_size=8, progress=rows.append)
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]
    assert {"train_loss", "val_loss", "val_accuracy", "val_balanced_accuracy"} <= rows[0].keys()


def test_class_weighting_options() -> None:
    train, val = _toy(16, 0), _toy(8, 1)
    train_classifier(_net(), train, val, epochs=1, batch_size=8, class_weighting=None)
    with pytest.raises(ValueError, match="'balanced' or None"):
        train_classifier(_net(), train, val, epochs=1, class_weighting="inverse")  # type: ignore[arg-type]


def test_input_errors() -> None:
    x, y = _toy(16, 0)
    with pytest.raises(ValueError, match="uint8"):
        train_classifier(_net(), (x.astype(np.float32), y), (x, y), epochs=1)
    with pytest.raises(ValueError, match="16 images but 15 labels"):
        train_classifier(_net(), (x, y[:-1]), (x, y), epochs=1)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        train_classifier(_net(), (x, y + 1), (x, y), epochs=1)
    with pytest.raises(ValueError, match="extra_train images"):
        train_classifier(_net(), (x, y), (x, y), epochs=1, extra_train=_toy(4, 0, (16, 16)))


def test_predict_proba_and_scaling() -> None:
    x, _ = _toy(10, 0)
    p = predict_proba(_net().eval(), x, batch_size=3)
    assert p.shape == (10, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    scaled = to_model_input(np.array([0, 255], dtype=np.uint8))
    assert scaled.tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="uint8"):
        to_model_input(np.zeros(2, dtype=np.float32))


def test_3d_training() -> None:
    torch.manual_seed(0)
    net = build_classifier("cnn", 3, 1, 2, channels=(4, 8))
    model, history = train_classifier(net, _toy(12, 0, (8, 8, 8)), _toy(6, 1, (8, 8, 8)), epochs=1, batch_size=6)
    assert len(history) == 1
    assert predict_proba(model, _toy(3, 2, (8, 8, 8))[0]).shape == (3, 2)
