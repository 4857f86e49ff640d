"""C2ST: values, shapes, seeds, errors, and the sanity figures on real images (issue #12)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medgan.data.splits import near_duplicate_groups
from medgan.metrics import c2st as c2st_mod
from medgan.metrics.c2st import (
    C2STConfig,
    C2STRanking,
    TwoSampleCNN,
    c2st,
    c2st_metrics,
    c2st_ranking,
    c2st_views,
    matched_proportions,
)
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


def test_ranking_puts_the_planted_artefacts_first_and_matches_the_auc() -> None:
    """The synthetic images most easily told apart are the ones with the artefact; the test is run once."""
    from sklearn.metrics import roc_auc_score

    real, syn = smooth_images(120, seed=1), smooth_images(90, seed=2)
    noisy = np.arange(0, 90, 3)  # a third of the synthetic images carry pixel noise
    rng = np.random.default_rng(0)
    syn[noisy] = np.clip(syn[noisy] + rng.normal(0, 20, syn[noisy].shape), 0, 255).astype(np.uint8)
    cfg = C2STConfig(folds=3, epochs=8, min_steps=150, max_per_side=80)
    result = c2st(real, syn, cfg)
    ranking = c2st_ranking(real, syn, cfg)
    assert isinstance(ranking, C2STRanking)
    # The balanced subsets: 80 distinct indices into each set, one out-of-fold score each.
    assert len(ranking.real_index) == len(ranking.synthetic_index) == 80 == len(ranking.real_scores)
    assert len(set(ranking.real_index)) == 80 and ranking.real_index.max() < 120
    assert len(set(ranking.synthetic_index)) == 80 and ranking.synthetic_index.max() < 90
    scores = np.r_[ranking.real_scores, ranking.synthetic_scores]
    y = np.r_[np.ones(80), np.zeros(80)]
    assert roc_auc_score(y, scores) == pytest.approx(result["auc"])
    spotted, hidden = ranking.synthetic_extremes(10)
    planted = set(noisy.tolist())
    assert sum(int(i) in planted for i in spotted) >= 9  # the noisy ones are told apart first
    assert sum(int(i) in planted for i in hidden) <= 1
    most_real, least_real = ranking.real_extremes(5)
    by_index = dict(zip(ranking.real_index.tolist(), ranking.real_scores.tolist(), strict=True))
    assert [by_index[int(i)] for i in most_real] == sorted(ranking.real_scores.tolist(), reverse=True)[:5]
    assert [by_index[int(i)] for i in least_real] == sorted(ranking.real_scores.tolist())[:5]


def test_near_duplicates_are_grouped_by_chains_of_small_differences() -> None:
    base = smooth_images(3, seed=4).astype(float)
    near = base[0] + 3  # 3 grey levels RMS from image 0
    nearer = near + 3  # 3 from `near`, 6 from image 0: linked through `near`
    images = np.stack([base[0], base[1], near, base[2], nearer]).clip(0, 255).astype(np.uint8)
    groups = near_duplicate_groups(images, rms=4.0)
    assert groups[0] == groups[2] == groups[4]
    assert len({groups[0], groups[1], groups[3]}) == 3
    assert len(set(near_duplicate_groups(images, rms=2.0))) == 5


def test_twins_kept_in_one_fold_are_not_scored_by_memory() -> None:
    """Each real image saved twice, a synthetic set from the same distribution: split across folds, the
    CNN recognises each real image's twin and the AUC rises well above 0.5; kept in one fold it does not."""
    rng = np.random.default_rng(0)
    base = smooth_images(60, seed=1)
    twins = np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
    real, syn = np.concatenate([base, twins]), smooth_images(120, seed=2)
    cfg = C2STConfig(folds=3, epochs=8, min_steps=150)
    grouped = c2st(real, syn, cfg)
    plain = c2st(real, syn, dataclasses.replace(cfg, twin_rms=None))
    assert grouped["twin_share"] == 1.0 and "twin_share" not in plain
    assert plain["auc"] >= 0.65, plain
    assert abs(grouped["auc"] - 0.5) <= 0.1, grouped
    # Every pair lies in one test fold.
    x = np.concatenate([real, syn])
    y = np.r_[np.ones(120), np.zeros(120)]
    for _, test in c2st_mod._folds(x, y, cfg, both_real=False)[0]:
        held = set(test.tolist())
        assert all((i in held) == (i + 60 in held) for i in range(60))
    with pytest.raises(ValueError, match="twin_rms"):
        C2STConfig(twin_rms=0.0)


def test_the_floor_groups_twins_across_its_two_real_sets_and_a_generator_test_does_not() -> None:
    """Held-out images that are twins of train images: in the floor, kept with them (else the floor dips below
    0.5); in a generator's test, a synthetic set of one image repeated stays spread over the folds, so the
    collapse is seen."""
    rng = np.random.default_rng(1)
    real = smooth_images(120, seed=3)
    heldout = np.concatenate([np.clip(real[:60] + rng.normal(0, 2, real[:60].shape), 0, 255).astype(np.uint8),
                              smooth_images(60, seed=4)])
    cfg = C2STConfig(folds=3, epochs=8, min_steps=150)
    assert abs(c2st(real, heldout, cfg, both_real=True)["auc"] - 0.5) <= 0.1
    assert c2st(real, heldout, cfg)["auc"] <= 0.4  # the held-out twins are called "train"
    collapsed = np.repeat(real[:1], 120, axis=0)
    assert c2st(real, collapsed, cfg)["auc"] >= 0.95


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
            "c2st/real_vs_real_auc", "c2st/real_vs_real_auc_std", "c2st/twin_share"} <= set(out)
    assert out["c2st/twin_share"] == 0.0  # random blobs: no twins
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
    c2st_ranking(a, b, cfg)  # the per-image scores come from the same run
    assert len(built) == 2
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

