"""Classifier two-sample test (C2ST): can a small CNN tell synthetic images from real ones?

A fresh, seeded CNN is trained to separate real from synthetic images on balanced sets, k-fold
cross-validated; its out-of-fold ROC AUC is the score (Lopez-Paz & Oquab 2017). 0.5 means the
CNN found no difference; 1.0 means every synthetic image is recognisable. Unlike a distance in a
feature space that was trained to separate the classes (the domain FID), the CNN sees the pixels,
so streaks, noise, blur, blocking, banding and wrong intensity distributions are all visible to it.

The same test run real-vs-real (train split against held-out real images) is the floor: it shows
what the score is when there is no difference. A cross-validated AUC on a few hundred images
scatters around 0.5 by a few hundredths, and can dip below it.

Works for 2D ``(N, C, H, W)`` and 3D ``(N, C, D, H, W)`` uint8 arrays.

Example:
    >>> c2st(real_u8, fake_u8, folds=5, seed=0)["auc"]
    0.63
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from torch import nn

from medgan.data.scaling import to_model_input
from medgan.data.splits import TWIN_RMS, near_duplicate_groups
from medgan.networks.layers import high_pass

__all__ = [
    "C2ST_VIEWS", "C2STConfig", "C2STRanking", "TwoSampleCNN", "c2st", "c2st_metrics", "c2st_ranking", "c2st_views",
    "fit_two_sample_cnn", "matched_proportions", "two_sample_logits",
]

C2ST_VIEWS = ("image", "residual", "histogram")
"""What the two-sample CNN reads: the image, its high-pass residual (fine texture), its grey-level histogram."""


@dataclass(frozen=True)
class C2STConfig:
    """How the two-sample CNN is trained.

    Args:
        folds: cross-validation folds (each image is scored once, by a net that did not see it).
        epochs: passes over each fold's training part, at least.
        min_steps: at least this many optimisation steps per fold (more epochs on small sets): an
            under-trained CNN scores every pair of sets near 0.5 and makes a bad generator look good.
        max_per_side: at most this many images per side (seeded subsample); ``None`` = all.
        width: channels of the CNN's first layer (doubles twice).
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seeds the subsample, the folds and every fold's weights and shuffling.
        device: where to train.
        volume_stride: the first convolution's stride on volumes (3D); images (2D) always keep
            full resolution. 2 by default: at full resolution a 28³ batch costs 7 times the arithmetic
            (a 2-fold test took 1354 s against 504 s on one shared CPU thread); every voxel still
            falls inside a 3³ window of the first layer, and the histogram branch counts every voxel.
            1 reads volumes at full resolution, for a GPU.
        views: which of :data:`C2ST_VIEWS` the CNN reads (all three by default). One view alone
            says *what* gives the samples away (:func:`c2st_views`): fine texture, structure or grey levels.
        twin_rms: near-duplicates, images within this root-mean-square difference in grey levels
            (0-255), are kept in one fold (:func:`medgan.data.splits.near_duplicate_groups`), so
            that no image is scored by a net that trained on its twin. BreastMNIST's train split holds the same scan twice
            over and over (a third of its benign images have a twin within 10 levels, where two
            different scans lie 20-40 apart); split across folds, the net recognises a real image's
            twin and calls it real, whatever the generator does: the benign C2ST of five GANs read
            0.769 with plain folds and 0.703 grouped, and the real-vs-real floor rose from 0.427 to
            0.475. Only the real side's twins are grouped (both sides for the floor, ``both_real``):
            a synthetic set's duplicates are a collapse the test must see. ``None``: plain
            stratified folds. A set without twins gets the same folds either way.
    """

    folds: int = 5
    epochs: int = 15
    min_steps: int = 300
    max_per_side: int | None = 1000
    width: int = 16
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    volume_stride: int = 2
    views: tuple[str, ...] = C2ST_VIEWS
    twin_rms: float | None = TWIN_RMS

    def __post_init__(self) -> None:
        unknown = [v for v in self.views if v not in C2ST_VIEWS]
        if unknown or not self.views or len(set(self.views)) != len(self.views):
            raise ValueError(f"views must be distinct names from {', '.join(C2ST_VIEWS)}, got {list(self.views)}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        if min(self.epochs, self.batch_size, self.width, self.volume_stride) < 1 or self.min_steps < 0:
            raise ValueError("epochs, batch_size, width and volume_stride must be >= 1, min_steps >= 0")
        if self.max_per_side is not None and self.max_per_side < self.folds:
            raise ValueError(f"max_per_side must be >= folds ({self.folds}), got {self.max_per_side}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.twin_rms is not None and not (self.twin_rms > 0 and np.isfinite(self.twin_rms)):
            raise ValueError(f"twin_rms must be a positive number of grey levels or None, got {self.twin_rms}")


class TwoSampleCNN(nn.Module):
    """Three strided convolutions plus an intensity histogram, into one logit.

    Small on purpose: it must not memorise a few hundred images, and it must train in seconds on a
    CPU. It reads the image beside its high-pass residual, and the first layer keeps full resolution
    in 2D (``first_stride``; volumes are strided by :attr:`C2STConfig.volume_stride`), so pixel-level
    artefacts (noise, stripes, blocks) reach the pooled features; the max-pool keeps a localised
    artefact visible. A convolution
    cannot easily see *which* grey levels occur, so a second branch reads each image's 256-bin
    histogram: banding (too few levels) and a wrong value distribution (grey voxels where the real
    volumes are binary masks) are visible there at once.

    Args:
        in_channels: image channels.
        spatial_dims: 2 or 3.
        width: channels of the first layer (then ×2, ×4).
        first_stride: the first layer's stride (1: full resolution).
        views: what it reads, from :data:`C2ST_VIEWS` (all by default); a branch with nothing to read is left out.
    """

    def __init__(self, in_channels: int = 1, spatial_dims: int = 2, width: int = 16, first_stride: int = 1,
                 views: tuple[str, ...] = C2ST_VIEWS) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.image_views = [v for v in ("image", "residual") if v in views]
        self.features: nn.Module | None = None
        if self.image_views:
            self.features = nn.Sequential(
                conv(len(self.image_views) * in_channels, width, 3, stride=first_stride, padding=1),
                nn.LeakyReLU(0.2),
                conv(width, 2 * width, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                conv(2 * width, 4 * width, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
            )
        self.histogram: nn.Module | None = None
        if "histogram" in views:
            self.histogram = nn.Sequential(nn.Linear(in_channels * 256, 4 * width), nn.LeakyReLU(0.2))
        self.head = nn.Linear((8 * width if self.features is not None else 0)
                              + (4 * width if self.histogram is not None else 0), 1)

    @staticmethod
    def intensity_histogram(x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` in ``[-1, 1]`` -> ``(B, C * 256)``: square roots of the grey-level frequencies."""
        levels = ((x.detach() + 1) * 127.5).round().clamp(0, 255).long().flatten(2)  # (B, C, voxels)
        counts = torch.zeros(*levels.shape[:2], 256, device=x.device).scatter_add_(
            2, levels, torch.ones_like(levels, dtype=torch.float32)
        )
        return (counts / levels.shape[2]).sqrt().flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.features is not None:
            # The image and its high-pass residual (image minus its binomial blur, ×4), as in
            # steganalysis: fine texture (noise, stripes, block edges) is then a large signal, not a small one.
            inputs = [x if v == "image" else high_pass(x) for v in self.image_views]
            h = self.features(torch.cat(inputs, dim=1)).flatten(2)  # (B, 4w, voxels)
            parts += [h.mean(2), h.amax(2)]
        if self.histogram is not None:
            parts.append(self.histogram(self.intensity_histogram(x)))  # (B, 4w)
        return self.head(torch.cat(parts, dim=1)).squeeze(1)  # (B,)


