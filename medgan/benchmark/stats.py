"""Test-set metrics, bootstrap confidence intervals and paired comparisons between arms.

**Metrics** of one run (one arm, one seed) on the real test split: accuracy, balanced accuracy
(mean recall over the classes present), macro AUROC (one-vs-rest, averaged over classes), and per
class recall, precision and F1 (precision and F1 are 0 for a class never predicted, as sklearn's
``zero_division=0``). Keys: ``accuracy``, ``balanced_accuracy``, ``auroc_macro``,
``recall/<class>``, ``precision/<class>``, ``f1/<class>`` (class names as :func:`medgan.data.dataset.class_slugs`).

**Confidence intervals** (:func:`summarise`): a two-level, stratified percentile bootstrap. Each of
``B`` replicates

1. resamples the test cases with replacement *within each true class* (so every class keeps its
   test count and every metric stays defined), and
2. resamples the training seeds with replacement (``resample_seeds``; otherwise all seeds are kept),

and the statistic is the metric computed on the resampled cases for each drawn seed's
predictions, averaged over the drawn seeds. The point estimate is the mean over seeds of the
metric on the full test split. So the interval covers test-set sampling and seed-to-seed training
variation, for "a classifier trained this way", not for one particular seed.

**Paired comparisons** (:func:`compare`): the same replicates (the same cases and the same seed
draw) serve both arms, so the difference is paired by test case and by seed; its interval is the
percentile interval of the replicate differences, and its bootstrap p-value is two-sided:
``2 × min(P(d ≤ 0), P(d ≥ 0))`` with the usual ``(1 + count) / (B + 1)`` correction. A paired
t-test over the per-seed test metrics (``scipy.stats.ttest_rel``) is reported beside it;
Wilcoxon's signed-rank test is not used because with 5 seeds its smallest two-sided p-value is
0.0625. A difference is called significant when its interval excludes 0.

**Many arms** (#13). One comparison is declared primary before the results are seen
(:class:`medgan.benchmark.config.PrimaryConfig`; by default the synthetic arm with the best mean
validation balanced accuracy, :func:`choose_on_validation`, against ``real+classical``); its
p-value is used as it is. Every other comparison is secondary, and its bootstrap p-values are
adjusted together with Holm's step-down method (:func:`holm`), which holds the family-wise error
rate at ``alpha`` for any dependence between the tests.

**Detectable lift** (:func:`detectable_lift`): the smallest true difference the test would find
with the given power, ``(z[1 - alpha/2] + z[power]) × SE``, where ``SE² = SD²/S + SE_test²``:
``SD`` is the standard deviation of the per-seed paired differences over the ``S`` seeds (training
randomness on this test set), and ``SE_test`` the binomial standard error of the difference of two
classifiers' metric on this test set (:func:`binomial_se`, doubled in variance as for two
independent classifiers, which overstates it a little for paired ones).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from medgan.data.dataset import class_slugs

__all__ = [
    "Resampler",
    "binomial_se",
    "choose_on_validation",
    "compare",
    "confusion_matrix",
    "detectable_lift",
    "holm",
    "make_resampler",
    "metric_names",
    "metric_values",
    "run_metrics",
    "summarise",
]


def metric_names(class_names: list[str], target: int) -> list[str]:
    """Metric keys in report order: the headline metrics, then the target class first."""
    slugs = class_slugs(class_names)
    per_class = [f"{m}/{slugs[c]}" for c in range(len(class_names)) if c != target for m in ("recall", "precision", "f1")]
    target_keys = [f"{m}/{slugs[target]}" for m in ("recall", "precision", "f1")]
    return ["balanced_accuracy", *target_keys, "accuracy", "auroc_macro", *per_class]


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``(K, K)`` counts, rows = true class, columns = predicted class."""
    return np.bincount(np.asarray(labels) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def _confusions(labels: np.ndarray, pred: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Confusion matrices ``(B, K, K)`` of ``pred`` on every row of case indices ``idx`` ``(B, n)``."""
    b = idx.shape[0]
    flat = np.arange(b)[:, None] * (k * k) + labels[idx] * k + pred[idx]
    return np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k)


def _ovr_auc(scores: np.ndarray, positive: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """One-vs-rest AUROC ``(B,)`` on every row of ``idx`` (Mann-Whitney, ties count one half)."""
    b = idx.shape[0]
    _, group = np.unique(scores, return_inverse=True)
    g = int(group.max()) + 1
    cell = np.arange(b)[:, None] * g + group[idx]  # (B, n): the score group of each drawn case
    pos = positive[idx]
    n_pos = np.bincount(cell[pos], minlength=b * g).reshape(b, g).astype(np.float64)
    n_neg = np.bincount(cell[~pos], minlength=b * g).reshape(b, g).astype(np.float64)
    below = np.cumsum(n_neg, axis=1) - n_neg  # negatives with a strictly lower score
    wins = (n_pos * (below + 0.5 * n_neg)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / (n_pos.sum(1) * n_neg.sum(1))


def metric_values(
    labels: np.ndarray, probas: np.ndarray, idx: np.ndarray, class_names: list[str]
) -> dict[str, np.ndarray]:
    """Every metric for every seed on every resample.

    Args:
        labels: true classes of the test cases ``(n,)``.
        probas: predicted probabilities ``(S, n, K)`` (one row per seed).
        idx: case indices ``(B, n)``; ``np.arange(n)[None]`` gives the plain test-set metrics.
        class_names: names by label index.

    Returns:
        ``{metric: (S, B)}``.
    """
    labels = np.asarray(labels).astype(np.int64)
    probas = np.asarray(probas, dtype=np.float64)
    s, _, k = probas.shape
    slugs = class_slugs(class_names)
    out: dict[str, list[np.ndarray]] = {}

    def put(key: str, value: np.ndarray) -> None:
        out.setdefault(key, []).append(value)

    for seed in range(s):
        conf = _confusions(labels, probas[seed].argmax(1), idx, k).astype(np.float64)  # (B, K, K)
        tp = np.diagonal(conf, axis1=1, axis2=2)
        support, predicted = conf.sum(2), conf.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, tp / support, np.nan)
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
            f1 = np.where(support > 0, f1, np.nan)
            put("accuracy", tp.sum(1) / conf.sum((1, 2)))
            put("balanced_accuracy", np.nanmean(np.where(support > 0, recall, np.nan), axis=1))
        aucs = [
            _ovr_auc(probas[seed, :, c], labels == c, idx)
            for c in range(k)
            if 0 < int((labels == c).sum()) < len(labels)
        ]
        put("auroc_macro", np.mean(aucs, axis=0) if aucs else np.full(idx.shape[0], np.nan))
        for c, slug in enumerate(slugs):
            put(f"recall/{slug}", recall[:, c])
            put(f"precision/{slug}", precision[:, c])
            put(f"f1/{slug}", f1[:, c])
    return {key: np.stack(v) for key, v in out.items()}


def run_metrics(proba: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """The test metrics of one run, with macro AUROC from torchmetrics.

    Args:
        proba: ``(n, K)`` predicted probabilities.
        labels: ``(n,)`` true classes.
        class_names: names by label index.
    """
    import torch
    from torchmetrics.functional.classification import multiclass_auroc

    values = metric_values(labels, np.asarray(proba)[None], np.arange(len(labels))[None], class_names)
    out = {key: float(v[0, 0]) for key, v in values.items()}
    present = np.unique(labels)
    if len(present) == len(class_names):
        out["auroc_macro"] = float(multiclass_auroc(
            torch.as_tensor(proba, dtype=torch.float64), torch.as_tensor(labels, dtype=torch.long),
            num_classes=len(class_names), average="macro", thresholds=None,
        ))
    return out


@dataclass
class Resampler:
    """The bootstrap replicates shared by every arm, so that comparisons are paired.

    Attributes:
        cases: ``(B, n)`` test-case indices, resampled within each true class.
        seeds: ``(B, S)`` seed positions drawn with replacement (or all seeds in every row).
        confidence: the intervals' coverage.
    """

    cases: np.ndarray
    seeds: np.ndarray
    confidence: float = 0.95

    @property
    def resamples(self) -> int:
        return int(self.cases.shape[0])


def make_resampler(
    labels: np.ndarray, n_seeds: int, *, resamples: int = 2000, seed: int = 0,
    resample_seeds: bool = True, confidence: float = 0.95,
) -> Resampler:
    """Draw the replicates: stratified case indices and (optionally) seed draws.

    Args:
        labels: true classes of the test cases ``(n,)``.
        n_seeds: training seeds per arm.
        resamples: replicates ``B``.
        seed: seeds the draw.
        resample_seeds: draw seeds with replacement in every replicate.
        confidence: the intervals' coverage.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    cases = np.empty((resamples, len(labels)), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        cases[:, members] = members[rng.integers(0, len(members), size=(resamples, len(members)))]
    if resample_seeds:
        seeds = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    else:
        seeds = np.tile(np.arange(n_seeds), (resamples, 1))
    return Resampler(cases=cases, seeds=seeds, confidence=confidence)


def _seed_mean(boot: np.ndarray, res: Resampler) -> np.ndarray:
    """``(S, B)`` per-seed replicate values -> ``(B,)`` means over each replicate's drawn seeds."""
    drawn = boot[res.seeds.T, np.arange(boot.shape[1])[None, :]]  # (S, B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates for an absent class
        return np.nanmean(drawn, axis=0)


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return float(lo), float(hi)


def summarise(point: np.ndarray, boot: np.ndarray, res: Resampler) -> dict[str, float | list[float]]:
    """Mean over seeds with its bootstrap interval.

    Args:
        point: ``(S,)`` per-seed test metrics.
        boot: ``(S, B)`` per-seed replicate metrics (from :func:`metric_values` with ``res.cases``).
        res: the replicates.

    Returns:
        ``mean``, ``ci_low``, ``ci_high``, ``sd_seeds`` (standard deviation over seeds, ``ddof=1``)
        and ``per_seed``.
    """
    point = np.asarray(point, dtype=np.float64)
    lo, hi = _interval(_seed_mean(boot, res), res.confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = float(np.nanmean(point)) if np.isfinite(point).any() else math.nan
        sd = float(np.nanstd(point, ddof=1)) if np.isfinite(point).sum() > 1 else math.nan
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "sd_seeds": sd, "per_seed": [float(v) for v in point]}


def _paired_t(a: np.ndarray, b: np.ndarray) -> float:
    d = a - b
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan
    if np.allclose(d, d[0]):
        return 1.0 if d[0] == 0 else 0.0  # no spread: the t statistic is 0 or infinite
    from scipy.stats import ttest_rel

    return float(ttest_rel(a, b, nan_policy="omit").pvalue)


def compare(
    point_a: np.ndarray, boot_a: np.ndarray, point_b: np.ndarray, boot_b: np.ndarray, res: Resampler
) -> dict[str, float | int | bool]:
    """Arm ``a`` minus arm ``b``, paired by seed and test case.

    Args:
        point_a: ``(S,)`` per-seed test metrics of arm a.
        boot_a: ``(S, B)`` its replicate metrics.
        point_b: the same for the baseline arm b (the same seeds, in the same order).
        boot_b: its replicate metrics (the same replicates).
        res: the replicates.

    Returns:
        ``diff`` (mean over seeds of the per-seed differences), ``ci_low``, ``ci_high``,
        ``p_bootstrap`` (two-sided), ``p_ttest`` (paired t-test over seeds; NaN with one seed),
        ``seeds_better`` / ``seeds_worse`` / ``n_seeds`` and ``significant`` (the interval excludes 0).
    """
    point_a, point_b = np.asarray(point_a, np.float64), np.asarray(point_b, np.float64)
    d = _seed_mean(boot_a - boot_b, res)
    d = d[np.isfinite(d)]
    lo, hi = _interval(d, res.confidence)
    n = d.size
    p_boot = min(1.0, 2 * min(1 + int((d <= 0).sum()), 1 + int((d >= 0).sum())) / (n + 1)) if n else math.nan
    per_seed = point_a - point_b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        diff = float(np.nanmean(per_seed)) if np.isfinite(per_seed).any() else math.nan
    return {
        "diff": diff,
        "ci_low": lo,
        "ci_high": hi,
        "p_bootstrap": p_boot,
        "p_ttest": _paired_t(point_a, point_b),
        "seeds_better": int((per_seed > 0).sum()),
        "seeds_worse": int((per_seed < 0).sum()),
        "n_seeds": len(per_seed),
        "significant": bool(np.isfinite(lo) and (lo > 0 or hi < 0)),
    }


def holm(pvalues: list[float] | np.ndarray) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaNs are left out of the family and stay NaN).

    Sorted ascending, the ``i``-th smallest of ``m`` p-values (``i = 1..m``) becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``: the running maximum keeps the adjusted values in the
    order of the raw ones.

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.005])
        [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * float(p[i])))
        out[i] = running
    return [round(float(v), 12) if math.isfinite(v) else math.nan for v in out]


