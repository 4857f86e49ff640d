"""The data-scarcity sweep: which real training images a fraction keeps, and the GAN's copy of them.

A fraction ``f`` keeps, of every class ``c`` with ``n_c`` training images, the first
``min(n_c, max(min_per_class, ceil(f · n_c)))`` images of one seeded permutation of that class.
The permutation depends on the subset seed and the class only, never on ``f``, so the subsets are
**nested**: every image of the 5 % subset is in the 10 % subset of the same subset seed, and so on
up to ``f = 1``, which keeps the whole split (in its original order). Stratification is exact up
to the rounding of one image per class; ``min_per_class`` keeps a rare class present (two images
by default, so that a batch of it can be normalised).

Every arm of a seed trains on the same subset (seed ``k`` uses subset seed ``k % subsets``), and
the GAN of that subset trains on a copy that holds only those images
(:func:`write_train_copy`): it never learns from an image the classifier lacks. Val and test stay
whole.

Example:
    >>> labels = np.array([0] * 10 + [1] * 30)
    >>> np.bincount(labels[subset_indices(labels, 0.1, subset_seed=0)]).tolist()
    [2, 3]
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from medgan.data.dataset import DatasetInfo, PreparedDataset, save_prepared
from medgan.training.checkpoint import Subset, train_copy_source

__all__ = ["Subset", "fraction_label", "subset_counts", "subset_indices", "write_train_copy"]


def fraction_label(fraction: float) -> str:
    """A fraction as it appears in names and reports: ``0.1``, ``0.05``, ``1``."""
    return f"{fraction:g}"


def _keep(n: int, fraction: float, min_per_class: int) -> int:
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, and must keep 3, not 4.
    return min(n, max(min_per_class, math.ceil(round(fraction * n, 9))))


def subset_indices(
    labels: np.ndarray, fraction: float, subset_seed: int, min_per_class: int = 2
) -> np.ndarray:
    """Sorted indices into the train split of the ``fraction`` subset with seed ``subset_seed``.

    Args:
        labels: the train split's labels ``(N,)``.
        fraction: the share to keep, in ``(0, 1]``; 1 keeps every image.
        subset_seed: seeds one permutation per class (the same for every fraction: nested subsets).
        min_per_class: the fewest images a class keeps (all of them if it has fewer).

    Raises:
        ValueError: a fraction outside ``(0, 1]`` or a ``min_per_class`` below 1.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be at least 1, got {min_per_class}")
    labels = np.asarray(labels).reshape(-1)
    if fraction >= 1:
        return np.arange(len(labels), dtype=np.int64)
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = np.random.default_rng([int(subset_seed), int(c)]).permutation(len(members))
        keep.append(members[order[: _keep(len(members), fraction, min_per_class)]])
    return np.sort(np.concatenate(keep)).astype(np.int64) if keep else np.zeros(0, np.int64)


def subset_counts(labels: np.ndarray, num_classes: int, fraction: float, min_per_class: int = 2) -> list[int]:
    """Images per class that the ``fraction`` subset keeps (the same for every subset seed)."""
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)[:num_classes]
    return [_keep(int(n), fraction, min_per_class) if fraction < 1 else int(n) for n in counts]


def write_train_copy(
    dataset: PreparedDataset, folder: Path, subset: Subset | None = None, indices: np.ndarray | None = None
) -> Path:
    """Write the train split (or the ``subset`` of it at ``indices``) as a prepared dataset with empty val and test.

    The benchmark's GAN trains on this folder, so it cannot see a validation or test image, nor,
    for a subset, a training image outside the subset. The sidecar's ``source``
    (:func:`medgan.training.checkpoint.train_copy_source`) records the full dataset's sha256 and the
    subset, which lets a checkpoint trained here be recognised as trained on that dataset's train
    split, or on that subset of it only (:func:`medgan.training.checkpoint.trained_on`).

    Args:
        dataset: the full dataset.
        folder: where to write (a prepared-dataset folder).
        subset: ``(fraction, subset seed)``; ``None`` or fraction 1 for the whole split.
        indices: the subset's indices into the train split (:func:`subset_indices`).
    """
    info = dataset.info
    whole = subset is None or subset[0] >= 1
    if not whole and indices is None:
        raise ValueError("a subset copy needs the subset's indices")
    keep = slice(None) if whole else np.asarray(indices)
    train_x, train_y = dataset.images["train"][keep], dataset.labels["train"][keep]
    empty = np.zeros((0, *train_x.shape[1:]), dtype=np.uint8)
    images = {"train": train_x, "val": empty, "test": empty}
    labels = {"train": train_y, "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}
    preprocessing: dict[str, Any]
    if whole:
        name, preprocessing = f"{info.name}-train", {"benchmark": "train split only"}
    else:
        assert subset is not None
        name = f"{info.name}-train-f{fraction_label(subset[0])}-s{int(subset[1])}"
        digest = hashlib.sha256(np.ascontiguousarray(keep, dtype=np.int64).tobytes()).hexdigest()
        preprocessing = {
            "benchmark": "train subset",
            "fraction": float(subset[0]),
            "subset_seed": int(subset[1]),
            "indices_sha256": digest,
        }
    sidecar = DatasetInfo(
        name=name,
        class_names=list(info.class_names),
        channels=info.channels,
        spatial_dims=info.spatial_dims,
        size=list(info.size),
        source=train_copy_source(info.name, info.sha256, None if whole else subset),
        sha256="",
        preprocessing=preprocessing,
        spacing=info.spacing,
    )
    save_prepared(folder, images, labels, sidecar)
    return folder
