"""The arms of the benchmark: what each one trains on, and nothing else.

Every arm trains the same classifier with the same budget (the same number of optimisation steps,
:mod:`medgan.benchmark.budget`); they differ only in training data:

================================ ============================================================
``real``                         the real training images (of the fraction's subset)
``real+classical``               the same, through :class:`ClassicalAugment` (seeded per run)
``real+oversample``              real plus real images repeated, class by class, as many as
                                 ``real+synthetic`` adds (the control a synthetic lift must beat)
``real+synthetic``               real plus GAN samples (per class as :class:`medgan.synth.plan.ClassPlan`)
``real+classical+synthetic``     both
``real+curated-synthetic``       real plus GAN samples that pass :mod:`medgan.metrics.curation`
``synthetic-pretrain``           pretrain on ``pretrain.ratio`` × real GAN samples, then fine-tune on real
``synthetic-pretrain+classical`` the same, with classical augmentation in both phases
``synthetic-only``               as many GAN samples per class as the real split has (TSTR)
================================ ============================================================

Validation is always the real val split and testing the real test split.

:class:`ClassicalAugment` does what MONAI's ``RandFlip``, ``RandRotate90``, ``RandAffine``,
``RandGaussianNoise`` and ``RandAdjustContrast`` do, but on a whole batch at once: those
transforms take one channel-first image per call, and looping them over a batch of 64 28² images
costs about 0.13 s of CPU, against 1 ms batched (the affine part uses MONAI's
``AffineTransform`` layer) and about 0.02 s for the classifier's own step. Per-image
probabilities and ranges are the same as MONAI's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medgan.benchmark.config import ALL_ARMS, ARMS, ClassicalConfig
from medgan.benchmark.subsets import write_train_copy
from medgan.data.dataset import PreparedDataset

__all__ = [
    "ALL_ARMS",
    "ARMS",
    "ArmData",
    "ClassicalAugment",
    "adds_synthetic",
    "arm_data",
    "oversample",
    "pretrains",
    "take_per_class",
    "uses_classical",
    "uses_synthetic",
    "write_train_only",
]


def uses_classical(arm: str) -> bool:
    """Whether ``arm`` trains through the classical augmentation."""
    return "classical" in arm


def uses_synthetic(arm: str) -> bool:
    """Whether ``arm`` trains on GAN samples."""
    return "synthetic" in arm


def adds_synthetic(arm: str) -> bool:
    """Whether ``arm`` trains on real *and* GAN images (every synthetic arm but ``synthetic-only``):
    the candidates of the primary comparison and the ratio sweep."""
    return uses_synthetic(arm) and arm != "synthetic-only"


def pretrains(arm: str) -> bool:
    """Whether ``arm`` pretrains on GAN samples and then fine-tunes on the real images."""
    return arm.startswith("synthetic-pretrain")


class ClassicalAugment:
    """Seeded classical augmentation of a float batch ``(B, C, *spatial)`` in ``[-1, 1]``.

    Each image independently gets, with the configured probabilities: flips along ``flip_axes``,
    a random multiple of 90° in the plane of the last two axes, an affine transform (rotation,
    zoom, shift; black outside the field of view), Gaussian noise with a random standard deviation,
    and a gamma contrast change. Every random number comes from this object's own generator, so
    a run is repeatable from its seed whatever else uses torch's global RNG.

    Args:
        cfg: the ``classical`` config section.
        spatial_dims: 2 or 3.
        seed: seeds the generator (use the run's seed).

    Example:
        >>> aug = ClassicalAugment(ClassicalConfig(), spatial_dims=2, seed=0)
        >>> aug(torch.zeros(8, 1, 28, 28)).shape
        torch.Size([8, 1, 28, 28])
    """

    def __init__(self, cfg: ClassicalConfig, spatial_dims: int, seed: int) -> None:
        from monai.networks.layers import AffineTransform

        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        bad = [a for a in cfg.flip_axes if a >= spatial_dims]
        if bad:
            raise ValueError(f"classical.flip_axes: axis {bad[0]} does not exist in {spatial_dims}D data")
        self.cfg, self.spatial_dims = cfg, spatial_dims
        self.generator = torch.Generator().manual_seed(int(seed))
        # normalized=True: theta acts on [-1, 1] coordinates, so rotations and zooms are about the centre.
        self.affine = AffineTransform(normalized=True, mode="bilinear", padding_mode="zeros")

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) * (high - low) + low

    def _mask(self, n: int, p: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) < p

    def _theta(self, n: int) -> torch.Tensor:
        """Random affine matrices ``(n, d + 1, d + 1)`` in normalised coordinates."""
        d, c = self.spatial_dims, self.cfg
        limit = math.radians(c.rotate_degrees)
        if d == 2:
            a = self._uniform(n, -limit, limit)
            rot = torch.stack([torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2)
        else:
            rot = torch.eye(3).repeat(n, 1, 1)
            for i, j in ((1, 2), (0, 2), (0, 1)):  # about each axis in turn
                a = self._uniform(n, -limit, limit)
                r = torch.eye(3).repeat(n, 1, 1)
                r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = a.cos(), -a.sin(), a.sin(), a.cos()
                rot = r @ rot
        zoom = self._uniform(n, 1 - c.scale, 1 + c.scale)
        shift = self._uniform(n * d, -2 * c.translate, 2 * c.translate).view(n, d)  # [-1, 1] spans the image
        theta = torch.eye(d + 1).repeat(n, 1, 1)
        theta[:, :d, :d] = rot * zoom.view(n, 1, 1)
        theta[:, :d, d] = shift
        return theta

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augment ``x`` ``(B, C, *spatial)`` in ``[-1, 1]``; returns a new tensor of the same shape."""
        b, c, dev = x.shape[0], self.cfg, x.device
        view = (b,) + (1,) * (x.ndim - 1)

        def mask(p: float) -> torch.Tensor:
            return self._mask(b, p).to(dev).view(view)

        for axis in c.flip_axes:
            x = torch.where(mask(c.flip_prob), x.flip(2 + axis), x)
        if c.rotate90_prob > 0:
            k = torch.where(self._mask(b, c.rotate90_prob), torch.randint(1, 4, (b,), generator=self.generator), 0)
            out = x.clone()
            for turns in (1, 2, 3):
                sel = (k == turns).to(dev)
                if bool(sel.any()):
                    out[sel] = torch.rot90(x[sel], turns, dims=(-2, -1))
            x = out
        if c.affine_prob > 0:
            apply = mask(c.affine_prob)
            theta = self._theta(b).to(dev)
            # Shift to [0, 2] so that zero padding is black (-1) once shifted back.
            moved = self.affine(x + 1.0, theta) - 1.0
            x = torch.where(apply, moved, x)
        if c.noise_prob > 0:
            apply = mask(c.noise_prob)
            std = self._uniform(b, 0.0, c.noise_std).to(dev).view(view)
            noise = torch.randn(x.shape, generator=self.generator).to(dev)
            x = torch.where(apply, x + std * noise, x)
        if c.contrast_prob > 0:
            apply = mask(c.contrast_prob)
            gamma = self._uniform(b, c.gamma[0], c.gamma[1]).to(dev).view(view)
            flat = x.reshape(b, -1)
            lo, hi = flat.min(1).values.view(view), flat.max(1).values.view(view)
            span = (hi - lo).clamp_min(1e-7)
            x = torch.where(apply, ((x - lo) / span).clamp(0, 1).pow(gamma) * span + lo, x)
        return x.clamp(-1.0, 1.0)


def take_per_class(images: np.ndarray, labels: np.ndarray, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The first ``counts[c]`` images of every class ``c`` (in order), as ``(images, labels)``."""
    keep = np.concatenate([np.flatnonzero(labels == c)[:n] for c, n in enumerate(counts)] or [np.zeros(0, int)])
    short = [c for c, n in enumerate(counts) if int((labels == c).sum()) < n]
    if short:
        raise ValueError(f"not enough synthetic images of class {short[0]}: need {counts[short[0]]}")
    keep = np.sort(keep.astype(np.int64))
    return images[keep], labels[keep]


def oversample(real: tuple[np.ndarray, np.ndarray], counts: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` real images of every class ``c``, repeated: a seeded permutation of the class, cycled.

    Every image of a class is used once before any is used twice, so the repeats are as even as
    they can be.

    Raises:
        ValueError: a class with images to add but none to repeat.
    """
    images, labels = real
    picks = []
    for c, n in enumerate(counts):
        if n == 0:
            continue
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            raise ValueError(f"cannot oversample class {c}: it has no real training image")
        order = members[np.random.default_rng([int(seed), c]).permutation(len(members))]
        picks.append(np.resize(order, n))  # cycles through the permutation
    idx = np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, np.int64)
    return images[idx], labels[idx]


@dataclass
class ArmData:
    """One arm's training data.

    Attributes:
        train: ``(uint8 images (N, C, *spatial), labels (N,))``, the classifier's ``train``.
        extra: appended to ``train`` (synthetic images, or repeated real ones), or None.
        classical: whether the classical augmentation applies.
        n_real: real images per class.
        n_synthetic: synthetic images per class (for a pretraining arm, those it pretrains on).
        pretrain: the synthetic images a ``synthetic-pretrain`` arm trains on first, or None.
        n_repeated: real images per class added again by ``real+oversample``.
    """

    train: tuple[np.ndarray, np.ndarray]
    extra: tuple[np.ndarray, np.ndarray] | None
    classical: bool
    n_real: list[int]
    n_synthetic: list[int]
    pretrain: tuple[np.ndarray, np.ndarray] | None = None
    n_repeated: list[int] | None = None


def arm_data(
    arm: str,
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray] | None,
    add_counts: list[int],
    *,
    pretrain_counts: list[int] | None = None,
    seed: int = 0,
) -> ArmData:
    """Assemble the training data of ``arm``.

    Args:
        arm: one of :data:`ALL_ARMS`.
        real: the real training images, ``(images, labels)``.
        synthetic: this seed's synthetic pool (enough of every class for every arm), or None
            for arms that use none. For ``real+curated-synthetic``, the candidates that passed
            curation, in pool order: the arm adds up to ``add_counts`` of them.
        add_counts: images per class that the ``+synthetic`` arms add (and ``real+oversample``
            repeats).
        pretrain_counts: synthetic images per class a ``synthetic-pretrain`` arm pretrains on.
        seed: seeds the order in which ``real+oversample`` repeats images.
    """
    if arm not in ALL_ARMS:
        raise ValueError(f"unknown arm {arm!r}; allowed: {', '.join(ALL_ARMS)}")
    k = len(add_counts)
    real_counts = np.bincount(real[1], minlength=k)[:k].tolist()
    zeros = [0] * k
    if arm == "real+oversample":
        extra = oversample(real, list(add_counts), seed)
        return ArmData(real, extra if len(extra[1]) else None, False, real_counts, zeros, n_repeated=list(add_counts))
    if not uses_synthetic(arm):
        return ArmData(real, None, uses_classical(arm), real_counts, zeros)
    if synthetic is None:
        raise ValueError(f"arm {arm!r} needs synthetic images")
    if arm == "synthetic-only":
        return ArmData(take_per_class(*synthetic, real_counts), None, False, zeros, real_counts)
    if pretrains(arm):
        if pretrain_counts is None:
            raise ValueError(f"arm {arm!r} needs pretrain_counts")
        first = take_per_class(*synthetic, pretrain_counts)
        return ArmData(real, None, uses_classical(arm), real_counts, list(pretrain_counts), pretrain=first)
    if arm == "real+curated-synthetic":
        have = np.bincount(synthetic[1], minlength=k)[:k].tolist()
        add_counts = [min(a, h) for a, h in zip(add_counts, have, strict=True)]
    extra = take_per_class(*synthetic, add_counts)
    return ArmData(real, extra if len(extra[1]) else None, uses_classical(arm), real_counts, list(add_counts))


def write_train_only(dataset: PreparedDataset, folder: Path) -> Path:
    """Write ``dataset``'s train split as a prepared dataset whose val and test splits are empty.

    The benchmark's GAN trains on this folder, so it cannot see a validation or test image. The
    sidecar's ``source`` records the full dataset's sha256, which lets a checkpoint trained here
    be recognised as trained on that dataset. (:func:`medgan.benchmark.subsets.write_train_copy`
    with no subset; a fraction's GAN trains on a copy of its subset only.)
    """
    return write_train_copy(dataset, folder)
