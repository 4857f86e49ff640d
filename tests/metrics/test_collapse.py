"""The mode-collapse alarm: pixel diversity and coverage relative to real images, and the training evaluator (with its optional C2ST)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medgan.data.scaling import to_model_input
from medgan.metrics.collapse import collapse_check, mean_pairwise_distance


def test_mean_pairwise_distance_is_the_rms_pixel_distance_on_the_model_scale():
    black, white = np.zeros((1, 1, 4, 4), np.uint8), np.full((1, 1, 4, 4), 255, np.uint8)
    assert mean_pairwise_distance(np.concatenate([black, white])) == pytest.approx(2.0)
    assert mean_pairwise_distance(np.concatenate([black, black, black])) == 0.0
    # Three images: pairs (b, w) = 2, (b, b) = 0, (w, b) = 2 -> mean 4/3.
    assert mean_pairwise_distance(np.concatenate([black, white, black])) == pytest.approx(4 / 3)
    assert np.isnan(mean_pairwise_distance(black))


def _classes(breast):
    return breast.channel_first("train"), breast.labels["train"], list(breast.info.class_names)


def test_a_collapsed_set_raises_the_alarm_for_every_class(breast, breast_fx):
    x, y, names = _classes(breast)
    # The "generator" draws one fixed image per class, 64 times.
    syn_y = np.repeat([0, 1], 64)
    syn_x = np.concatenate([np.repeat(x[y == c][:1], 64, axis=0) for c in (0, 1)])
    report = collapse_check(x, y, syn_x, syn_y, names, share=0.5, features=breast_fx.extract)
    assert report.alarm and len(report.messages) == 2
    assert report.metrics["collapse/warning"] == 1.0
    assert report.metrics["collapse/diversity_min"] == 0.0
    assert "possible mode collapse in class 'malignant'" in report.messages[0]
    assert all(report.metrics[f"collapse/coverage/class_{s}"] < 0.5 for s in ("malignant", "normal_benign"))


def test_a_partly_collapsed_set_is_caught_by_coverage(breast, breast_fx):
    x, y, names = _classes(breast)
    # Three distinct real images per class, repeated: pixel diversity stays above half of real's ...
    syn_y = np.repeat([0, 1], 63)
    syn_x = np.concatenate([np.tile(x[y == c][:3], (21, 1, 1, 1)) for c in (0, 1)])
    report = collapse_check(x, y, syn_x, syn_y, names, share=0.5, features=breast_fx.extract)
    assert report.metrics["collapse/diversity_min"] > 0.5
    # ... but three images cover few of the held-in real images.
    assert report.alarm and "coverage" in report.messages[0]


def test_real_images_as_the_synthetic_set_raise_no_alarm(breast, breast_fx):
    x, y, names = _classes(breast)
    rng = np.random.default_rng(1)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 64, replace=False) for c in (0, 1)])
    report = collapse_check(x, y, x[idx], y[idx], names, share=0.5, features=breast_fx.extract)
    assert not report.alarm and report.metrics["collapse/warning"] == 0.0
    for slug in ("malignant", "normal_benign"):
        assert 0.8 < report.metrics[f"collapse/diversity/class_{slug}"] < 1.25
        assert report.metrics[f"collapse/coverage/class_{slug}"] > 0.6


class _FixedImage(nn.Module):
    """A collapsed generator: the same image whatever z and y."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("image", to_model_input(torch.from_numpy(image)))
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z, y=None):
        return self.image.expand(len(z), *self.image.shape[1:])


