"""C2ST: values, shapes, seeds, errors, and the sanity figures on real images (issue #12)."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.metrics import c2st as c2st_mod
from medgan.metrics.c2st import C2STConfig, TwoSampleCNN, c2st, c2st_metrics, c2st_views, matched_proportions
from medgan.metrics.degrade import DEGRADATIONS
from tests.conftest import real_npz

# The sanity figures at small n: 200 images per side (the minimum), 2 folds of >= 150 steps.
FAST = C2STConfig(folds=2, epochs=8, min_steps=150, max_per_side=200)


def smooth_images(n: int, size: int = 16, spatial_dims: int = 2, seed: int = 0) -> np.ndarray:
    """uint8 ``(n, 1, *[size] * d)``: random blobs, smooth like anatomy, no pixel-level texture."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, *([4] * spatial_dims), generator=g)
    mode = "bilinear" if spatial_dims == 2 else "trilinear"
    fine = F.interpolate(coarse, size=[size] * spatial_dims, mode=mode, align_corners=False)
    return (fine * 200 + 20).round().to(torch.uint8).numpy()


def test_identical_distributions_score_near_half_and_noise_near_one() -> None:
    a, b = smooth_images(120, seed=1), smooth_images(120, seed=2)
    cfg = C2STConfig(folds=3, epochs=8, min_steps=150)
    same = c2st(a, b, cfg)
    rng = np.random.default_rng(0)
    noisy = np.clip(b + rng.normal(0, 12, b.shape), 0, 255).astype(np.uint8)
    diff = c2st(a, noisy, cfg)
    assert 0.35 <= same["auc"] <= 0.65
    assert diff["auc"] >= 0.9
    assert same["n_per_side"] == 120.0 and 0.0 <= same["auc_std"] < 0.3


def test_3d_volumes_and_seeded_repeatability() -> None:
    a, b = smooth_images(30, size=8, spatial_dims=3, seed=1), smooth_images(30, size=8, spatial_dims=3, seed=2)
    cfg = C2STConfig(folds=3, epochs=3, min_steps=0, seed=7)
    first = c2st(a, b, cfg)
    c2st_mod._MEMO.clear()  # trained again, not remembered
    assert c2st(a, b, cfg) == first
    assert c2st(a, b, C2STConfig(folds=3, epochs=3, min_steps=0, seed=8)) != first


def test_intensity_histogram_sees_banding() -> None:
    import torch

    x = torch.from_numpy(smooth_images(2)).float().div(127.5).sub(1)
    hist = TwoSampleCNN.intensity_histogram(x)
    assert hist.shape == (2, 256)
    assert torch.allclose((hist**2).sum(1), torch.ones(2))
    banded = torch.from_numpy(DEGRADATIONS["quantised_16"](smooth_images(2))).float().div(127.5).sub(1)
    assert int((TwoSampleCNN.intensity_histogram(banded) > 0).sum(1).max()) <= 16


def test_one_view_at_a_time_says_what_gives_the_samples_away() -> None:
    # A grey-level shift changes the histogram and the image, not the high-pass residual (fine texture).
    a = smooth_images(120, seed=1)
    shifted = np.clip(smooth_images(120, seed=2).astype(np.int16) + 40, 0, 255).astype(np.uint8)
    out = c2st_views(a, shifted, C2STConfig(folds=3, epochs=8, min_steps=150))
    assert set(out) == {"c2st/view_image", "c2st/view_residual", "c2st/view_histogram"}
    assert out["c2st/view_histogram"] >= 0.9 and out["c2st/view_image"] >= 0.9
    assert out["c2st/view_residual"] <= 0.7


def test_views_shape_the_network_and_are_checked() -> None:
    import torch

    full, hist_only = TwoSampleCNN(width=4), TwoSampleCNN(width=4, views=("histogram",))
    assert full.features[0].in_channels == 2 and full.head.in_features == 48  # image + residual; 8w + 4w
    assert hist_only.features is None and hist_only.head.in_features == 16
    assert TwoSampleCNN(width=4, views=("residual",)).features[0].in_channels == 1
    assert hist_only(torch.zeros(3, 1, 8, 8)).shape == (3,)
    with pytest.raises(ValueError, match="views"):
        C2STConfig(views=("colour",))
    with pytest.raises(ValueError, match="views"):
        C2STConfig(views=())


def test_matched_proportions_keeps_real_class_shares() -> None:
    real = np.array([0] * 30 + [1] * 90)
    syn = np.array([0] * 50 + [1] * 50)
    keep_real, keep_syn = matched_proportions(real, syn, seed=0)
    # Class 1 caps the total at 50 / 0.75 = 66; per class floor(66 * share) = 16 + 49.
    assert len(keep_real) == len(keep_syn) == 65
    assert np.bincount(real[keep_real]).tolist() == np.bincount(syn[keep_syn]).tolist() == [16, 49]