@dataclass(frozen=True)
class C2STRanking:
    """Every tested image's out-of-fold score: which images gave a synthetic set away, and which real ones it keyed on.

    A score is the two-sample CNN's logit that the image is real, from the fold whose net did not
    see it. The synthetic images it scores lowest are the ones most easily told apart; the real ones
    it scores highest show what the test takes as the mark of a real image (on BreastMNIST's benign
    class: small, sharp, round cysts, which the generator rarely draws). Looking at both is how a
    score of 0.76 becomes a defect one can name.

    Attributes:
        real_index: indices into the real set of the images tested (a balanced subset).
        real_scores: their scores, in that order.
        synthetic_index: indices into the synthetic set of the images tested.
        synthetic_scores: their scores.
    """

    real_index: np.ndarray
    real_scores: np.ndarray
    synthetic_index: np.ndarray
    synthetic_scores: np.ndarray

    def synthetic_extremes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices into the synthetic set: the ``n`` most easily told apart, then the ``n`` hardest, each worst first."""
        order = np.argsort(self.synthetic_scores, kind="stable")
        return self.synthetic_index[order[:n]], self.synthetic_index[order[::-1][:n]]

    def real_extremes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices into the real set: the ``n`` the CNN finds most real, then the ``n`` it finds least real."""
        order = np.argsort(-self.real_scores, kind="stable")
        return self.real_index[order[:n]], self.real_index[order[::-1][:n]]