def choose_on_validation(scores: dict[str, list[float]]) -> str | None:
    """The key with the highest mean validation score (the first of equals, in the given order), or None."""
    best, best_mean = None, -math.inf
    for key, values in scores.items():
        finite = [v for v in values if math.isfinite(v)]
        mean = float(np.mean(finite)) if finite else -math.inf
        if best is None or mean > best_mean:
            best, best_mean = key, mean
    return best


def binomial_se(rates: list[float], counts: list[int]) -> float:
    """The binomial standard error of the mean of per-class rates on a test set.

    ``sqrt(sum_c p_c (1 - p_c) / n_c) / K``: for one class, the standard error of its recall on its
    ``n`` test images; for all classes, that of balanced accuracy. A rate of exactly 0 or 1 is taken
    as ``1 / (2 n)`` from the edge, so that a perfect score does not claim a zero standard error.
    """
    terms = [q * (1 - q) / n for p, n in zip(rates, counts, strict=True) if n > 0 and math.isfinite(p)
             for q in [min(max(p, 0.5 / n), 1 - 0.5 / n)]]
    return math.sqrt(sum(terms)) / len(terms) if terms else math.nan


def detectable_lift(per_seed_diff: np.ndarray | list[float], test_se: float, *, alpha: float = 0.05,
                    power: float = 0.8) -> dict[str, float]:
    """The smallest true difference a paired comparison on this test set and these seeds would detect.

    Args:
        per_seed_diff: ``(S,)`` per-seed differences of the metric (arm minus baseline).
        test_se: the binomial standard error of *one* classifier's metric on this test set
            (:func:`binomial_se`); the difference of two gets ``sqrt(2)`` times it.
        alpha: the two-sided significance level.
        power: the wanted power.

    Returns:
        ``lift`` (``(z[1 - alpha/2] + z[power]) × SE``), ``se``, ``se_seeds`` (``SD / sqrt(S)``; NaN
        with fewer than two seeds, when only the test-set part is counted), ``se_test``
        (``sqrt(2) × test_se``), ``n_seeds``, ``alpha`` and ``power``.
    """
    from scipy.stats import norm

    d = np.asarray(per_seed_diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    se_seeds = float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    se_test = math.sqrt(2.0) * test_se
    parts = [x for x in (se_seeds, se_test) if math.isfinite(x)]
    se = math.sqrt(sum(x * x for x in parts)) if parts else math.nan
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    return {"lift": z * se, "se": se, "se_seeds": se_seeds, "se_test": se_test, "n_seeds": float(len(d)),
            "alpha": alpha, "power": power}