class _RealImages(nn.Module):
    """A perfect generator: real training images of the asked class, picked by z."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        self.images, self.labels = to_model_input(torch.from_numpy(images)), torch.from_numpy(labels)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z, y):
        out = []
        for zi, yi in zip(z, y, strict=True):
            pool = torch.nonzero(self.labels == yi).flatten()
            out.append(self.images[pool[int(abs(zi[0]) * 1e4) % len(pool)]])
        return torch.stack(out)


def _evaluator(breast, warnings_seen):
    from medgan.configio import load_config
    from medgan.metrics.training_fid import fid_evaluator
    from medgan.training.config import TrainConfig

    cfg = load_config(
        TrainConfig, None, [f"data={breast.path}", "fid_samples=128", "model.z_dim=8", "collapse_share=0.5"]
    )
    return fid_evaluator(cfg, dataset=breast, warn=warnings_seen.append)


def _skip_fid_and_swd(monkeypatch):
    """Only the alarm matters here: FID and SWD (tested elsewhere) would triple the test's time."""
    import medgan.metrics.training_fid

    monkeypatch.setattr(
        medgan.metrics.training_fid, "evaluate", lambda *a, **k: {"fid": 1.0, "swd/mean": 1.0}
    )


def test_the_training_evaluator_logs_and_warns_for_a_collapsed_generator(breast, breast_fx, monkeypatch):
    _skip_fid_and_swd(monkeypatch)
    x, _, _ = _classes(breast)
    seen: list[str] = []
    metrics = _evaluator(breast, seen)(_FixedImage(x[:1]), {})
    assert metrics["collapse/warning"] == 1.0 and metrics["collapse/diversity_min"] == 0.0
    assert metrics["fid"] == 1.0  # the alarm joins the FID record
    assert len(seen) == 2 and all("possible mode collapse" in m for m in seen)


def test_the_training_evaluator_stays_quiet_for_real_images(breast, breast_fx, monkeypatch):
    _skip_fid_and_swd(monkeypatch)
    x, y, _ = _classes(breast)
    seen: list[str] = []
    metrics = _evaluator(breast, seen)(_RealImages(x, y), {})
    assert metrics["collapse/warning"] == 0.0 and seen == []
    assert metrics["collapse/diversity_min"] > 0.8


def _c2st_evaluator(breast, monkeypatch):
    """The training evaluator with ``eval_c2st`` on, FID and SWD stubbed, and a lighter C2ST (same code path)."""
    import dataclasses

    import medgan.metrics.training_fid as training_fid
    from medgan.configio import load_config
    from medgan.training.config import TrainConfig

    _skip_fid_and_swd(monkeypatch)
    monkeypatch.setattr(training_fid, "TRAINING_C2ST",
                        dataclasses.replace(training_fid.TRAINING_C2ST, min_steps=40, epochs=1, max_per_side=120))
    cfg = load_config(TrainConfig, None, [f"data={breast.path}", "model.z_dim=8",
                                          "collapse_share=0", "eval_c2st=true", "fid_every=500", "fid_samples=128"])
    return training_fid.fid_evaluator(cfg, dataset=breast)


def test_the_training_c2st_tells_a_collapsed_generator_apart(breast, monkeypatch):
    x, _, _ = _classes(breast)
    metrics = _c2st_evaluator(breast, monkeypatch)(_FixedImage(x[:1]), {})
    assert set(metrics) == {"fid", "swd/mean", "c2st/auc", "c2st/auc/class_malignant", "c2st/auc/class_normal_benign"}
    assert metrics["c2st/auc"] > 0.95 and metrics["c2st/auc/class_normal_benign"] > 0.95


def test_the_training_c2st_cannot_tell_real_images_from_themselves(breast, monkeypatch):
    x, y, _ = _classes(breast)
    metrics = _c2st_evaluator(breast, monkeypatch)(_RealImages(x, y), {})
    assert 0.3 < metrics["c2st/auc"] < 0.65


def test_the_training_c2st_is_off_by_default(breast, breast_fx, monkeypatch):
    _skip_fid_and_swd(monkeypatch)
    seen: list[str] = []
    x, y, _ = _classes(breast)
    assert not any(k.startswith("c2st") for k in _evaluator(breast, seen)(_RealImages(x, y), {}))
