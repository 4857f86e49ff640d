"""FID and KID between two sets of features, computed by torchmetrics.

torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` accept any ``nn.Module``
as their ``feature`` argument and call it on whatever ``update`` receives. medgan extracts the
domain features once (:mod:`medgan.metrics.features`) and hands them to the metrics through an
identity module that declares ``num_features``, so the metrics themselves (the Fréchet distance of
the fitted Gaussians; the unbiased polynomial-kernel MMD over random subsets) are torchmetrics'.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = ["fid", "fidelity_metrics", "kid"]


class _Precomputed(torch.nn.Module):
    """Identity 'feature extractor': the metric receives features ``(N, F)`` already."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_tensor(features: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features, dtype=np.float64))
    if x.ndim != 2:
        raise ValueError(f"features must be (N, F), got shape {tuple(x.shape)}")
    return x


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` and ``fake`` features ``(N, F)``.

    Both sets need at least two rows. With fewer samples than feature dimensions the covariances
    are singular and FID is biased upwards; compare FIDs only at equal sample sizes.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    r, f = _as_tensor(real), _as_tensor(fake)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: real {r.shape[1]}, fake {f.shape[1]}")
    if len(r) < 2 or len(f) < 2:
        raise ValueError(f"FID needs at least 2 samples per set, got {len(r)} real and {len(f)} fake")
    metric = FrechetInceptionDistance(feature=_Precomputed(r.shape[1]))
    metric.update(r, real=True)
    metric.update(f, real=False)
    return float(metric.compute())


def kid(real: np.ndarray, fake: np.ndarray, subset_size: int = 100, subsets: int = 50, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (mean and std over random subsets) between two feature sets.

    Args:
        real: ``(N, F)`` features.
        fake: ``(M, F)`` features.
        subset_size: samples per subset; lowered to ``min(N, M)`` when the sets are smaller.
        subsets: number of random subsets.
        seed: seeds the subset draws (torch's RNG is forked, so the caller's state is untouched).
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    r, f = _as_tensor(real), _as_tensor(fake)
    size = min(subset_size, len(r), len(f))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(r)} real and {len(f)} fake")
    with warnings.catch_warnings():
        # torchmetrics warns that KID keeps every feature in memory; ours are already in memory.
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Precomputed(r.shape[1]), subsets=subsets, subset_size=size)
    metric.update(r, real=True)
    metric.update(f, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def fidelity_metrics(
    real: np.ndarray, fake: np.ndarray, *, kid_subset_size: int = 100, kid_subsets: int = 50, seed: int = 0
) -> dict[str, float]:
    """``{"fid", "kid_mean", "kid_std"}`` between two feature sets ``(N, F)`` and ``(M, F)``."""
    kid_mean, kid_std = kid(real, fake, subset_size=kid_subset_size, subsets=kid_subsets, seed=seed)
    return {"fid": fid(real, fake), "kid_mean": kid_mean, "kid_std": kid_std}
