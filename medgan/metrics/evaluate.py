"""One call that measures a synthetic set against a real dataset in the domain feature space.

:func:`evaluate` returns a flat ``dict[str, float]`` (fit for a JSON-lines log):

- ``fid``, ``kid_mean``, ``kid_std``: real train vs synthetic (:mod:`medgan.metrics.fidelity`);
- ``precision``, ``recall``, ``density``, ``coverage`` (:mod:`medgan.metrics.prdc`);
- the same per class for a labelled synthetic set, ``<metric>/class_<name>``, and ``fid/class_mean``;
- ``memorisation/*`` against the real test split (:mod:`medgan.metrics.memorisation`), with
  ``memorisation/n_train``, the training images audited (all, or those the generator saw: ``seen``);
- ``domain_classifier/accuracy`` and ``/balanced_accuracy`` of the feature net on real test;
- ``domain_is``: an Inception-Score-like figure computed with the domain classifier
  (:mod:`medgan.metrics.domain_is`), with ``domain_is/real_test`` for real held-out images and
  ``domain_is/max`` (the class count, its upper bound);
- ``c2st/*``: the classifier two-sample test on the pixels (:mod:`medgan.metrics.c2st`): ROC AUC
  of a small CNN telling real train from synthetic, its spread over folds, per class, and the
  real-vs-real floor (train against the held-out val and test splits);
- ``swd/*``: multi-scale sliced Wasserstein distance per Laplacian-pyramid level
  (:mod:`medgan.metrics.swd`), per class, and the real-vs-real floor (``swd/real_vs_real_mean``);
- ``values/*`` for data whose voxels take essentially two values (binary masks): the share of
  voxels within 0.1 (of the full range) of those two values, real and synthetic;
- ``n_real`` and ``n_synthetic``.

The domain-feature metrics (FID, KID, PRDC) live in a space trained to separate the classes, so
they are blind to texture and artefacts; C2ST and SWD look at the pixels. Read them together.

``metrics=("fid",)`` (any of :data:`METRIC_FAMILIES`) computes only some families, e.g. for a cheap
FID every N training steps.

:func:`evaluate_detailed` returns the same numbers with what the report needs to draw figures.
:func:`load_synthetic` reads a synthetic set from an npz, a prepared dataset or a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.data.dataset import (
    PreparedDataset,
    check_split_arrays,
    class_slugs,
    describe_images,
    to_channel_first,
)
from medgan.errors import MedganError
from medgan.synth.manifest import MANIFEST_NAME, read_manifest
from medgan.synth.sampling import load_generator, sample_classes
from medgan.training.checkpoint import RunFolder

if TYPE_CHECKING:
    from medgan.metrics.c2st import C2STConfig, C2STRanking
    from medgan.metrics.features import FeatureExtractor
    from medgan.metrics.memorisation import MemorisationAudit
    from medgan.metrics.swd import SWDConfig

__all__ = [
    "METRIC_FAMILIES",
    "Evaluation",
    "SyntheticSet",
    "check_compatible",
    "evaluate",
    "evaluate_detailed",
    "load_synthetic",
    "piece_caution",
    "size_cautions",
    "value_metrics",
]

PER_CLASS_METRICS = (
    "c2st/auc", "c2st/auc_std", "swd/mean", "fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
    "values/foreground_real", "values/foreground_synthetic", "values/size_auc_real", "values/size_auc_synthetic",
    "values/depth_real", "values/depth_synthetic", "values/depth_auc_real", "values/depth_auc_synthetic",
)
METRIC_FAMILIES = ("fid", "kid", "prdc", "memorisation", "c2st", "swd", "values", "domain_is")
"""What ``metrics=`` can select: FID, KID, precision/recall/density/coverage, the memorisation audit,
the classifier two-sample test, the sliced Wasserstein distance, the value distribution of mask-like data
and the domain Inception Score."""
FEATURE_FAMILIES = frozenset({"fid", "kid", "prdc", "memorisation", "domain_is"})
"""The families that need the domain feature net."""
BINARY_COVERAGE = 0.9
"""Data counts as two-valued (masks) when its two commonest grey levels cover this share of voxels."""
SIZE_SIGNAL = 0.1
"""A class whose real masks' size tells it from the others with ROC AUC at least 0.5 + this (the larger
class) is checked in the synthetic set: there its size AUC must stay above 0.5 (:func:`size_cautions`)."""
PIECES_CAUTION = 2.0
"""Synthetic masks in more than this many times the real masks' connected pieces (at least 1) are
fragmented (:func:`piece_caution`)."""


@dataclass
class SyntheticSet:
    """Synthetic images as uint8 ``(N, C, *spatial)`` with int64 labels ``(N,)``, and their source."""

    images: np.ndarray
    labels: np.ndarray
    source: str


@dataclass
class Evaluation:
    """What :func:`evaluate_detailed` measured, with the arrays the report draws from.

    Attributes:
        metrics: the flat ``dict[str, float]`` that :func:`evaluate` returns.
        class_names: names by label index.
        real_images: the real reference set (train split), uint8 ``(N, C, *spatial)``.
        real_labels: its labels ``(N,)``.
        synthetic_images: uint8 ``(M, C, *spatial)``.
        synthetic_labels: ``(M,)``, or None for an unconditional set.
        audit: the memorisation audit (None when not selected or without a held-out reference).
        extractor_info: provenance of the feature space.
        c2st_rankings: the per-class C2ST's score for each image it tested, by class slug (empty when
            the C2ST was not run per class): which images gave the set away.
    """

    metrics: dict[str, float]
    class_names: list[str]
    real_images: np.ndarray
    real_labels: np.ndarray
    synthetic_images: np.ndarray
    synthetic_labels: np.ndarray | None
    audit: MemorisationAudit | None = None
    extractor_info: dict[str, Any] = field(default_factory=dict)
    c2st_rankings: dict[str, C2STRanking] = field(default_factory=dict)


def check_compatible(
    real_images: np.ndarray,
    real_labels: np.ndarray,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray | None,
    class_names: list[str],
    k: int = 3,
    per_class: bool = True,
    knn: bool = True,
) -> None:
    """Refuse inputs the metrics cannot compare, with a message that says what to change.

    Args:
        real_images: uint8 ``(N, C, *spatial)``.
        real_labels: ``(N,)``.
        synthetic_images: uint8 ``(M, C, *spatial)``.
        synthetic_labels: ``(M,)``, or None for an unconditional set (no per-class checks).
        class_names: names by label index.
        k: the k-NN metrics' neighbour count.
        per_class: whether per-class metrics will be computed.
        knn: whether the k-NN metrics will be computed (they need ``k + 1`` samples; FID and KID
            alone need 2).

    Raises:
        MedganError: images that are not uint8 ``(N, C, *spatial)``; shapes, channels or
            dimensionality that differ; a synthetic label outside the real classes; a real class
            missing from a labelled synthetic set; fewer than ``k + 1`` samples in a set or a class.
    """
    for name, images in (("real", real_images), ("synthetic", synthetic_images)):
        if images.dtype != np.uint8 or images.ndim not in (4, 5):
            raise MedganError(
                f"{name} images must be uint8 (N, C, H, W) or (N, C, D, H, W); got {images.dtype} {images.shape}"
            )
    if real_images.shape[1:] != synthetic_images.shape[1:]:
        raise MedganError(
            f"real and synthetic images differ: real are {describe_images(real_images.shape[1:])}, synthetic are "
            f"{describe_images(synthetic_images.shape[1:])}; they must match in dimensionality, channels and size"
        )
    need = k + 1 if knn else 2
    rule = f"k+1 = {need} (k={k})" if knn else "2 (FID and KID)"
    what = "the k-NN metrics" if knn else "FID and KID"
    for name, n in (("real", len(real_images)), ("synthetic", len(synthetic_images))):
        if n < need:
            raise MedganError(f"too few {name} samples for {what}: {n}, need at least {rule}")
    if synthetic_labels is None or not per_class:
        return
    if len(synthetic_labels) != len(synthetic_images):
        raise MedganError(f"{len(synthetic_images)} synthetic images but {len(synthetic_labels)} labels")
    if len(synthetic_labels) and (synthetic_labels.min() < 0 or synthetic_labels.max() >= len(class_names)):
        raise MedganError(
            f"synthetic labels must lie in 0..{len(class_names) - 1} ({', '.join(class_names)}); "
            f"found {int(synthetic_labels.min())}..{int(synthetic_labels.max())}"
        )
    real_counts = np.bincount(real_labels, minlength=len(class_names))
    syn_counts = np.bincount(synthetic_labels, minlength=len(class_names))
    missing = [class_names[c] for c in range(len(class_names)) if real_counts[c] > 0 and syn_counts[c] == 0]
    if missing:
        raise MedganError(
            f"class{'es' if len(missing) > 1 else ''} missing from the synthetic set: {', '.join(missing)} "
            "(per-class metrics need every real class)"
        )
    for c, name in enumerate(class_names):
        if real_counts[c] == 0:
            continue  # nothing real to compare this class with; it is left out of the per-class metrics
        for which, counts in (("real", real_counts), ("synthetic", syn_counts)):
            if counts[c] < need:
                raise MedganError(
                    f"too few {which} samples of class '{name}' for {what}: {counts[c]}, "
                    f"need at least {rule} per class"
                )


def _set_metrics(
    real_f: np.ndarray,
    syn_f: np.ndarray,
    families: frozenset[str],
    *,
    k: int,
    kid_subset_size: int,
    kid_subsets: int,
    seed: int,
) -> dict[str, float]:
    """The selected FID / KID / k-NN metrics between two feature sets."""
    from medgan.metrics.fidelity import fid, kid
    from medgan.metrics.prdc import prdc

    out: dict[str, float] = {}
    if "fid" in families:
        out["fid"] = fid(real_f, syn_f)
    if "kid" in families:
        out["kid_mean"], out["kid_std"] = kid(real_f, syn_f, subset_size=kid_subset_size, subsets=kid_subsets, seed=seed)
    if "prdc" in families:
        out.update(prdc(real_f, syn_f, k=k))
    return out


def _families(metrics: Collection[str] | None) -> frozenset[str]:
    if metrics is None:
        return frozenset(METRIC_FAMILIES)
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = sorted(set(metrics) - set(METRIC_FAMILIES))
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown or '(none)'}; allowed: {', '.join(METRIC_FAMILIES)}")
    return frozenset(metrics)


def _per_class_metrics(
    real_f: np.ndarray,
    real_y: np.ndarray,
    syn_f: np.ndarray,
    syn_y: np.ndarray,
    class_names: list[str],
    *,
    families: frozenset[str],
    k: int,
    kid_subset_size: int,
    kid_subsets: int,
    seed: int,
) -> dict[str, float]:
    out: dict[str, float] = {}
    fids = []
    for c, slug in enumerate(class_slugs(class_names)):
        r, s = real_f[real_y == c], syn_f[syn_y == c]
        if len(r) == 0:
            continue  # a class absent from the real train split has nothing to compare with
        values = _set_metrics(r, s, families, k=k, kid_subset_size=kid_subset_size, kid_subsets=kid_subsets, seed=seed)
        for name in PER_CLASS_METRICS:
            if name in values:
                out[f"{name}/class_{slug}"] = values[name]
        if "fid" in values:
            fids.append(values["fid"])
    if fids:
        out["fid/class_mean"] = float(np.mean(fids))
    return out


def evaluate_detailed(
    real: PreparedDataset | tuple[np.ndarray, np.ndarray],
    synthetic: PreparedDataset | tuple[np.ndarray, np.ndarray | None],
    *,
    extractor: FeatureExtractor | None = None,
    reference: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None,
    class_names: list[str] | None = None,
    metrics: Collection[str] | None = None,
    k: int = 3,
    per_class: bool = True,
    percentile: float = 1.0,
    kid_subset_size: int = 100,
    kid_subsets: int = 50,
    seed: int = 0,
    arch: str = "cnn",
    device: str = "cpu",
    feature_epochs: int | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
    c2st: C2STConfig | None = None,
    swd: SWDConfig | None = None,
    seen: np.ndarray | None = None,
) -> Evaluation:
    """Measure ``synthetic`` against ``real``; the arguments are those of :func:`evaluate`.

    Returns:
        An :class:`Evaluation`: the metrics plus the arrays and the audit the report draws.
    """
    from medgan.metrics.memorisation import memorisation_audit

    families = _families(metrics)

    # Section. Inputs as uint8 channel-first arrays with int64 labels.
    dataset = real if isinstance(real, PreparedDataset) else None
    if dataset is not None:
        real_x, real_y = dataset.channel_first("train"), dataset.labels["train"]
        names = list(class_names or dataset.info.class_names)
    else:
        real_x, real_y = np.asarray(real[0]), np.asarray(real[1]).reshape(-1).astype(np.int64)  # type: ignore[index]
        names = list(class_names or [str(i) for i in range(int(real_y.max()) + 1 if real_y.size else 0)])
    syn_y: np.ndarray | None
    if isinstance(synthetic, PreparedDataset):
        syn_x, syn_y = synthetic.channel_first("train"), synthetic.labels["train"]
    else:
        syn_x = np.asarray(synthetic[0])
        syn_y = None if synthetic[1] is None else np.asarray(synthetic[1]).reshape(-1).astype(np.int64)
    check_compatible(real_x, real_y, syn_x, syn_y, names, k=k, per_class=per_class, knn="prdc" in families)

    if extractor is None and dataset is None and families & FEATURE_FAMILIES:
        raise ValueError("pass extractor= when real is given as arrays (the feature net needs a dataset)")
    out: dict[str, float] = {"n_real": float(len(real_x)), "n_synthetic": float(len(syn_x))}
    heldout = _heldout(dataset, reference)

    # Section. Pixel-space metrics: two-sample CNN, sliced Wasserstein, value distribution.
    classes = names if per_class and syn_y is not None else []
    rankings: dict[str, C2STRanking] = {}
    if "c2st" in families:
        from medgan.metrics.c2st import C2STConfig, c2st_metrics, c2st_ranking

        c2st_cfg = c2st or C2STConfig(seed=seed, device=device)
        out.update(c2st_metrics(real_x, real_y, syn_x, syn_y if classes else None, class_slugs(names), heldout,
                                c2st_cfg))
        for c, slug in enumerate(class_slugs(names)):
            if f"c2st/auc/class_{slug}" in out:  # the per-class tests just run: their scores are memoised
                rankings[slug] = c2st_ranking(real_x[real_y == c], syn_x[syn_y == c], c2st_cfg)  # type: ignore[index]
    if "swd" in families:
        from medgan.metrics.swd import SWDConfig, swd_metrics

        edge = min(real_x.shape[2:])  # tiny images get a smaller patch than the paper's 7
        out.update(swd_metrics(real_x, real_y, syn_x, syn_y if classes else None, class_slugs(names), heldout,
                               swd or SWDConfig(patch=min(7, edge), seed=seed)))
    if "values" in families:
        out.update(value_metrics(real_x, syn_x, real_labels=real_y if classes else None,
                                 synthetic_labels=syn_y if classes else None, class_names=names))
    if not families & FEATURE_FAMILIES:
        return Evaluation(metrics=out, class_names=names, real_images=real_x, real_labels=real_y,
                          synthetic_images=syn_x, synthetic_labels=syn_y, c2st_rankings=rankings)

    # Section. Feature space.
    if extractor is None:
        if dataset is None:
            raise ValueError("pass extractor= when real is given as arrays (the feature net needs a dataset)")
        from medgan.metrics.features import DEFAULT_EPOCHS, get_feature_extractor

        extractor = get_feature_extractor(
            dataset, arch, device=device, seed=seed, epochs=feature_epochs or DEFAULT_EPOCHS, progress=progress
        )
    real_f = extractor.split_features(dataset, "train") if dataset is not None else extractor.extract(real_x)
    syn_f = extractor.extract(syn_x)

    # Section. Whole-set metrics, then per class.
    knobs = {"k": k, "kid_subset_size": kid_subset_size, "kid_subsets": kid_subsets, "seed": seed}
    out.update(_set_metrics(real_f, syn_f, families, **knobs))
    if per_class and syn_y is not None and families & {"fid", "kid", "prdc"}:
        out.update(_per_class_metrics(real_f, real_y, syn_f, syn_y, names, families=families, **knobs))

    # Section. Memorisation against the held-out real split.
    audit = None
    if "memorisation" in families:
        if dataset is not None and reference is None:
            ref_f = extractor.split_features(dataset, "test")
        elif reference is not None:
            ref_x = reference[0] if isinstance(reference, tuple) else reference
            ref_f = extractor.extract(np.asarray(ref_x))
        else:
            ref_f = None
        if ref_f is not None and len(ref_f):
            idx = np.arange(len(real_f)) if seen is None else _seen_indices(seen, len(real_f))
            audit = memorisation_audit(syn_f, real_f[idx], ref_f, percentile=percentile)
            audit.nearest_train = idx[audit.nearest_train]
            out.update(audit.metrics())
            out["memorisation/n_train"] = float(len(idx))
    out.update(extractor.domain_metrics())
    if "domain_is" in families:
        from medgan.metrics.domain_is import domain_is_metrics

        ref_x = (dataset.channel_first("test") if dataset is not None and reference is None
                 else (reference[0] if isinstance(reference, tuple) else reference))
        out.update(domain_is_metrics(extractor, syn_x, None if ref_x is None else np.asarray(ref_x)))
    return Evaluation(
        metrics=out,
        class_names=names,
        real_images=real_x,
        real_labels=real_y,
        synthetic_images=syn_x,
        synthetic_labels=syn_y,
        audit=audit,
        extractor_info=dict(extractor.info),
        c2st_rankings=rankings,
    )


def evaluate(
    real: PreparedDataset | tuple[np.ndarray, np.ndarray],
    synthetic: PreparedDataset | tuple[np.ndarray, np.ndarray | None],
    *,
    extractor: FeatureExtractor | None = None,
    reference: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None,
    class_names: list[str] | None = None,
    metrics: Collection[str] | None = None,
    k: int = 3,
    per_class: bool = True,
    percentile: float = 1.0,
    kid_subset_size: int = 100,
    kid_subsets: int = 50,
    seed: int = 0,
    arch: str = "cnn",
    device: str = "cpu",
    feature_epochs: int | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
    c2st: C2STConfig | None = None,
    swd: SWDConfig | None = None,
    seen: np.ndarray | None = None,
) -> dict[str, float]:
    """Fidelity, diversity and memorisation of ``synthetic`` against ``real``, in the domain feature space.

    Args:
        real: a :class:`~medgan.data.dataset.PreparedDataset` (its train split is the reference,
            its test split the memorisation reference, and it trains or loads the cached feature
            net), or ``(uint8 images (N, C, *spatial), labels (N,))`` with ``extractor`` given.
        synthetic: ``(uint8 images (M, C, *spatial), labels (M,) or None)``, or a prepared
            dataset (its train split). ``None`` labels skip the per-class metrics.
        extractor: a :class:`~medgan.metrics.features.FeatureExtractor`; default: the cached
            domain feature net of ``real`` (trained on first use). Pass one to evaluate often
            (every N training steps): the real features are then computed only once.
        reference: held-out real images (or ``(images, labels)``) for the memorisation audit;
            default: the test split of a prepared ``real``. Without one, no audit.
        class_names: names by label index (default: the dataset's, or ``"0"``, ``"1"``, ...).
        metrics: the families to compute, any of :data:`METRIC_FAMILIES` (``"fid"``, ``"kid"``,
            ``"prdc"``, ``"memorisation"``, ``"c2st"``, ``"swd"``); default all. ``("fid",)`` is the cheap choice for
            logging during training.
        k: the neighbour count of precision / recall / density / coverage.
        per_class: also compute the selected metrics per class (needs synthetic labels).
        percentile: the reference percentile below which a sample is a likely copy.
        kid_subset_size: KID subset size (lowered for small sets).
        kid_subsets: number of KID subsets.
        seed: seeds KID subsets and, when trained here, the feature net.
        arch: feature-net architecture when it is trained or loaded here.
        device: where the feature net runs.
        feature_epochs: feature-net epochs when it is trained here (default 20).
        progress: called after each feature-net training epoch with its history row.
        c2st: settings of the classifier two-sample test (default :class:`~medgan.metrics.c2st.C2STConfig`
            with ``seed`` and ``device``).
        swd: settings of the sliced Wasserstein distance (default :class:`~medgan.metrics.swd.SWDConfig`
            with ``seed``).
        seen: indices of the real train images the generator learnt from, when it learnt from part of
            them (a data-scarcity subset); default all. The memorisation audit measures distances to
            these alone (a generator cannot copy an image it never saw, and a look-alike of one is the
            population's own variation); its ``nearest_train`` still indexes the whole train split.
            The fidelity metrics keep the whole split as the population.

    Returns:
        A flat ``dict[str, float]``; the keys are listed in this module's docstring.

    Raises:
        MedganError: for inputs that cannot be compared (see :func:`check_compatible`).
        ValueError: for an unknown name in ``metrics``.

    Example:
        >>> ds = load_dataset("breastmnist")
        >>> fx = get_feature_extractor(ds)
        >>> evaluate(ds, (fake_u8, fake_labels), extractor=fx, metrics=("fid",))["fid"]
        3.21
    """
    return evaluate_detailed(
        real, synthetic, extractor=extractor, reference=reference, class_names=class_names, metrics=metrics,
        k=k, per_class=per_class, percentile=percentile,
        kid_subset_size=kid_subset_size, kid_subsets=kid_subsets, seed=seed, arch=arch, device=device,
        feature_epochs=feature_epochs, progress=progress, c2st=c2st, swd=swd, seen=seen,
    ).metrics


def _seen_indices(seen: np.ndarray, n: int) -> np.ndarray:
    """``seen`` as sorted unique int64 indices into a train split of ``n`` images, checked."""
    idx = np.unique(np.asarray(seen).reshape(-1))
    if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx[0] < 0 or idx[-1] >= n:
        raise ValueError(f"seen must hold indices into the {n} train images, got {idx.size} values"
                         + (f" from {idx[0]} to {idx[-1]}" if idx.size else ""))
    return idx.astype(np.int64)


def _heldout(dataset: PreparedDataset | None, reference: tuple[np.ndarray, np.ndarray] | np.ndarray | None) -> np.ndarray | None:
    """Held-out real images for the pixel metrics' real-vs-real floor: ``reference``, else val + test."""
    if reference is not None:
        return np.asarray(reference[0] if isinstance(reference, tuple) else reference)
    if dataset is None:
        return None
    parts = [dataset.channel_first(split) for split in ("val", "test") if len(dataset.labels.get(split, ())) > 0]
    return np.concatenate(parts) if parts else None


def value_metrics(real: np.ndarray, synthetic: np.ndarray, tolerance: float = 0.1, *,
                  real_labels: np.ndarray | None = None, synthetic_labels: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None) -> dict[str, float]:
    """For two-valued real data (masks): the share of voxels within ``tolerance`` of those two values.

    Real binary masks score ~1.0; a generator that paints grey blobs scores far lower, however
    well its shapes match. Returns ``{}`` when the real data is not two-valued
    (:data:`BINARY_COVERAGE`).

    The pixel tests barely see a sprinkling of stray voxels (real masks hold a few isolated voxels
    already), so the shape is counted too: the foreground (voxels nearer the upper value) of each
    image is split into connected components (26-connected in 3D, 8-connected in 2D). A real
    organ mask is one piece; a generator's speckle and fragments raise the count.

    With labels for both sets, the organ's size is read per class, since in masks the size is much
    of what a class is (AdrenalMNIST3D: hyperplastic glands are larger; mask size alone tells them
    from normal ones with ROC AUC 0.68, about what a CNN reaches). A generator can draw clean masks
    and still get the sizes backwards, which its TSTR then shows as chance.

    Args:
        real: uint8 ``(N, C, *spatial)``.
        synthetic: uint8 ``(M, C, *spatial)``.
        tolerance: the distance, as a share of the 0..255 range.
        real_labels: ``(N,)`` class indices of ``real`` (optional; with ``synthetic_labels`` and
            ``class_names``, the per-class size figures are added).
        synthetic_labels: ``(M,)`` class indices of ``synthetic``.
        class_names: names by class index (the keys use their slugs).

    Returns:
        ``values/near_modes_real``, ``values/near_modes_synthetic``, ``values/mode_low`` and
        ``values/mode_high`` (the two grey levels); ``values/components_real`` and
        ``values/components_synthetic`` (mean connected foreground pieces per image), and
        ``values/one_piece_real`` and ``values/one_piece_synthetic`` (the share of images whose
        foreground is a single piece). With labels, per class: ``values/foreground_real/class_<slug>``
        and ``values/foreground_synthetic/class_<slug>`` (the mean share of the image the foreground
        fills) and ``values/size_auc_real/class_<slug>`` and ``values/size_auc_synthetic/class_<slug>``
        (the ROC AUC with which the foreground's size alone tells the class from the others; 0.5 =
        size carries no class, below 0.5 = the class is the smaller one); and the same two for thickness,
        ``values/depth_{real,synthetic}/class_<slug>`` (the foreground's mean depth: the city-block distance
        of each foreground voxel to the background, 1 on the surface, averaged over the mask) and
        ``values/depth_auc_{real,synthetic}/class_<slug>`` (how well mean depth alone tells the class).
    """
    counts = np.bincount(np.asarray(real, dtype=np.uint8).reshape(-1), minlength=256)
    top = np.sort(np.argsort(counts)[-2:])
    if counts[top].sum() < BINARY_COVERAGE * counts.sum():
        return {}
    levels = np.arange(256)
    close = np.abs(levels[:, None] - top[None, :]).min(axis=1) <= tolerance * 255  # a lookup table by grey level
    near = lambda x: float(close[np.asarray(x, dtype=np.uint8)].mean())  # noqa: E731
    cut = (int(top[0]) + int(top[1])) / 2
    pieces_real, pieces_syn = _components(real, cut), _components(synthetic, cut)
    out = {
        "values/near_modes_real": near(real),
        "values/near_modes_synthetic": near(synthetic),
        "values/mode_low": float(top[0]),
        "values/mode_high": float(top[1]),
        "values/components_real": float(pieces_real.mean()) if pieces_real.size else float("nan"),
        "values/components_synthetic": float(pieces_syn.mean()) if pieces_syn.size else float("nan"),
        "values/one_piece_real": float((pieces_real == 1).mean()) if pieces_real.size else float("nan"),
        "values/one_piece_synthetic": float((pieces_syn == 1).mean()) if pieces_syn.size else float("nan"),
    }
    if real_labels is not None and synthetic_labels is not None and class_names is not None:
        out.update(_cues_by_class(real, np.asarray(real_labels), synthetic, np.asarray(synthetic_labels),
                                  class_names, cut))
    return out


def size_cautions(metrics: Mapping[str, float], class_names: Sequence[str]) -> list[str]:
    """A caution per class that is the larger one in real masks and not in the synthetic ones.

    Reads the per-class figures of :func:`value_metrics`; a class whose real size carries class
    (size AUC >= 0.5 + :data:`SIZE_SIGNAL`) but whose synthetic size AUC is at most 0.5 is drawn at
    the wrong size, and a classifier trained on those draws learns the class backwards.

    Args:
        metrics: metrics holding ``values/size_auc_{real,synthetic}/class_<slug>`` (and, for the
            message, ``values/foreground_{real,synthetic}/class_<slug>``); missing keys mean no caution.
        class_names: names by class index.

    Returns:
        One sentence per class drawn at the wrong size (empty when none is, or not mask data).
    """
    out = []
    for name, slug in zip(class_names, class_slugs(class_names), strict=True):
        real = metrics.get(f"values/size_auc_real/class_{slug}")
        syn = metrics.get(f"values/size_auc_synthetic/class_{slug}")
        if real is None or syn is None or not real >= 0.5 + SIZE_SIGNAL or not syn <= 0.5:
            continue
        fg_real, fg_syn = (metrics.get(f"values/foreground_{side}/class_{slug}", float("nan"))
                           for side in ("real", "synthetic"))
        out.append(f"In the real data the {name} masks are the larger ones (their size alone tells the class with "
                   f"ROC AUC {real:.2f}); in the synthetic set they are not ({syn:.2f}; foreground {fg_syn:.1%} of "
                   f"the image against {fg_real:.1%} in real {name} masks): the GAN draws the class sizes wrong, "
                   "and the class signal a classifier learns from them with it.")
    return out


def piece_caution(metrics: Mapping[str, float]) -> str | None:
    """A caution when the synthetic masks fall into more than :data:`PIECES_CAUTION` times the real masks' pieces.

    Args:
        metrics: metrics holding ``values/components_synthetic`` and ``values/components_real``.

    Returns:
        The sentence, or None (not fragmented, or not mask data).
    """
    pieces, real_pieces = metrics.get("values/components_synthetic"), metrics.get("values/components_real")
    if pieces is None or real_pieces is None or not pieces > PIECES_CAUTION * max(real_pieces, 1.0):
        return None
    return (f"The synthetic masks fall into {pieces:.1f} connected pieces on average, the real ones into "
            f"{real_pieces:.1f}: speckle or fragments a reader sees at once.")


def mask_distance(metrics: Mapping[str, float], class_names: Sequence[str]) -> dict[str, float]:
    """How far a synthetic set's mask figures lie from the real masks': one number, lower is nearer, 0 = equal.

    The sum of three parts, each read from :func:`value_metrics`'s figures (with labels):

    - ``mask_distance/class_gap``: per class, ``|AUC_syn - AUC_real| / max(|AUC_real - 0.5|, 0.05)``,
      the error in how well size alone tells the class, in units of the real gap; averaged over classes.
      A generator that draws the sizes backwards scores about 2, one that draws no size gap about 1;
    - ``mask_distance/sizes``: per class, the relative error of the mean foreground share; averaged;
    - ``mask_distance/pieces``: ``|ln(pieces_syn / max(pieces_real, 1))|``, fragments and speckle on a log scale
      (synthetic pieces are floored at 0.01, so that empty masks score badly rather than well).

    The rule that :mod:`medgan.metrics.selection` keeps a training run by. It was fixed on five
    AdrenalMNIST3D training seeds of one config, where it ordered them exactly as their TSTR did, and
    tested on five more (``benchmarks/results/gan_quality.md``, "Choosing among training seeds").

    Args:
        metrics: :func:`value_metrics`'s figures, per class included.
        class_names: names by class index.

    Returns:
        ``mask_distance`` and its three parts, or ``{}`` when the figures are not there (not mask data,
        or no labels).
    """
    pieces, real_pieces = metrics.get("values/components_synthetic"), metrics.get("values/components_real")
    gaps, sizes = [], []
    for slug in class_slugs(class_names):
        auc_real, auc_syn = (metrics.get(f"values/size_auc_{side}/class_{slug}") for side in ("real", "synthetic"))
        fg_real, fg_syn = (metrics.get(f"values/foreground_{side}/class_{slug}") for side in ("real", "synthetic"))
        if auc_real is not None and auc_syn is not None:
            gaps.append(abs(auc_syn - auc_real) / max(abs(auc_real - 0.5), 0.05))
        if fg_real is not None and fg_syn is not None and fg_real > 0:
            sizes.append(abs(fg_syn - fg_real) / fg_real)
    if pieces is None or real_pieces is None or not gaps or not sizes:
        return {}
    parts = {
        "mask_distance/class_gap": float(np.mean(gaps)),
        "mask_distance/sizes": float(np.mean(sizes)),
        "mask_distance/pieces": float(abs(np.log(max(pieces, 0.01) / max(real_pieces, 1.0)))),
    }
    return {"mask_distance": sum(parts.values()), **parts}


def _cues_by_class(real: np.ndarray, real_y: np.ndarray, synthetic: np.ndarray, syn_y: np.ndarray,
                   class_names: Sequence[str], cut: float) -> dict[str, float]:
    """Per class, for the foreground's size and its thickness: the mean, and how well it alone tells the class
    (ROC AUC)."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, float] = {}
    for side, images, labels in (("real", real, real_y), ("synthetic", synthetic, syn_y)):
        share = (np.asarray(images) > cut).reshape(len(images), -1).mean(axis=1)
        cues = (("foreground", "size_auc", share), ("depth", "depth_auc", _mean_depth(images, cut)))
        for c, slug in enumerate(class_slugs(class_names)):
            mine = labels == c
            if not mine.any():
                continue
            for mean_key, auc_key, value in cues:
                out[f"values/{mean_key}_{side}/class_{slug}"] = float(value[mine].mean())
                if not mine.all():
                    out[f"values/{auc_key}_{side}/class_{slug}"] = float(roc_auc_score(mine, value))
    return out


def _mean_depth(images: np.ndarray, cut: float) -> np.ndarray:
    """Each ``(C, *spatial)`` image's foreground thickness: the mean city-block distance of its foreground voxels
    (above ``cut`` in any channel) to the background, 1 on the surface; 0 for an empty image.

    In AdrenalMNIST3D thickness is the class more than size is: mean depth tells hyperplasia from normal with
    ROC AUC 0.84 on the train split, size 0.68 (``benchmarks/results/gan_quality.md``). City-block distances
    order the masks as Euclidean ones do (the same AUC to 0.005) at an eighth of the cost.
    """
    from scipy import ndimage

    depths = np.zeros(len(images))
    for i, im in enumerate(np.asarray(images)):
        fg = (im > cut).any(axis=0)
        if fg.any():
            depths[i] = ndimage.distance_transform_cdt(fg, metric="taxicab")[fg].mean()
    return depths


def _components(images: np.ndarray, cut: float) -> np.ndarray:
    """Connected foreground pieces (values above ``cut``) of each ``(C, *spatial)`` image, all
    neighbours (faces, edges, corners) counting as connected; channels are counted together."""
    from scipy import ndimage

    images = np.asarray(images)
    spatial = images.ndim - 2
    structure = np.ones((3,) * spatial, dtype=bool)
    return np.array([sum(ndimage.label(ch > cut, structure=structure)[1] for ch in im) for im in images], dtype=float)


def _subsample_per_class(labels: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = [
        np.sort(rng.permutation(np.flatnonzero(labels == c))[:n_per_class]) for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def _is_checkpoint(path: Path) -> bool:
    return path.suffix == ".pt" or (path.is_dir() and RunFolder.is_run(path))


def _sample_checkpoint(path: Path, real: PreparedDataset, n_per_class: int, seed: int, device: str) -> SyntheticSet:
    gen = load_generator(path, device)
    if gen.num_classes == 0:
        raise MedganError(
            "the checkpoint's generator is unconditional; medgan evaluate compares class by class, so "
            "export its samples with labels, or evaluate in Python with evaluate(real, (images, None))",
            path,
        )
    gen.check_trained_on(real.info, "--real", path)
    images, labels, _ = sample_classes(gen, n_per_class=n_per_class, seed=seed)
    return SyntheticSet(np.asarray(images), np.asarray(labels).reshape(-1).astype(np.int64), f"checkpoint:{path}")


def _read_png_export(folder: Path, class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The images of a ``medgan augment --format png`` folder, in manifest order, in the npz layout.

    Returns:
        uint8 ``(N, H, W)`` or ``(N, H, W, 3)`` images and int64 ``(N,)`` labels.

    Raises:
        MedganError: an export of another format, a class that the real data does not have under
            that index, a file outside the folder or unreadable, or images of different shapes.
    """
    from PIL import Image, UnidentifiedImageError

    rows = read_manifest(folder)
    if not rows:
        raise MedganError(f"{MANIFEST_NAME} lists no samples", folder)
    other = next((r.file for r in rows if not r.file.lower().endswith(".png")), None)
    if other is not None:
        raise MedganError(f"evaluate reads PNG and npz exports, and this one holds '{other}'; rerun medgan "
                          "augment with --format npz", folder)
    root = folder.resolve()
    images = []
    for row in rows:
        if row.class_index >= len(class_names) or row.class_name != class_names[row.class_index]:
            known = ", ".join(f"{i}: {c}" for i, c in enumerate(class_names))
            raise MedganError(f"{MANIFEST_NAME}: '{row.file}' is class {row.class_index} '{row.class_name}', "
                              f"which the real data does not have (its classes: {known})", folder)
        file = (folder / row.file).resolve()
        if not file.is_relative_to(root):
            raise MedganError(f"{MANIFEST_NAME} names '{row.file}', outside the folder", folder)
        try:
            with Image.open(file) as im:
                arr = np.asarray(im)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise MedganError(f"not a readable PNG ({exc.__class__.__name__})", file) from None
        if arr.dtype != np.uint8 or (arr.ndim == 3 and arr.shape[2] != 3):
            raise MedganError(f"PNG of shape {arr.shape} and type {arr.dtype}; medgan writes 8-bit grey or RGB",
                              file)
        if images and arr.shape != images[0].shape:
            raise MedganError(f"PNG of shape {arr.shape}, but the first one is {images[0].shape}", file)
        images.append(arr)
    return np.stack(images), np.array([r.class_index for r in rows], dtype=np.int64)


def load_synthetic(
    path: str | Path,
    real: PreparedDataset,
    *,
    n_per_class: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> SyntheticSet:
    """Read a synthetic set laid out like ``real``.

    Args:
        path: what ``medgan augment --out FOLDER`` wrote: the folder of a ``--format npz`` export
            (its ``dataset.npz``) or of a ``--format png`` export (the PNGs its ``manifest.csv``
            lists); an npz with ``train_images`` / ``train_labels`` (other keys are ignored); a
            prepared dataset folder or npz (its train split); a checkpoint ``.pt`` or a run folder
            with ``checkpoints/`` (sampled here through :func:`medgan.synth.sampling.sample_classes`;
            it must have been trained on ``real``).
        real: the real dataset, whose layout (channels, 2D/3D) interprets the npz arrays.
        n_per_class: for a checkpoint, samples per class (default 500); for a file, keep at most
            this many per class (a seeded random subset).
        seed: seeds the sampling or subsetting.
        device: where a checkpoint's generator runs.

    Raises:
        MedganError: unreadable or missing file, missing keys, images that are not uint8, a shape
            that differs from the real images, or a label count that does not match.
    """
    path = Path(path).expanduser()
    if _is_checkpoint(path):
        if not path.exists():
            raise MedganError("checkpoint not found", path)
        return _sample_checkpoint(path, real, n_per_class or 500, seed, device)
    npz = path / "dataset.npz" if path.is_dir() else path
    if path.is_dir() and not npz.is_file() and (path / MANIFEST_NAME).is_file():
        images, labels = _read_png_export(path, real.info.class_names)
        npz = path
    elif not npz.is_file():
        raise MedganError("synthetic set not found (expected what medgan augment wrote: its --out folder, as "
                          "npz or PNG; or an npz, a prepared folder or a checkpoint)", path)
    else:
        try:
            with np.load(npz, allow_pickle=False) as data:
                if "train_images" not in data.files or "train_labels" not in data.files:
                    raise MedganError("npz needs train_images and train_labels (the MedMNIST layout)", npz)
                images, labels = data["train_images"], data["train_labels"]
        except MedganError:
            raise
        except Exception as exc:  # numpy raises several types for a file that is not an npz
            raise MedganError(f"not a readable npz ({exc.__class__.__name__})", npz) from None
    labels = check_split_arrays(images, labels, "train", npz)
    want = real.images["train"].shape[1:]
    if images.shape[1:] != want:
        raise MedganError(
            f"synthetic images have per-image shape {tuple(images.shape[1:])} but the real images "
            f"({describe_images(real.channel_first('train').shape[1:])}) have {tuple(want)}; real and synthetic must "
            "match in dimensionality, channels and size",
            npz,
        )
    if n_per_class is not None:
        keep = _subsample_per_class(labels, n_per_class, seed)
        images, labels = images[keep], labels[keep]
    return SyntheticSet(to_channel_first(images, real.info.channels), labels, str(npz))