def _folds(x: np.ndarray, y: np.ndarray, cfg: C2STConfig,
           both_real: bool) -> tuple[list[tuple[np.ndarray, np.ndarray]], float | None]:
    """The cross-validation folds, near-duplicates kept together, and the share of real images with a twin
    (None when twins are not looked for).

    Only the real side's twins are grouped unless both sides are real: two identical synthetic images
    are the generator's doing (a collapse), which the test must be free to see.
    """
    plain = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    if cfg.twin_rms is None:
        return list(plain.split(x, y)), None
    real = y > 0.5
    if both_real:
        groups = near_duplicate_groups(x, cfg.twin_rms)
    else:
        groups = np.arange(len(x))
        groups[real] = len(x) + near_duplicate_groups(x[real], cfg.twin_rms)
    sizes = np.bincount(groups)
    twinned = sizes[groups] > 1
    if twinned.any() and sizes.max() <= real.sum() / cfg.folds:
        split = StratifiedGroupKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(x, y, groups)
    else:  # no twins (the same folds as without the check), or one scan so common it would fill a fold
        split = plain.split(x, y)
    return list(split), float(twinned[real].mean())


def _balanced(a: np.ndarray, b: np.ndarray, cap: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of equal-sized seeded subsets of ``a`` and ``b`` (at most ``cap`` each)."""
    n = min(len(a), len(b)) if cap is None else min(len(a), len(b), cap)
    pick = lambda x: np.sort(rng.choice(len(x), n, replace=False))  # noqa: E731
    return pick(a), pick(b)


def _check(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (4, 5):
        raise ValueError(f"{name} must be uint8 (N, C, H, W) or (N, C, D, H, W), got {x.dtype} {x.shape}")
    return x


def c2st(real: np.ndarray, synthetic: np.ndarray, config: C2STConfig | None = None, *,
         both_real: bool = False) -> dict[str, float]:
    """Cross-validated real-vs-synthetic ROC AUC of a small CNN.

    Args:
        real: uint8 ``(N, C, *spatial)``.
        synthetic: uint8 ``(M, C, *spatial)``, the same image shape.
        config: training settings (:class:`C2STConfig`; the defaults when None).
        both_real: the second set is real too (the real-vs-real floor): near-duplicates are then
            grouped across the two sets as well, since a held-out image may be a train image's twin.

    Returns:
        ``auc`` (pooled over the out-of-fold scores), ``auc_mean`` and ``auc_std`` over the folds,
        ``accuracy`` (out-of-fold, threshold 0.5), ``n_per_side`` and, unless ``twin_rms`` is None,
        ``twin_share`` (the share of the tested real images with a near-duplicate in the test, kept
        in its fold: :attr:`C2STConfig.twin_rms`).

    Raises:
        ValueError: for non-uint8 input, mismatched shapes, or fewer images per side than folds.
    """
    return dict(_memoised(real, synthetic, config, both_real)[0])


def c2st_ranking(real: np.ndarray, synthetic: np.ndarray, config: C2STConfig | None = None, *,
                 both_real: bool = False) -> C2STRanking:
    """The same test as :func:`c2st` (the same arguments; run once for both), as a score per image.

    Returns:
        A :class:`C2STRanking`: which synthetic images are most easily told apart, and which real
        images the test finds most real.
    """
    return _memoised(real, synthetic, config, both_real)[1]


def _memoised(real: np.ndarray, synthetic: np.ndarray, config: C2STConfig | None,
              both_real: bool) -> tuple[dict[str, float], C2STRanking]:
    cfg = config or C2STConfig()
    real, synthetic = _check("real", real), _check("synthetic", synthetic)
    key = (_digest(real), _digest(synthetic), dataclasses.astuple(cfg), both_real)
    if key not in _MEMO:
        _MEMO[key] = _c2st(real, synthetic, cfg, both_real)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return _MEMO[key]


_MEMO: collections.OrderedDict[tuple[Any, ...], tuple[dict[str, float], C2STRanking]] = collections.OrderedDict()
_MEMO_SIZE = 32
"""In-process results of :func:`c2st` by input content and config: the test is a seeded, pure
function of them, and the real-vs-real floor (train against held-out) is the same for every
generator measured against one dataset (a sweep's report measures one per fraction)."""


def _digest(x: np.ndarray) -> tuple[str, tuple[int, ...]]:
    return hashlib.sha256(np.ascontiguousarray(x).data).hexdigest(), tuple(x.shape)


def _c2st(real: np.ndarray, synthetic: np.ndarray, cfg: C2STConfig,
          both_real: bool) -> tuple[dict[str, float], C2STRanking]:
    if real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(f"real images are {real.shape[1:]}, synthetic images {synthetic.shape[1:]}")
    if min(len(real), len(synthetic)) < cfg.folds:
        raise ValueError(f"C2ST needs at least {cfg.folds} images per side, got {len(real)} and {len(synthetic)}")
    rng = np.random.default_rng(cfg.seed)
    ia, ib = _balanced(real, synthetic, cfg.max_per_side, rng)
    a, b = real[ia], synthetic[ib]
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))]).astype(np.float32)

    scores = np.zeros(len(x))
    fold_aucs = []
    folds, twins = _folds(x, y, cfg, both_real)
    for k, (tr, te) in enumerate(folds):
        net = fit_two_sample_cnn(x[tr], y[tr], cfg, seed=cfg.seed * 1000 + k)
        scores[te] = two_sample_logits(net, x[te], cfg.device)
        fold_aucs.append(roc_auc_score(y[te], scores[te]))
    result = {
        "auc": float(roc_auc_score(y, scores)),
        "auc_mean": float(np.mean(fold_aucs)),
        "auc_std": float(np.std(fold_aucs)),
        "accuracy": float(((scores > 0) == (y > 0.5)).mean()),
        "n_per_side": float(len(a)),
    }
    if twins is not None:
        result["twin_share"] = twins
    return result, C2STRanking(ia, scores[: len(a)].copy(), ib, scores[len(a):].copy())


