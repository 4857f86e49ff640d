"""The numbers behind the report, one fraction at a time: intervals, comparisons, the primary one, power.

For every fraction of the data-scarcity sweep, :func:`analyse_fraction` takes the finished runs of
its arms and seeds and computes what the report says about them:

- per arm, every metric's mean over seeds with its bootstrap interval
  (:func:`medgan.benchmark.stats.summarise`);
- the paired comparisons of :data:`COMPARISONS` whose two arms ran, plus the ratio sweep's variants
  against the primary baseline (:func:`medgan.benchmark.stats.compare`);
- the **primary** comparison, declared in the config (:class:`medgan.benchmark.config.PrimaryConfig`):
  by default the arm, among those that train on real and synthetic images, with the best mean
  validation balanced accuracy, against ``real+classical``, on the target class's recall. Its
  p-value stands as it is; every other (comparison, headline metric) pair is secondary and gets a
  Holm-adjusted p-value (:func:`medgan.benchmark.stats.holm`) in ``p_holm``;
- the smallest lift the primary comparison could detect (:func:`medgan.benchmark.stats.detectable_lift`);
- the budget as it ran: every run's steps and selected step, and the runs whose selected step was
  their last (they may have wanted more steps);
- the curated arm's kept share per class.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgan.benchmark.arms import adds_synthetic
from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.plan import arm_label, parse_arm_label
from medgan.benchmark.stats import (
    binomial_se,
    choose_on_validation,
    compare,
    detectable_lift,
    holm,
    make_resampler,
    metric_names,
    metric_values,
    summarise,
)
from medgan.data.dataset import PreparedDataset, class_slugs
from medgan.errors import MedganError

__all__ = ["COMPARISONS", "FractionRuns", "analyse_fraction", "fraction_runs", "primary_key"]

COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("real+synthetic", "real", "Adding synthetic data to the real images"),
    ("real+classical", "real", "Classical augmentation"),
    ("real+classical+synthetic", "real", "Classical augmentation plus synthetic data"),
    ("real+classical+synthetic", "real+classical", "Adding synthetic data on top of classical augmentation"),
    ("real+synthetic", "real+classical", "Synthetic data instead of classical augmentation"),
    ("synthetic-only", "real", "Training on synthetic images only, testing on real ones"),
    ("real+oversample", "real", "Repeating real images (the oversampling control)"),
    ("real+synthetic", "real+oversample", "Synthetic images instead of repeated real ones"),
    ("real+curated-synthetic", "real", "Adding curated synthetic data"),
    ("real+curated-synthetic", "real+synthetic", "Curating the synthetic images"),
    ("synthetic-pretrain", "real", "Pretraining on synthetic images, then fine-tuning on the real ones"),
    (
        "synthetic-pretrain+classical",
        "real+classical",
        "Synthetic pretraining on top of classical augmentation",
    ),
)
"""``(arm, baseline, phrase)``: the paired differences reported, when both arms ran."""


@dataclass
class FractionRuns:
    """The finished runs of one fraction.

    Attributes:
        fraction: the share of the train split.
        arms: arm names (ratio-sweep variants as ``<arm>-x<r>``), in report order.
        seeds: the seeds every arm ran.
        runs: ``{(arm name, seed): run record}``.
    """

    fraction: float
    arms: list[str]
    seeds: list[int]
    runs: dict[tuple[str, int], dict[str, Any]]


def fraction_runs(cfg: BenchmarkConfig, runs: dict[tuple[str, int], dict[str, Any]]) -> list[FractionRuns]:
    """Split ``{(arm label, seed): record}`` by fraction, in the order of ``cfg.fractions``.

    Within a fraction the arms are the config's, then the ratio sweep's variants found in ``runs``;
    an arm name drops the fraction (``real+synthetic@0.1`` is ``real+synthetic`` of fraction 0.1).
    """
    out = []
    for f in cfg.fractions:
        seeds = list(range(cfg.seeds_at(f)))
        found = {parse_arm_label(label) for label, _ in runs}
        variants = sorted(
            (r for r in found if r.fraction == f and r.ratio is not None),
            key=lambda r: (r.arm, r.ratio or 0.0),
        )
        names = list(cfg.arms) + [arm_label(r.arm, 1.0, r.ratio) for r in variants]
        picked = {(name, s): runs[(_at(name, f), s)] for name in names for s in seeds}
        out.append(FractionRuns(f, names, seeds, picked))
    return out


def _is_variant(name: str) -> bool:
    """Whether arm name ``name`` is a ratio-sweep variant (``<arm>-x<r>``)."""
    return parse_arm_label(name).ratio is not None


def _at(name: str, fraction: float) -> str:
    """The run label of arm name ``name`` (perhaps a ratio variant) at ``fraction``."""
    run = parse_arm_label(name)
    return arm_label(run.arm, fraction, run.ratio)


def primary_key(cfg: BenchmarkConfig, names: list[str], target: int) -> str:
    """The metric key of the primary comparison (``recall/<target slug>`` or ``balanced_accuracy``)."""
    if cfg.primary.metric == "balanced_accuracy":
        return "balanced_accuracy"
    return f"recall/{class_slugs(names)[target]}"


def _primary_arms(cfg: BenchmarkConfig, fr: FractionRuns) -> tuple[str | None, str, str]:
    """``(arm, baseline, how the arm was chosen)`` of the primary comparison at this fraction."""
    baseline = cfg.primary.baseline if cfg.primary.baseline in fr.arms else "real"
    if cfg.primary.arm != "best":
        return (cfg.primary.arm if cfg.primary.arm in fr.arms else None), baseline, "declared in the config"
    candidates = [a for a in fr.arms if adds_synthetic(a) and not _is_variant(a)]
    val = {a: [float(fr.runs[(a, s)]["val_balanced_accuracy"]) for s in fr.seeds] for a in candidates}
    return choose_on_validation(val), baseline, "best mean validation balanced accuracy"


def analyse_fraction(
    cfg: BenchmarkConfig, ds: PreparedDataset, fr: FractionRuns, target: int, test_mask: np.ndarray | None = None
) -> dict[str, Any]:
    """Every number the report gives for one fraction (see the module doc).

    Args:
        cfg: the benchmark's config.
        ds: the dataset the runs were tested on.
        fr: the fraction's finished runs.
        target: the target class's index.
        test_mask: boolean over the test split: score only these test images (the report's twin-free
            part, the images without a near-duplicate in the train split); None = all of them.

    Raises:
        MedganError: a run tested on other test labels than the dataset's.
    """
    names = list(ds.info.class_names)
    labels = ds.labels["test"]
    want = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    for (arm, seed), run in fr.runs.items():
        if run["test_labels_sha256"] != want:
            raise MedganError(f"run {arm}:{seed} was tested on other test labels than {ds.info.name}'s")
    part = np.ones(len(labels), dtype=bool) if test_mask is None else np.asarray(test_mask, dtype=bool)
    if part.shape != labels.shape:
        raise ValueError(f"test_mask has shape {part.shape}, the test split {labels.shape}")
    labels = labels[part]

    # Section. Intervals per arm, on the same replicates for every arm (so comparisons are paired).
    res = make_resampler(
        labels,
        len(fr.seeds),
        resamples=cfg.bootstrap.resamples,
        seed=cfg.bootstrap.seed,
        resample_seeds=cfg.bootstrap.resample_seeds,
        confidence=cfg.bootstrap.confidence,
    )
    keys = metric_names(names, target)
    point: dict[str, dict[str, np.ndarray]] = {}
    boot: dict[str, dict[str, np.ndarray]] = {}
    for arm in fr.arms:
        probas = np.stack([np.asarray(fr.runs[(arm, s)]["test_proba"], dtype=np.float64)[part] for s in fr.seeds])
        point[arm] = {
            k: v[:, 0] for k, v in metric_values(labels, probas, np.arange(len(labels))[None], names).items()
        }
        boot[arm] = metric_values(labels, probas, res.cases, names)
    summaries: dict[str, dict[str, Any]] = {
        arm: {k: summarise(point[arm][k], boot[arm][k], res) for k in keys} for arm in fr.arms
    }

    # Section. Comparisons: the fixed list, the ratio sweep, and the primary one.
    p_arm, p_base, chosen = _primary_arms(cfg, fr)
    pairs = [(a, b, phrase) for a, b, phrase in COMPARISONS if a in fr.arms and b in fr.arms]
    for arm in (a for a in fr.arms if _is_variant(a)):
        variant = parse_arm_label(arm)
        pairs.append(
            (arm, p_base, f"{variant.arm} with {variant.ratio:g}× the real count of synthetic images")
        )
    if p_arm is not None and not any((a, b) == (p_arm, p_base) for a, b, _ in pairs):
        pairs.insert(0, (p_arm, p_base, f"{p_arm} instead of {p_base}"))
    comparisons: list[dict[str, Any]] = []
    for arm, base, phrase in pairs:
        comparisons.append(
            {
                "arm": arm,
                "baseline": base,
                "phrase": phrase,
                "primary": (arm, base) == (p_arm, p_base),
                "metrics": {
                    k: compare(point[arm][k], boot[arm][k], point[base][k], boot[base][k], res) for k in keys
                },
            }
        )

    # Section. Holm over every secondary (comparison, headline metric) pair.
    p_key = primary_key(cfg, names, target)
    headline = [f"recall/{class_slugs(names)[target]}", "balanced_accuracy"]
    family = [(c, k) for c in comparisons for k in headline if not (c["primary"] and k == p_key)]
    for (c, k), adjusted in zip(
        family, holm([c["metrics"][k]["p_bootstrap"] for c, k in family]), strict=True
    ):
        c["metrics"][k]["p_holm"] = adjusted
    primary = next((c for c in comparisons if c["primary"]), None)
    if primary is not None:  # not adjusted: pre-declared
        primary["metrics"][p_key]["p_holm"] = primary["metrics"][p_key]["p_bootstrap"]

    # Section. Power: the smallest lift of the primary metric this test set and these seeds could detect.
    power: dict[str, Any] | None = None
    if primary is not None:
        counts = np.bincount(labels, minlength=len(names))[: len(names)].tolist()
        base_summary = summaries[p_base]
        if p_key == "balanced_accuracy":
            slugs = class_slugs(names)
            test_se = binomial_se([base_summary[f"recall/{s}"]["mean"] for s in slugs], counts)
        else:
            test_se = binomial_se([base_summary[p_key]["mean"]], [counts[target]])
        diff = point[primary["arm"]][p_key] - point[p_base][p_key]
        power = {
            **detectable_lift(diff, test_se, alpha=1 - cfg.bootstrap.confidence, power=cfg.primary.power),
            "metric": p_key,
            "n_test": counts[target] if p_key != "balanced_accuracy" else int(sum(counts)),
        }

    # Section. The budget as it ran, and curation.
    steps = {arm: [int(fr.runs[(arm, s)].get("steps", 0)) for s in fr.seeds] for arm in fr.arms}
    selected = {arm: [int(fr.runs[(arm, s)].get("selected_step", 0)) for s in fr.seeds] for arm in fr.arms}
    last = [f"{arm}:{s}" for arm in fr.arms for s in fr.seeds if fr.runs[(arm, s)].get("selected_last")]
    curation: dict[str, dict[str, Any]] = {}
    for arm in fr.arms:
        found = [fr.runs[(arm, s)].get("curation") for s in fr.seeds]
        kept = [k for k in found if k is not None]
        if kept and len(kept) == len(found):
            shares = np.array([k["kept_share"] for k in kept], dtype=np.float64)  # (S, K); NaN: no candidates
            mean = [
                float(np.mean(col[np.isfinite(col)])) if np.isfinite(col).any() else math.nan
                for col in shares.T
            ]
            curation[arm] = {
                "confidence": kept[0]["confidence"],
                "kept_share": mean,
                "kept": [k["kept"] for k in kept],
                "candidates": [k["candidates"] for k in kept],
            }
    real_counts = fr.runs[("real" if "real" in fr.arms else fr.arms[0], fr.seeds[0])]["n_train"]["real"]
    return {
        "fraction": fr.fraction,
        "real_counts": real_counts,
        "n_real": int(sum(real_counts)),
        "arms": list(fr.arms),
        "seeds": list(fr.seeds),
        "keys": keys,
        "headline": headline,
        "metrics": summaries,
        "comparisons": comparisons,
        "primary": {
            "arm": p_arm,
            "baseline": p_base,
            "metric": p_key,
            "chosen": chosen,
            "validation": {
                a: float(np.mean([fr.runs[(a, s)]["val_balanced_accuracy"] for s in fr.seeds]))
                for a in fr.arms
            },
        },
        "power": power,
        "steps": steps,
        "selected_steps": selected,
        "selected_last": last,
        "curation": curation,
        "resamples": res.resamples,
        "n_test": len(labels),
    }
