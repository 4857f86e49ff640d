"""SWD: the pyramid, the distance's values, 2D and 3D, errors, and the sanity figures on real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.metrics.degrade import DEGRADATIONS
from medgan.metrics.swd import SWDConfig, laplacian_pyramid, sliced_wasserstein, swd, swd_metrics
from tests.conftest import real_npz
from tests.metrics.test_c2st import smooth_images


def test_pyramid_levels_sum_back_to_the_image() -> None:
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    levels = laplacian_pyramid(x, 3)
    assert [tuple(lv.shape[2:]) for lv in levels] == [(28, 28), (14, 14), (7, 7)]
    # Reconstruct: upsample the coarse residual and add the band-pass levels back.
    import torch.nn.functional as F

    rec = levels[-1]
    for lv in reversed(levels[:-1]):
        rec = F.interpolate(rec, size=lv.shape[2:], mode="bilinear", align_corners=False) + lv
    assert torch.allclose(rec, x)


def test_sliced_wasserstein_of_a_shift_is_its_projected_length() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    assert sliced_wasserstein(a, a.clone(), 64, 2, g) == pytest.approx(0.0, abs=1e-12)
    shifted = a + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    # E|<u, e1>| for u uniform on the unit sphere in 3D is 1/2.
    assert sliced_wasserstein(a, shifted, 4096, 2, g) == pytest.approx(0.5, abs=0.03)


def test_keys_levels_and_3d() -> None:
    out = swd(smooth_images(20, size=28), smooth_images(20, size=28, seed=1), SWDConfig(directions=64, repeats=1))
    assert set(out) == {"swd/level_28", "swd/level_14", "swd/mean"}
    vol = swd(smooth_images(6, size=16, spatial_dims=3), smooth_images(6, size=16, spatial_dims=3, seed=1),
              SWDConfig(patch=4, patches_per_image=16, directions=32, repeats=1))
    assert set(vol) == {"swd/level_16", "swd/level_8", "swd/mean"}
    assert all(np.isfinite(v) and v >= 0 for v in vol.values())


def test_per_class_and_floor_at_equal_size() -> None:
    labels = np.array([0, 1] * 15)
    out = swd_metrics(smooth_images(30), labels, smooth_images(30, seed=1), labels, ["a", "b"],
                      heldout=smooth_images(10, seed=2), config=SWDConfig(patch=5, directions=32, repeats=1))
    assert {"swd/mean/class_a", "swd/mean/class_b", "swd/real_vs_real_mean"} <= set(out)


def test_errors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        swd(np.zeros((4, 1, 16, 16), np.float32), np.zeros((4, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match="smaller than the SWD patch"):
        swd(smooth_images(4, size=4), smooth_images(4, size=4), SWDConfig(patch=7))
    with pytest.raises(ValueError, match="same shape"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(4, 2), 4, 1, torch.Generator())


@pytest.fixture(scope="module")
def pneumonia() -> tuple[np.ndarray, np.ndarray]:
    data = np.load(real_npz("pneumoniamnist.npz"))
    heldout = np.concatenate([data["val_images"], data["test_images"]])
    return data["train_images"][:, None], heldout[:, None]


SANITY = SWDConfig(max_images=300, repeats=2)


@pytest.fixture(scope="module")
def clean_swd(pneumonia: tuple[np.ndarray, np.ndarray]) -> float:
    """Finest-level SWD of real train against held-out real images (computed once for the five tests)."""
    return swd(*pneumonia, SANITY)["swd/level_28"]


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_every_degradation_scores_clearly_worse_than_clean(
    pneumonia: tuple[np.ndarray, np.ndarray], clean_swd: float, name: str
) -> None:
    train, heldout = pneumonia
    degraded = swd(train, DEGRADATIONS[name](heldout), SANITY)["swd/level_28"]
    assert degraded >= 1.8 * clean_swd, f"{name}: finest-level SWD {degraded:.1f} vs clean {clean_swd:.1f}"
