"""The mode-collapse alarm: is each class's synthetic set about as varied as that class's real images?

Two figures per class, each relative to the same figure on real images, so that 1 means "as
varied as real data" whatever the dataset:

- **diversity**: the mean pairwise distance among synthetic images of the class, divided by the
  mean pairwise distance among real training images of the class. Measured in **pixel space**:
  the images on the ``[-1, 1]`` scale, distance = root-mean-square difference per pixel (voxel).
  A generator that draws one image scores 0; one that draws a few distinct images scores less
  than 1 in proportion to how often it repeats itself. Pixel distance needs no trained network,
  but it also rises for noise, so it catches collapse, not poor quality.
- **coverage** (Naeem et al. 2020, :func:`medgan.metrics.prdc.prdc`) in the domain feature space,
  on a small held-in set of real training images of the class: the share of those real images that
  have a synthetic image among their ``k`` nearest neighbours' radius, divided by the same share
  for a second, disjoint set of real images of the same size (the real-vs-real value). A generator
  that covers three modes of a varied class covers few of the real images, even when its pixel
  diversity looks fine.

The alarm is raised for a class when either ratio falls below ``share`` (``collapse_share`` in the
training config, default 0.5). Early in training coverage is also low for samples that are still
far from any real image: the message names which figure fell, so the two cases can be told apart
by looking at the sample grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from medgan.data.dataset import class_slugs
from medgan.data.scaling import to_model_input
from medgan.metrics.prdc import prdc

__all__ = ["CollapseReport", "collapse_check", "mean_pairwise_distance"]


def mean_pairwise_distance(images: np.ndarray) -> float:
    """Mean RMS per-pixel distance over all pairs of uint8 images ``(N, C, *spatial)``, on the ``[-1, 1]`` scale.

    ``nan`` for fewer than two images. Identical images give 0; two images of constant -1 and +1 give 2.

    Example:
        >>> mean_pairwise_distance(np.stack([np.zeros((1, 4, 4)), np.full((1, 4, 4), 255)]).astype(np.uint8))
        2.0
    """
    if len(images) < 2:
        return float("nan")
    x = to_model_input(torch.from_numpy(np.ascontiguousarray(images))).flatten(1).double()  # (N, P)
    n, pixels = x.shape
    # Not the matrix-product shortcut: identical images must give exactly 0.
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # (N, N), zero diagonal
    return float(d.sum() / (n * (n - 1)) / math.sqrt(pixels))


@dataclass
class CollapseReport:
    """What :func:`collapse_check` found: the metrics for the log and one message per alarmed class."""

    metrics: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def alarm(self) -> bool:
        return bool(self.messages)


def collapse_check(
    real_images: np.ndarray,
    real_labels: np.ndarray,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray | None,
    class_names: list[str],
    *,
    share: float = 0.5,
    n_ref: int = 64,
    features: Callable[[np.ndarray], np.ndarray] | None = None,
    k: int = 3,
    seed: int = 0,
) -> CollapseReport:
    """Per-class diversity and coverage of a synthetic set relative to real images, and the alarm.

    Args:
        real_images: uint8 real training images ``(N, C, *spatial)``.
        real_labels: their labels ``(N,)``.
        synthetic_images: uint8 ``(M, C, *spatial)``.
        synthetic_labels: ``(M,)``, or ``None`` for an unconditional model (one group, all images).
        class_names: names by label index.
        share: raise the alarm for a class whose ratio falls below this.
        n_ref: real (and synthetic) images per class used, at most; a seeded subset of the train
            split, the same at every call with the same ``seed``.
        features: maps uint8 images to ``(n, F)`` features for coverage (the domain feature net);
            ``None`` skips coverage.
        k: the neighbour count of coverage.
        seed: picks the real subsets.

    Returns:
        A :class:`CollapseReport` whose metrics are, per class slug ``s``:
        ``collapse/diversity/class_s`` (the ratio), ``collapse/diversity_real/class_s`` (the real
        mean pairwise distance); with ``features``, ``collapse/coverage/class_s`` (the ratio),
        ``collapse/coverage_synthetic/class_s`` and ``collapse/coverage_real/class_s``; and overall
        ``collapse/diversity_min`` and ``collapse/warning`` (1 when any class raised the alarm).
    """
    real_labels = np.asarray(real_labels).reshape(-1)
    if synthetic_labels is None:
        groups = [("all", "all", np.ones(len(real_labels), bool), np.ones(len(synthetic_images), bool))]
    else:
        syn_y = np.asarray(synthetic_labels).reshape(-1)
        groups = [
            (name, slug, real_labels == c, syn_y == c)
            for c, (name, slug) in enumerate(zip(class_names, class_slugs(class_names), strict=True))
        ]
    report = CollapseReport()
    ratios = []
    for g, (name, slug, real_mask, syn_mask) in enumerate(groups):
        pool, syn = real_images[real_mask], synthetic_images[syn_mask]
        if len(pool) < 2 or len(syn) < 2:
            continue  # a class without two real (or synthetic) images has no pairwise distance
        perm = np.random.default_rng([seed, g]).permutation(len(pool))
        held_in = pool[perm[:n_ref]]
        real_div = mean_pairwise_distance(held_in)
        ratio = mean_pairwise_distance(syn[:n_ref]) / real_div if real_div > 0 else float("nan")
        report.metrics[f"collapse/diversity/class_{slug}"] = ratio
        report.metrics[f"collapse/diversity_real/class_{slug}"] = real_div
        ratios.append(ratio)
        reasons = []
        if ratio < share:
            reasons.append(
                f"its samples are {ratio:.2f} times as varied as its real images "
                f"(mean pairwise pixel distance {ratio * real_div:.3f} vs {real_div:.3f})"
            )
        # Coverage: two disjoint real halves of equal size, one as the held-in reference, one for the
        # real-vs-real value; as many synthetic images as real ones.
        m = min(n_ref, len(pool) // 2, len(syn))
        if features is not None and m >= k + 1:
            ref_f, other_f = features(pool[perm[:m]]), features(pool[perm[m : 2 * m]])
            syn_cov = prdc(ref_f, features(syn[:m]), k=k)["coverage"]
            real_cov = prdc(ref_f, other_f, k=k)["coverage"]
            cov_ratio = syn_cov / real_cov if real_cov > 0 else float("nan")
            report.metrics[f"collapse/coverage/class_{slug}"] = cov_ratio
            report.metrics[f"collapse/coverage_synthetic/class_{slug}"] = syn_cov
            report.metrics[f"collapse/coverage_real/class_{slug}"] = real_cov
            if cov_ratio < share:
                reasons.append(
                    f"its samples cover {cov_ratio:.2f} times as many held-in real images as other "
                    f"real images do (coverage {syn_cov:.2f} vs {real_cov:.2f})"
                )
        if reasons:
            report.messages.append(
                f"possible mode collapse in class '{name}': {'; '.join(reasons)} "
                f"(alarm below {share:g}; look at the sample grid)"
            )
    finite = [r for r in ratios if math.isfinite(r)]
    report.metrics["collapse/diversity_min"] = min(finite) if finite else float("nan")
    report.metrics["collapse/warning"] = 1.0 if report.messages else 0.0
    return report