def fit_two_sample_cnn(x: np.ndarray, y: np.ndarray, config: C2STConfig | None = None, *, seed: int = 0,
                       real_weight: float = 1.0) -> TwoSampleCNN:
    """A fresh :class:`TwoSampleCNN` trained to call the ``y == 1`` images real and the others not.

    The C2ST trains one per fold; ``benchmarks/gan_quality.py --realism`` trains one as a critic of a
    generator's draws (a set it picks must then be judged by other networks: docs/metrics.md). The
    global torch RNG is left as it was.

    Args:
        x: uint8 ``(N, C, *spatial)``.
        y: ``(N,)`` 1.0 for real, 0.0 for synthetic.
        config: the training settings (epochs, ``min_steps``, width, views, ...; :class:`C2STConfig`).
        seed: seeds the weights and the shuffling.
        real_weight: the loss weight of a real image (``synthetic / real`` balances unequal sides).

    Returns:
        The trained net, in eval mode, on ``config.device``.
    """
    cfg = config or C2STConfig()
    device = torch.device(cfg.device)
    spatial_dims = x.ndim - 2
    fork = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(seed)
        shuffle = torch.Generator().manual_seed(seed)
        stride = cfg.volume_stride if spatial_dims == 3 else 1
        net = TwoSampleCNN(x.shape[1], spatial_dims, cfg.width, first_stride=stride, views=cfg.views).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        x_tr, y_tr = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.float32))
        weight = None if real_weight == 1.0 else torch.tensor(real_weight, device=device)
        epochs = max(cfg.epochs, math.ceil(cfg.min_steps / math.ceil(len(x) / cfg.batch_size)))
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=shuffle).split(cfg.batch_size):
                loss = F.binary_cross_entropy_with_logits(
                    net(to_model_input(x_tr[idx]).to(device)), y_tr[idx].to(device), pos_weight=weight
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval()


def two_sample_logits(net: TwoSampleCNN, x: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """``net``'s logit that each image of uint8 ``x`` is real, in batches of 256, as float64 ``(N,)``."""
    with torch.no_grad():
        out = [net(to_model_input(torch.from_numpy(x[i : i + 256])).to(device)).cpu() for i in range(0, len(x), 256)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def matched_proportions(
    real_labels: np.ndarray, synthetic_labels: np.ndarray, cap: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of equal-sized subsets of both sides, each in the real set's class proportions.

    The largest total ``T`` (at most ``cap``) such that every class ``c`` can give
    ``round(T * p_c)`` images on both sides, ``p_c`` being its share of the real labels.

    Returns:
        ``(real indices, synthetic indices)``, sorted, of equal length.
    """
    real_labels = np.asarray(real_labels).reshape(-1)
    synthetic_labels = np.asarray(synthetic_labels).reshape(-1)
    classes, real_counts = np.unique(real_labels, return_counts=True)
    share = real_counts / real_counts.sum()
    syn_counts = np.array([(synthetic_labels == c).sum() for c in classes])
    total = int(min(np.min(np.minimum(real_counts, syn_counts) / share), cap or np.inf, len(real_labels)))
    per_class = np.floor(total * share).astype(int)
    rng = np.random.default_rng(seed)
    pick = lambda labels, c, k: rng.choice(np.flatnonzero(labels == c), k, replace=False)  # noqa: E731
    keep_real = np.concatenate([pick(real_labels, c, k) for c, k in zip(classes, per_class, strict=True)])
    keep_syn = np.concatenate([pick(synthetic_labels, c, k) for c, k in zip(classes, per_class, strict=True)])
    return np.sort(keep_real), np.sort(keep_syn)


def c2st_metrics(
    real: np.ndarray,
    real_labels: np.ndarray,
    synthetic: np.ndarray,
    synthetic_labels: np.ndarray | None,
    class_slugs: list[str],
    heldout: np.ndarray | None = None,
    config: C2STConfig | None = None,
) -> dict[str, float]:
    """C2ST overall, per class, and the real-vs-real floor, as flat metric keys.

    Args:
        real: the real reference set (train split), uint8 ``(N, C, *spatial)``.
        real_labels: its labels ``(N,)``.
        synthetic: uint8 ``(M, C, *spatial)``.
        synthetic_labels: ``(M,)``, or None (no per-class tests).
        class_slugs: key-safe class names by label index.
        heldout: held-out real images (val and test) for the floor; None skips it.
        config: training settings.

    Returns:
        ``c2st/auc``, ``c2st/auc_std`` (over the folds), ``c2st/n_per_side`` (with labels, both
        sides in the real class proportions, :func:`matched_proportions`), ``c2st/twin_share`` (the
        share of the tested real images with a near-duplicate, kept in its fold); per class
        ``c2st/auc/class_<slug>`` (and ``_std``) for classes with at least ``folds`` images on
        both sides; and ``c2st/real_vs_real_auc`` (and ``_std``) when ``heldout`` is given.
    """
    cfg = config or C2STConfig()
    out: dict[str, float] = {}
    if synthetic_labels is not None:
        # Overall, both sides in the real class proportions: otherwise the CNN could score by
        # telling the class mix apart (e.g. 500 per class against BreastMNIST's 147 / 399).
        keep_real, keep_syn = matched_proportions(real_labels, synthetic_labels, cfg.max_per_side, cfg.seed)
        overall = c2st(real[keep_real], synthetic[keep_syn], cfg)
    else:
        overall = c2st(real, synthetic, cfg)
    out["c2st/auc"], out["c2st/auc_std"], out["c2st/n_per_side"] = overall["auc"], overall["auc_std"], overall["n_per_side"]
    if "twin_share" in overall:
        out["c2st/twin_share"] = overall["twin_share"]
    if synthetic_labels is not None:
        real_labels = np.asarray(real_labels).reshape(-1)
        synthetic_labels = np.asarray(synthetic_labels).reshape(-1)
        for c, slug in enumerate(class_slugs):
            r, s = real[real_labels == c], synthetic[synthetic_labels == c]
            if min(len(r), len(s)) < cfg.folds:
                continue
            res = c2st(r, s, cfg)
            out[f"c2st/auc/class_{slug}"], out[f"c2st/auc_std/class_{slug}"] = res["auc"], res["auc_std"]
    if heldout is not None and len(heldout) >= cfg.folds:
        floor = c2st(real, heldout, cfg, both_real=True)
        out["c2st/real_vs_real_auc"], out["c2st/real_vs_real_auc_std"] = floor["auc"], floor["auc_std"]
    return out


def c2st_views(real: np.ndarray, synthetic: np.ndarray, config: C2STConfig | None = None) -> dict[str, float]:
    """The C2ST once per view alone: which of image, fine texture and grey levels gives the samples away.

    A generator scored 1.0 overall is not fixed by knowing that; knowing that its high-pass
    residual alone scores 1.0 while its histogram scores 0.6 says where to look (its texture is too
    smooth, its grey levels are right).

    Args:
        real: uint8 ``(N, C, *spatial)``.
        synthetic: uint8, the same image shape.
        config: training settings; its ``views`` are ignored.

    Returns:
        ``c2st/view_<name>`` (the pooled out-of-fold AUC) for each of :data:`C2ST_VIEWS`.
    """
    cfg = config or C2STConfig()
    return {f"c2st/view_{v}": c2st(real, synthetic, dataclasses.replace(cfg, views=(v,)))["auc"] for v in C2ST_VIEWS}