def test_metric_keys_per_class_and_floor() -> None:
    real = smooth_images(40, seed=1)
    labels = np.array([0, 1] * 20)
    out = c2st_metrics(real, labels, smooth_images(40, seed=2), labels, ["a", "b"], heldout=smooth_images(20, seed=3),
                       config=C2STConfig(folds=2, epochs=2, min_steps=0))
    assert {"c2st/auc", "c2st/auc_std", "c2st/n_per_side", "c2st/auc/class_a", "c2st/auc/class_b",
            "c2st/real_vs_real_auc", "c2st/real_vs_real_auc_std"} <= set(out)
    assert all(0.0 <= v <= 1.0 for k, v in out.items() if "auc" in k)


@pytest.mark.parametrize("bad", [np.zeros((4, 1, 8, 8), np.float32), np.zeros((4, 8, 8), np.uint8)])
def test_refuses_non_uint8_or_wrong_rank(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        c2st(bad, bad)


def test_refuses_mismatched_shapes_and_tiny_sets() -> None:
    with pytest.raises(ValueError, match="synthetic images"):
        c2st(smooth_images(10, size=16), smooth_images(10, size=8))
    with pytest.raises(ValueError, match="at least 5"):
        c2st(smooth_images(3), smooth_images(10))
    with pytest.raises(ValueError, match="folds"):
        C2STConfig(folds=1)


@pytest.fixture(scope="module")
def pneumonia() -> tuple[np.ndarray, np.ndarray]:
    """Real PneumoniaMNIST: (train, held-out val + test), channel first."""
    data = np.load(real_npz("pneumoniamnist.npz"))
    heldout = np.concatenate([data["val_images"], data["test_images"]])
    return data["train_images"][:, None], heldout[:, None]


@pytest.fixture(scope="module")
def clean_auc(pneumonia: tuple[np.ndarray, np.ndarray]) -> float:
    """Real train against held-out real images: the floor."""
    out = c2st(*pneumonia, FAST)
    assert out["n_per_side"] == 200.0
    return out["auc"]


def test_real_vs_real_floor_is_near_half(clean_auc: float) -> None:
    assert 0.4 <= clean_auc <= 0.6


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_every_degradation_scores_clearly_worse_than_clean(
    pneumonia: tuple[np.ndarray, np.ndarray], clean_auc: float, name: str
) -> None:
    train, heldout = pneumonia
    clean = clean_auc
    degraded = c2st(train, DEGRADATIONS[name](heldout), FAST)["auc"]
    assert degraded >= 0.8, f"{name}: C2ST AUC {degraded:.3f} (clean {clean:.3f})"
    assert degraded - clean >= 0.25


def test_a_repeated_test_is_not_trained_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The floor (real train against held-out) is the same for every generator of a dataset."""
    built: list[int] = []
    real_init = c2st_mod.TwoSampleCNN.__init__

    def counting(self, *args, **kw) -> None:  # type: ignore[no-untyped-def]
        built.append(1)
        real_init(self, *args, **kw)

    monkeypatch.setattr(c2st_mod.TwoSampleCNN, "__init__", counting)
    a, b = smooth_images(20, size=8, seed=11), smooth_images(20, size=8, seed=12)
    cfg = C2STConfig(folds=2, epochs=1, min_steps=0, seed=3)
    first = c2st(a, b, cfg)
    assert len(built) == 2  # one CNN per fold
    again = c2st(a.copy(), b.copy(), cfg)  # the same content: no training
    assert again == first and len(built) == 2
    c2st(a, b, C2STConfig(folds=2, epochs=1, min_steps=0, seed=4))  # another seed trains again
    b2 = b.copy()
    b2[0, 0, 0, 0] ^= 1  # so does one changed pixel
    c2st(a, b2, cfg)
    assert len(built) == 6



def test_volumes_are_strided_by_the_config_and_images_never(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 28³ fold at full resolution costs hours on a CPU; 2D keeps full resolution for pixel artefacts."""
    strides: list[tuple[int, int]] = []
    real_init = c2st_mod.TwoSampleCNN.__init__

    def spy(self, in_channels=1, spatial_dims=2, width=16, first_stride=1, **kw) -> None:  # type: ignore[no-untyped-def]
        strides.append((spatial_dims, first_stride))
        real_init(self, in_channels, spatial_dims, width, first_stride, **kw)

    monkeypatch.setattr(c2st_mod.TwoSampleCNN, "__init__", spy)
    quick = {"folds": 2, "epochs": 1, "min_steps": 0, "seed": 21}
    vol = smooth_images(8, size=8, spatial_dims=3, seed=5), smooth_images(8, size=8, spatial_dims=3, seed=6)
    c2st(*vol, C2STConfig(**quick))
    c2st(*vol, C2STConfig(**quick, volume_stride=1))
    c2st(smooth_images(8, size=8, seed=5), smooth_images(8, size=8, seed=6), C2STConfig(**quick, volume_stride=2))
    assert strides == [(3, 2)] * 2 + [(3, 1)] * 2 + [(2, 1)] * 2
    import torch

    net = TwoSampleCNN(1, 3, 16, first_stride=2)
    assert net.features[0].stride == (2, 2, 2) and net(torch.zeros(2, 1, 8, 8, 8)).shape == (2,)
    with pytest.raises(ValueError, match="volume_stride"):
        C2STConfig(volume_stride=0)

