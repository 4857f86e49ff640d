"""The benchmark's report: ``results.json``, ``report.md`` with a plain-language verdict, and PNGs.

Figures (matplotlib's object API with an Agg canvas, written atomically):

- ``lift_curve.png`` (a sweep over several fractions): balanced accuracy and target-class recall
  per arm against the number of real training images (log scale), with interval bands;
- ``metrics.png``: balanced accuracy and target-class recall per arm, CI whiskers, seeds as dots;
- ``confusion_matrices.png``: one matrix per arm, summed over seeds, coloured by row share;
- ``training_curves.png``: validation balanced accuracy per optimisation step per arm (mean and each seed);
- ``samples_<class>.png``: real and synthetic images of every class, side by side;
- ``memorisation_pairs.png``: the synthetic images closest to a training image.

With several fractions, the per-fraction figures of every fraction but the largest carry a
``_f<fraction>`` suffix (``metrics_f0.1.png``). The numbers come from
:mod:`medgan.benchmark.analysis`, one fraction at a time.

The verdict calls a difference significant when its confidence interval excludes 0, and says so
in words: "raised", "lowered ...: it hurt", or "the interval covers 0, so there is no evidence of
a lift". At each fraction it speaks of the pre-declared primary comparison; the others are
secondary, with Holm-adjusted p-values. See :mod:`medgan.benchmark.stats` for how the intervals
are made.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from medgan.benchmark.analysis import COMPARISONS, FractionRuns, analyse_fraction, fraction_runs
from medgan.benchmark.budget import Budget
from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.subsets import fraction_label, subset_indices
from medgan.configio import config_to_dict
from medgan.data.dataset import PreparedDataset, class_slugs
from medgan.data.splits import TWIN_RMS, twins_in
from medgan.errors import MedganError
from medgan.metrics.evaluate import piece_caution, size_cautions
from medgan.utils import atomic_file, file_sha256, write_text_atomic

__all__ = ["COMPARISONS", "caveats", "print_summary", "save_lift_curve", "verdict", "write_report"]

_COLOURS = {"real": "#7f7f7f", "real+classical": "#1f77b4", "real+synthetic": "#ff7f0e",
            "real+classical+synthetic": "#9467bd", "synthetic-only": "#d62728", "real+oversample": "#8c564b",
            "real+curated-synthetic": "#2ca02c", "synthetic-pretrain": "#e377c2",
            "synthetic-pretrain+classical": "#17becf"}

_LABELS = {"balanced_accuracy": "balanced accuracy", "accuracy": "accuracy", "auroc_macro": "macro AUROC"}


def _label(key: str, class_names: list[str]) -> str:
    if key in _LABELS:
        return _LABELS[key]
    metric, _, slug = key.partition("/")
    by_slug = dict(zip(class_slugs(class_names), class_names, strict=True))
    return f"{by_slug.get(slug, slug)} {'F1' if metric == 'f1' else metric}"


def _pts(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}"


def _bound(x: float) -> str:
    """A CI bound in points: one decimal, or two when one would round a nonzero bound to "0.0"
    (whose sign decides significance) or print "-0.0"."""
    text = f"{100 * x:.1f}"
    if text in ("0.0", "-0.0"):
        text = f"{100 * x:.2f}" if x != 0 else "0.0"
    return text


def _ci(lo: float, hi: float) -> str:
    return "n/a" if not (math.isfinite(lo) and math.isfinite(hi)) else f"{_bound(lo)} to {_bound(hi)}"


def _p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


# Section. Words.


def _clause(c: dict[str, Any], label: str, confidence: float) -> str:
    """One metric's change in words, e.g. "raised malignant recall by 6.1 points (95% CI 1.2 to 10.8)"."""
    ci = f"{confidence:.0%} CI {_ci(c['ci_low'], c['ci_high'])}"
    d = 100 * c["diff"]
    if not math.isfinite(d):
        return f"could not be compared on {label}"
    if c["ci_low"] > 0:
        return f"raised {label} by {d:.1f} points ({ci})"
    if c["ci_high"] < 0:
        return f"lowered {label} by {-d:.1f} points ({ci}): it hurt"
    return f"changed {label} by {d:+.1f} points ({ci}): the interval covers 0, so there is no evidence of a lift"


C2ST_CAUTION = 0.8
"""Above this real-vs-synthetic C2ST AUC the report warns that the arms test a weak GAN."""

MEMORISATION_CAUTION = 0.01
"""Below this p-value of the likely-copy count (:meth:`medgan.metrics.memorisation.MemorisationAudit.p_value`)
the report warns that the GAN may reproduce training images."""


TEST_TWIN_CAUTION = 0.05
"""From this share of test images with a near-duplicate in the train split the report says the test is leaky."""

_TWIN_CHECK_BYTES = 2**31
"""The largest float copy of a train split the twin check makes (2 GiB: 20 000 images of 160² or 2 000 volumes of 64³)."""


def caveats(summaries: dict[str, dict[str, Any]], fidelity: dict[str, float] | None, num_classes: int,
            seeds: int, quick: bool, test_twins: float | None = None, twin_free: str | None = None,
            class_names: list[str] | None = None) -> list[str]:
    """Warnings that change how the answer should be read, from the results themselves.

    Args:
        summaries: per arm, per metric, from :func:`medgan.benchmark.stats.summarise`.
        fidelity: the GAN's ``medgan.metrics.evaluate`` numbers, or None.
        num_classes: K (chance balanced accuracy is 1/K).
        seeds: seeds per arm.
        quick: whether ``--quick`` settings were used.
        test_twins: the share of test images with a near-duplicate in the train split
            (:func:`medgan.data.splits.twins_in`), or None when not measured.
        twin_free: what the primary comparison reads on the test images without a twin (a clause), or None.
        class_names: names by class index, for the per-class mask-size check (none without them).
    """
    out = []
    if test_twins is not None and test_twins >= TEST_TWIN_CAUTION:
        out.append(f"{test_twins:.0%} of the real test images have a near-duplicate in the train split (the same "
                   f"scan, within {TWIN_RMS:g} grey levels RMS): a classifier trained on real images may recognise "
                   "them rather than generalise, and one trained on synthetic images alone cannot, so the real "
                   "arms' scores are optimistic and the synthetic-only arm starts behind."
                   + (f" {twin_free}" if twin_free else ""))
    fid = fidelity or {}
    if quick:
        out.append(f"This is a quick run ({seeds} seeds, a short GAN schedule): a smoke test of the pipeline, "
                   "not evidence. Run without --quick for the answer.")
    elif seeds < 3:
        out.append(f"Only {seeds} seed(s) per arm: the intervals are wide and the seed-level t-test has "
                   "almost no power.")
    chance = 1.0 / num_classes
    tstr = summaries.get("synthetic-only", {}).get("balanced_accuracy")
    if tstr is not None and tstr["ci_low"] <= chance:
        out.append(f"A classifier trained on the synthetic images alone is no better than chance on real test "
                   f"images (balanced accuracy {_pts(tstr['mean'])}%, CI {_ci(tstr['ci_low'], tstr['ci_high'])}; "
                   f"chance {_pts(chance)}%): the GAN's samples carry little class information, so the synthetic "
                   "arms test this GAN, not GAN augmentation in general.")
    auc = fid.get("c2st/auc")
    if auc is not None and math.isfinite(auc) and auc > C2ST_CAUTION:
        out.append(f"A small CNN tells this GAN's samples from real training images with ROC AUC {auc:.2f} "
                   f"(C2ST; 0.5 = indistinguishable, caution above {C2ST_CAUTION}): the synthetic arms test this "
                   "weak GAN, not GAN augmentation. Look at samples_<class>.png.")
    copies, p_copy = fid.get("memorisation/n_likely_copies"), fid.get("memorisation/p_value")
    if copies and p_copy is not None and p_copy < MEMORISATION_CAUTION:
        n = fid.get("n_synthetic") or float("nan")
        out.append(f"{copies:.0f} of {n:.0f} synthetic images are nearer an image this GAN learnt from than 99% of "
                   f"held-out real images come (about 1% expected; p = {_p(p_copy)}): it may reproduce training "
                   "images. Look at memorisation_pairs.png before sharing its samples.")
    fragmented = piece_caution(fid)
    if fragmented:
        out.append(f"{fragmented} Look at samples_<class>.png.")
    out += size_cautions(fid, class_names or [])
    coverage = fid.get("coverage")
    if coverage is not None and math.isfinite(coverage) and coverage < 0.25:
        out.append(f"The synthetic images cover only {coverage:.0%} of the real training images (coverage in the "
                   "domain feature space): look at samples_<class>.png before trusting any synthetic arm.")
    return out


def _holm_note(comp: dict[str, Any], headline: list[str]) -> str:
    ps = [comp["metrics"][k].get("p_holm") for k in headline]
    if comp.get("primary") or any(p is None for p in ps):
        return ""
    return " (Holm-adjusted p " + ", ".join(_p(p) for p in ps) + ")"


_READING = {"lift": "lift", "trade": "a trade, not a lift", "hurt": "it hurt", "none": "no evidence of a lift"}
"""The primary verdict's ``kind`` in the lift table's words."""


def _costs(comp: dict[str, Any], key: str, headline: list[str]) -> list[str]:
    """What a significant gain on ``key`` was paid with: the other headline metrics, the macro AUROC
    and every other class's recall (for a target recall, the specificity) whose interval lies below 0."""
    metric = key.partition("/")[0]
    others = [k for k in comp["metrics"] if k.startswith("recall/") and k != key] if metric == "recall" else []
    keys = [k for k in headline if k != key] + ["auroc_macro"] + others
    return [k for k in dict.fromkeys(keys) if k in comp["metrics"] and comp["metrics"][k]["ci_high"] < 0]


def verdict(comparisons: list[dict[str, Any]], headline: list[str], class_names: list[str],
            confidence: float, *, primary: dict[str, Any] | None = None,
            primary_metric: str | None = None) -> dict[str, Any]:
    """The answer to "does adding GAN samples help?", and one sentence per comparison.

    Args:
        comparisons: ``{"arm", "baseline", "phrase", "metrics": {key: compare(...)}}`` items.
        headline: the metric keys the verdict speaks about (target recall, balanced accuracy).
        class_names: names by label index.
        confidence: the intervals' coverage.
        primary: the pre-declared primary comparison (one of ``comparisons``); the answer speaks of
            it, on ``primary_metric``. Without it, the answer speaks of the first comparison of a
            synthetic arm on both headline metrics.
        primary_metric: the primary comparison's metric key (default ``headline[0]``).

    A significant gain of the primary metric is **a trade, not a lift** when it was paid for: another
    headline metric, the macro AUROC or another class's recall (for a target recall: the specificity)
    fell significantly. A classifier that merely calls the target class more often raises its recall
    that way, which a lower decision threshold gives for free.

    Returns:
        ``{"answer": str, "lines": [str, ...]}``, with ``"kind"`` (``lift``, ``trade``, ``hurt`` or
        ``none``) when ``primary`` is given.
    """
    lines = []
    for comp in comparisons:
        clauses = [_clause(comp["metrics"][k], _label(k, class_names), confidence) for k in headline]
        lines.append(f"{comp['phrase']} ({comp['arm']} vs {comp['baseline']}) " + "; it ".join(clauses)
                     + _holm_note(comp, headline) + ".")
    if primary is not None:
        key = primary_metric or headline[0]
        c = primary["metrics"][key]
        costs = _costs(primary, key, headline) if c["ci_low"] > 0 else []
        kind = "trade" if costs else "lift" if c["ci_low"] > 0 else "hurt" if c["ci_high"] < 0 else "none"
        word = {"lift": "Yes.", "trade": "A trade, not a lift.", "hurt": "No: it hurt.",
                "none": "No evidence of a lift."}[kind]
        rest = [k for k in headline if k != key]
        tail = "".join(f" Secondary: it {_clause(primary['metrics'][k], _label(k, class_names), confidence)}"
                       f"{_holm_note({'metrics': {k: primary['metrics'][k]}}, [k])}." for k in rest)
        if costs:
            unsaid = [k for k in costs if k not in rest]  # the secondary headline metric is said above
            if unsaid:
                tail += " It paid for the gain: it " + "; it ".join(
                    _clause(primary["metrics"][k], _label(k, class_names), confidence).removesuffix(": it hurt")
                    for k in unsaid) + "."
            auc = primary["metrics"].get("auroc_macro")
            if auc is None or not auc["ci_low"] > 0:
                metric, _, slug = key.partition("/")
                name = dict(zip(class_slugs(class_names), class_names, strict=True)).get(slug, slug)
                tail += (f" {primary['arm']} " + (f"calls {name} more often: " if metric == "recall" else "is ")
                         + "a different operating point rather than a better classifier"
                         + ("" if "auroc_macro" in costs else " (its macro AUROC is not higher)")
                         + (f", and a lower decision threshold for {name} in {primary['baseline']} can buy a"
                            " similar trade without synthetic images." if metric == "recall" else "."))
        return {"answer": f"{word} The primary comparison, {primary['phrase']} ({primary['arm']} vs "
                          f"{primary['baseline']}), {_clause(c, _label(key, class_names), confidence)}.{tail}",
                "lines": lines, "kind": kind}
    synthetic = [c for c in comparisons if "synthetic" in c["arm"] and c["arm"] != "synthetic-only"]
    if not synthetic:
        return {"answer": "This benchmark ran no arm that adds synthetic data to real images.", "lines": lines}
    main = synthetic[0]
    ups = [_label(k, class_names) for k in headline if main["metrics"][k]["ci_low"] > 0]
    downs = [_label(k, class_names) for k in headline if main["metrics"][k]["ci_high"] < 0]
    if downs and ups:
        word = f"Mixed: it raised {' and '.join(ups)} but lowered {' and '.join(downs)}."
    elif downs:
        word = f"No: it hurt ({' and '.join(downs)} went down)."
    elif ups and len(ups) == len(headline):
        word = "Yes."
    elif ups:
        rest = [_label(k, class_names) for k in headline if _label(k, class_names) not in ups]
        word = f"Partly: it raised {' and '.join(ups)}; there is no evidence of a lift in {' and '.join(rest)}."
    else:
        word = "No evidence of a lift."
    clauses = [_clause(main["metrics"][k], _label(k, class_names), confidence) for k in headline]
    return {"answer": f"{word} {main['phrase']} ({main['arm']} vs {main['baseline']}) " + "; it ".join(clauses) + ".",
            "lines": lines}


# Section. Figures.


def _save(fig: Any, path: Path, dpi: int = 110) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    return path


def save_metric_bars(path: Path, summaries: dict[str, dict[str, Any]], keys: list[str], class_names: list[str],
                     confidence: float) -> Path:
    """Bars per arm for each metric in ``keys``, with CI whiskers and one dot per seed."""
    from matplotlib.figure import Figure

    arms = list(summaries)
    fig = Figure(figsize=(4.2 * len(keys), 3.6))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        for j, arm in enumerate(arms):
            s = summaries[arm][key]
            mean = 100 * s["mean"]
            err = [[max(mean - 100 * s["ci_low"], 0)], [max(100 * s["ci_high"] - mean, 0)]]
            ax.bar(j, mean, color=_COLOURS.get(arm, "#333333"), alpha=0.85)
            if math.isfinite(s["ci_low"]):
                ax.errorbar(j, mean, yerr=err, color="black", capsize=4, lw=1)
            seeds = [100 * v for v in s["per_seed"]]
            ax.scatter(np.full(len(seeds), j) + np.linspace(-0.15, 0.15, len(seeds)), seeds, s=8, color="black",
                       zorder=3)
        ax.axhline(100 * summaries["real"][key]["mean"], color="#7f7f7f", ls="--", lw=0.8)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(arms, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{_label(key, class_names)} (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{_label(key, class_names)}, mean ± {confidence:.0%} CI", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def save_confusion_matrices(path: Path, matrices: dict[str, np.ndarray], class_names: list[str]) -> Path:
    """One confusion matrix per arm (counts summed over seeds; colour = share of the true class)."""
    from matplotlib.figure import Figure

    k = len(class_names)
    short = [n if len(n) <= 12 else n[:11] + "…" for n in class_names]
    cell = max(0.35, 1.6 / k)
    cols = min(len(matrices), 3)
    rows = math.ceil(len(matrices) / cols)
    fig = Figure(figsize=(cols * (k * cell + 1.3), rows * (k * cell + 1.3)))
    for i, (arm, m) in enumerate(matrices.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        share = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for r in range(k):
            for c in range(k):
                ax.text(c, r, str(int(m[r, c])), ha="center", va="center", fontsize=7,
                        color="white" if share[r, c] > 0.6 else "black")
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(short, rotation=45, ha="right", fontsize=7)
        ax.set_yticklabels(short if i % cols == 0 else [""] * k, fontsize=7)
        ax.set_title(arm, fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        if i % cols == 0:
            ax.set_ylabel("true", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def save_training_curves(path: Path, histories: dict[str, list[list[dict[str, float]]]]) -> Path:
    """Validation balanced accuracy per optimisation step: the mean over seeds (thick) and every seed (thin)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8.4, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    styles = iter(["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))] * 4)  # the ratio sweep's arms share a colour
    for arm, runs in histories.items():
        base, _, ratio = arm.partition("-x")
        colour = _COLOURS.get(base, "#333333")
        style = next(styles) if ratio else "-"
        curves = [[100 * row["val_balanced_accuracy"] for row in h] for h in runs]
        steps = [[row.get("step", row["epoch"]) for row in h] for h in runs]
        for x, curve in zip(steps, curves, strict=True):
            ax.plot(x, curve, color=colour, lw=0.5, alpha=0.25, ls=style)
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        ax.plot(steps[0][:length], mean, color=colour, lw=1.8, ls=style, label=arm)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("val balanced accuracy (%)")
    ax.set_title("validation balanced accuracy per step (thin: seeds; thick: mean)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside, not over, the curves
    fig.tight_layout()
    return _save(fig, path)


def save_lift_curve(path: Path, blocks: list[dict[str, Any]], keys: list[str], class_names: list[str],
                    confidence: float) -> Path:
    """Each metric in ``keys`` per arm against the real training images (log x), with interval bands.

    Args:
        path: the PNG.
        blocks: one :func:`medgan.benchmark.analysis.analyse_fraction` result per fraction.
        keys: metric keys, one panel each.
        class_names: names by label index.
        confidence: the intervals' coverage (for the title).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, NullLocator

    arms = [a for a in blocks[-1]["arms"] if all(a in b["metrics"] for b in blocks)]
    x = [b["n_real"] for b in blocks]
    fig = Figure(figsize=(5.2 * len(keys) + 2.2, 4.0))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        for arm in arms:
            colour = _COLOURS.get(arm.partition("-x")[0], "#333333")
            s = [b["metrics"][arm][key] for b in blocks]
            style = "--" if "-x" in arm else "-"
            ax.plot(x, [100 * v["mean"] for v in s], style, color=colour, lw=1.6, marker="o", ms=3, label=arm)
            ax.fill_between(x, [100 * v["ci_low"] for v in s], [100 * v["ci_high"] for v in s], color=colour,
                            alpha=0.12, lw=0)
        ax.set_xscale("log")
        ax.set_xlim(min(x) / 1.25, max(x) * 1.25)
        ax.xaxis.set_minor_locator(NullLocator())  # only the fractions' own ticks
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(x)
        ax.set_xticklabels([f"{n}\n({fraction_label(b['fraction'])})" for n, b in zip(x, blocks, strict=True)],
                           fontsize=7)
        ax.set_xlabel("real training images (fraction of the train split)")
        ax.set_ylabel(f"{_label(key, class_names)} (%)")
        # Fitted to the bands, not 0-100: the differences that matter are a few points.
        bounds = [100 * v for b in blocks for a in arms for v in (b["metrics"][a][key]["ci_low"],
                                                                  b["metrics"][a][key]["ci_high"]) if math.isfinite(v)]
        if bounds:
            ax.set_ylim(max(0.0, 5 * math.floor(min(bounds) / 5 - 0.2)), min(100.0, 5 * math.ceil(max(bounds) / 5 + 0.2)))
        ax.grid(axis="y", lw=0.4, alpha=0.5)
        ax.set_title(f"{_label(key, class_names)}: mean and {confidence:.0%} CI band", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside, not over, the lines
    fig.tight_layout()
    return _save(fig, path)


# Section. The GAN's fidelity and memorisation.


def _c2st(cfg: BenchmarkConfig, device: str) -> Any:
    """The two-sample test's settings from the config's fidelity section (seed 0, as ``evaluate``'s default)."""
    from medgan.metrics.c2st import C2STConfig

    return C2STConfig(folds=cfg.fidelity.c2st_folds, min_steps=cfg.fidelity.c2st_min_steps, seed=0, device=device)


def _fidelity(out: Path, cfg: BenchmarkConfig, ds: PreparedDataset, checkpoint: str,
              device: str, suffix: str = "", seen: np.ndarray | None = None,
              ) -> tuple[dict[str, float] | None, str | None, list[str]]:
    """``medgan.metrics.evaluate`` of a fresh synthetic draw; sample grids and memorisation pairs.

    The GAN of a fraction below 1 (``seen``: the train images it learnt from) is measured against the
    whole train split for fidelity, since the images it never saw come from the same population. Its
    memorisation audit looks at ``seen`` alone: it cannot copy an image it never saw, and against the
    whole split the look-alikes of unseen images (the population's own variation) were flagged as copies.
    """
    from medgan.metrics.evaluate import evaluate_detailed
    from medgan.metrics.report import save_class_grid, save_memorisation_pairs
    from medgan.synth.sampling import sample_classes
    from medgan.synth.translate import LoadedTranslator, load_model

    names = list(ds.info.class_names)
    gen = load_model(checkpoint, device)
    if isinstance(gen, LoadedTranslator):  # a CycleGAN: a translated draw, audited against both domains
        return _translator_fidelity(out, cfg, ds, gen, device, suffix)
    images, labels, _ = sample_classes(gen, cfg.fidelity.n_per_class, seed=cfg.fidelity.seed, device=device)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    figures = []
    for c, (name, slug) in enumerate(zip(names, class_slugs(names), strict=True)):
        figures.append(save_class_grid(out / f"samples_{slug}{suffix}.png", real_x[real_y == c], images[labels == c],
                                       title=f"{ds.info.name}: {name} (left real train, right synthetic)").name)
    try:
        ev = evaluate_detailed(ds, (images, labels), arch=cfg.fidelity.arch, device=device, seed=0,
                               feature_epochs=cfg.fidelity.feature_epochs, c2st=_c2st(cfg, device), seen=seen)
    except MedganError as exc:
        return None, f"fidelity not computed: {exc}", figures
    if ev.audit is not None:
        figures.append(save_memorisation_pairs(out / f"memorisation_pairs{suffix}.png", ev.audit, images,
                                               real_x).name)
    return ev.metrics, None, figures


def _fidelity_key(cfg: BenchmarkConfig, ds: PreparedDataset, checkpoint: str | Path,
                  seen: np.ndarray | None = None) -> dict[str, Any]:
    """What a GAN's fidelity measurement depends on: the checkpoint's content, the real data, the settings
    and the train images its memorisation audit looks at."""
    import hashlib

    from medgan.training.checkpoint import sampling_checkpoint

    audited = "all" if seen is None else hashlib.sha256(np.asarray(seen, np.int64).tobytes()).hexdigest()
    return {"checkpoint_sha256": file_sha256(sampling_checkpoint(checkpoint)), "data_sha256": ds.info.sha256,
            "fidelity": config_to_dict(cfg)["fidelity"], "audited_train": audited}


def _fidelity_once(out: Path, cfg: BenchmarkConfig, ds: PreparedDataset, checkpoint: str,
                   device: str, suffix: str = "", seen: np.ndarray | None = None,
                   ) -> tuple[dict[str, float] | None, str | None, list[str]]:
    """:func:`_fidelity`, kept in ``OUT/fidelity<suffix>.json`` and reused while the GAN checkpoint (by
    content), the real data and the ``fidelity`` settings are unchanged and its figures are in place.

    The measurement is the slow part of a report (the C2ST's k-fold CNNs, per fraction): a report
    re-rendered after a crash, a new seed or a change of wording need not repeat it.
    """
    key = _fidelity_key(cfg, ds, checkpoint, seen)
    cache = out / f"fidelity{suffix}.json"
    try:
        kept = json.loads(cache.read_text())
    except (OSError, ValueError):
        kept = None
    if kept is not None and kept.get("key") == key and all((out / f).is_file() for f in kept["figures"]):
        return kept["metrics"], kept["note"], kept["figures"]
    kept = _kept_under_another_suffix(out, key, suffix)
    if kept is None:
        metrics, note, figures = _fidelity(out, cfg, ds, checkpoint, device, suffix, seen)
        kept = {"key": key, "metrics": metrics, "note": note, "figures": figures}
    write_text_atomic(cache, json.dumps(kept, indent=1, default=_json_default) + "\n")
    return kept["metrics"], kept["note"], kept["figures"]


def _kept_under_another_suffix(out: Path, key: dict[str, Any], suffix: str) -> dict[str, Any] | None:
    """The same measurement (same ``key``) kept under another suffix, its figures copied to ``suffix``'s names.

    A sweep keeps its largest fraction's files unsuffixed; when a larger fraction joins, the former
    largest takes the suffix ``_f<F>`` and its measurement is found here instead of being repeated.
    The unsuffixed files are left in place until the new largest fraction's report replaces them.
    """
    import shutil

    for other in sorted(out.glob("fidelity*.json")):
        if other.name == f"fidelity{suffix}.json":
            continue
        try:
            kept = json.loads(other.read_text())
        except (OSError, ValueError):
            continue
        old = other.name[len("fidelity"):-len(".json")]
        figures = kept.get("figures", []) if kept.get("key") == key else None
        if figures is None or not all((out / f).is_file() and f.endswith(f"{old}.png") for f in figures):
            continue
        renamed = [f"{f[:len(f) - len(old) - 4]}{suffix}.png" for f in figures]
        for a, b in zip(figures, renamed, strict=True):
            shutil.copyfile(out / a, out / b)
        return {**kept, "figures": renamed}
    return None


def _translator_fidelity(out: Path, cfg: BenchmarkConfig, ds: PreparedDataset, tr: Any, device: str,
                         suffix: str = "") -> tuple[dict[str, float] | None, str | None, list[str]]:
    """A translator's draw (:func:`medgan.metrics.translated.evaluate_translator`): fidelity as a GAN's, the
    memorisation audit against both domains, sample grids; no pairs figure (the nearest training image
    of a faithful translation is its own source)."""
    from medgan.metrics.report import save_class_grid
    from medgan.metrics.translated import evaluate_translator

    names = list(ds.info.class_names)
    try:
        ev = evaluate_translator(ds, tr, cfg.fidelity.n_per_class, seed=cfg.fidelity.seed, arch=cfg.fidelity.arch,
                                 device=device, feature_epochs=cfg.fidelity.feature_epochs, c2st=_c2st(cfg, device))
    except MedganError as exc:
        return None, f"fidelity not computed: {exc}", []
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    figures = [save_class_grid(out / f"samples_{slug}{suffix}.png", real_x[real_y == c], ev.images[ev.labels == c],
                               title=f"{ds.info.name}: {name} (left real train, right translated)").name
               for c, (name, slug) in enumerate(zip(names, class_slugs(names), strict=True)) if (ev.labels == c).any()]
    return ev.metrics, None, figures


# Section. Aggregation and the files.


def _budget_record(budget: Budget | None) -> dict[str, int] | None:
    if budget is None:
        return None
    return {"steps": budget.steps, "eval_every": budget.eval_every, "pretrain_steps": budget.pretrain_steps}


def write_report(
    out: Path,
    cfg: BenchmarkConfig,
    ds: PreparedDataset,
    target: int,
    runs: dict[tuple[str, int], dict[str, Any]],
    *,
    checkpoints: dict[tuple[float, int], str | None] | None = None,
    budget: Budget | None = None,
    budgets: dict[float, Budget] | None = None,
    quick: bool = False,
    console: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Aggregate the runs and write ``results.json``, ``report.md`` and the figures into ``out``.

    Args:
        out: the benchmark folder.
        cfg: the resolved config.
        ds: the real dataset.
        target: the target class index.
        runs: ``{(arm label, seed): run record}`` for every arm, fraction and seed of ``cfg`` (and the
            ratio sweep's runs).
        checkpoints: the GAN of every ``(fraction, subset seed)`` (None or empty when no arm used
            synthetic data); the report measures the subset-0 GAN of each fraction.
        budget: the classifier's step budget at full data (said in the report).
        budgets: the budget of each fraction, where ``classifier.budget: fraction`` makes them differ.
        quick: whether ``--quick`` settings were used (said in the report).
        console: a Rich console for a status line.
        progress: show the status line.

    Returns:
        The content of ``results.json``: the largest fraction's results at the top level (``metrics``,
        ``comparisons``, ``verdict``, ...), every fraction's under ``by_fraction``.
    """
    from rich.console import Console

    from medgan.device import resolve_device

    names = list(ds.info.class_names)
    console = console or Console(quiet=not progress)
    checkpoints = checkpoints or {}
    conf = cfg.bootstrap.confidence
    gan_marker = out / "gan.json"

    # The test images the train split already holds (the same scan twice): a caution where there are many.
    # (A float copy of the train split is searched: skipped where that would not fit comfortably.)
    train_x = ds.channel_first("train")
    affordable = 0 < train_x.size * 4 <= _TWIN_CHECK_BYTES and len(ds.labels["test"]) > 0
    twin = twins_in(ds.channel_first("test"), train_x) if affordable else None
    test_twins = float(twin.mean()) if twin is not None else None

    # Section. One block of numbers, words and figures per fraction.
    blocks: list[dict[str, Any]] = []
    figures: list[str] = []
    for fr in fraction_runs(cfg, runs):
        block = analyse_fraction(cfg, ds, fr, target)
        if twin is not None and test_twins is not None and test_twins >= TEST_TWIN_CAUTION:
            block["twin_free"] = twin_free_part(cfg, ds, fr, target, ~twin)
        suffix = "" if fr.fraction == cfg.fractions[-1] else f"_f{fraction_label(fr.fraction)}"
        headline = block["headline"]
        primary = next((c for c in block["comparisons"] if c["primary"]), None)
        block["verdict"] = verdict(block["comparisons"], headline, names, conf, primary=primary,
                                   primary_metric=block["primary"]["metric"])
        seeds = fr.seeds
        matrices = {arm: np.sum([fr.runs[(arm, s)]["confusion_matrix"] for s in seeds], axis=0) for arm in fr.arms}
        block_figures = [
            save_metric_bars(out / f"metrics{suffix}.png", block["metrics"], headline[::-1], names, conf).name,
            save_confusion_matrices(out / f"confusion_matrices{suffix}.png", matrices, names).name,
            save_training_curves(out / f"training_curves{suffix}.png",
                                 {arm: [fr.runs[(arm, s)]["history"] for s in seeds] for arm in fr.arms}).name,
        ]
        checkpoint = checkpoints.get((fr.fraction, 0))
        fidelity, fidelity_note = None, None
        if checkpoint is not None and cfg.fidelity.enabled:
            with console.status(f"measuring the GAN's fidelity and memorisation (fraction {fr.fraction:g})"):
                seen = (None if fr.fraction >= 1
                        else subset_indices(ds.labels["train"], fr.fraction, 0, cfg.min_per_class))
                fidelity, fidelity_note, more = _fidelity_once(out, cfg, ds, checkpoint,
                                                               str(resolve_device(cfg.device)), suffix, seen)
            block_figures += more
        root = out if fr.fraction >= 1 else out / "gans" / f"f{fraction_label(fr.fraction)}-s0"
        marker = root / "gan.json"
        block["gan"] = {"checkpoint": checkpoint, "trained_here": marker.is_file(),
                        "training": json.loads(marker.read_text()) if marker.is_file() else None,
                        "fidelity": fidelity, "fidelity_note": fidelity_note}
        block["verdict"]["caveats"] = caveats(block["metrics"], fidelity, len(names), len(seeds), quick, test_twins,
                                              _twin_free_clause(block.get("twin_free"), block, names, conf),
                                              class_names=names)
        block["training_sets"] = {arm: fr.runs[(arm, seeds[0])]["n_train"] for arm in fr.arms}
        block["confusion_matrices"] = {arm: {"summed": matrices[arm].tolist(),
                                             "per_seed": [fr.runs[(arm, s)]["confusion_matrix"] for s in seeds]}
                                       for arm in fr.arms}
        block["selected_epochs"] = {arm: [fr.runs[(arm, s)]["selected_epoch"] for s in seeds] for arm in fr.arms}
        block["init_sha256"] = {str(s): fr.runs[(fr.arms[0], s)]["init_sha256"] for s in seeds}
        block["seconds"] = {arm: [fr.runs[(arm, s)]["seconds"] for s in seeds] for arm in fr.arms}
        block["figures"] = block_figures
        blocks.append(block)
        figures += block_figures
    if len(blocks) > 1:
        main_keys = blocks[-1]["headline"][::-1]
        figures.insert(0, save_lift_curve(out / "lift_curve.png", blocks, main_keys, names, conf).name)
    main = blocks[-1]

    # Section. results.json: the largest fraction at the top level (as before the sweep), every one in by_fraction.
    said = dict(main["verdict"])
    if len(blocks) > 1:
        said = {"answer": " ".join(f"At {_share(b)} of the train split ({b['n_real']} real images): "
                                   f"{b['verdict']['answer']}" for b in blocks),
                "lines": [f"[{fraction_label(b['fraction'])}] {line}" for b in blocks for line in b["verdict"]["lines"]],
                "caveats": _merged_caveats(blocks)}
    results = {
        "format": "medgan-benchmark-results-v2",
        "question": "does adding GAN samples help the classifier, and by how much, at each amount of real data?",
        "verdict": said,
        "quick": quick,
        "dataset": {"name": ds.info.name, "path": str(ds.path), "sha256": ds.info.sha256, "class_names": names,
                    "counts": ds.info.counts, "test_twin_share": test_twins},
        "target_class": {"index": target, "name": names[target]},
        "fractions": [b["fraction"] for b in blocks],
        "budget": _budget_record(budget),
        **({"budget_per_fraction": {fraction_label(f): _budget_record(b) for f, b in sorted(budgets.items())}}
           if budgets and any(b != budget for b in budgets.values()) else {}),
        "primary": config_to_dict(cfg)["primary"],
        "arms": list(main["arms"]),
        "seeds": list(main["seeds"]),
        "training_sets": main["training_sets"],
        "metrics": main["metrics"],
        "comparisons": main["comparisons"],
        "confusion_matrices": main["confusion_matrices"],
        "selected_epochs": main["selected_epochs"],
        "init_sha256": main["init_sha256"],
        "seconds": main["seconds"],
        "gan": main["gan"],
        "twin_free": main.get("twin_free"),
        "by_fraction": {fraction_label(b["fraction"]): b for b in blocks},
        "method": {
            "selection": "checkpoint with the best validation balanced accuracy (official val split), validated "
                         "every eval_every optimisation steps; every arm takes the same number of steps",
            "ci": (f"{conf:.0%} percentile bootstrap, {main['resamples']} replicates; each "
                   "replicate resamples test cases within each true class"
                   + (" and the training seeds" if cfg.bootstrap.resample_seeds else "")
                   + ", and averages the metric over the drawn seeds"),
            "paired_test": "paired bootstrap over the same replicates (two-sided p); paired t-test over seeds",
            "significant": "the confidence interval of the difference excludes 0",
            "multiplicity": "one pre-declared primary comparison per fraction, unadjusted; every other "
                            "(comparison, headline metric) pair is secondary, Holm-adjusted within its fraction",
        },
        "config": config_to_dict(cfg),
        "figures": figures,
    }
    results["gan"]["trained_here"] = gan_marker.is_file() or results["gan"]["trained_here"]
    write_text_atomic(out / "results.json", json.dumps(results, indent=2, default=_json_default) + "\n")
    write_text_atomic(out / "report.md", _markdown(results, cfg, blocks))
    return results


TWIN_FREE_MIN_PER_CLASS = 5
"""The twin-free part of the test split is analysed only where every class keeps at least this many images."""


def twin_free_part(cfg: BenchmarkConfig, ds: PreparedDataset, fr: FractionRuns, target: int,
                   keep: np.ndarray) -> dict[str, Any] | None:
    """The headline numbers and comparisons of one fraction, on the test images ``keep`` only.

    The report's second reading where many test images have a near-duplicate in the train split
    (:data:`TEST_TWIN_CAUTION`): on the rest, no arm can score by recognising a scan it trained on,
    so real and synthetic arms meet on equal terms. The same runs' stored test predictions are
    rescored (no training), with the same bootstrap settings. None when a class keeps fewer than
    :data:`TWIN_FREE_MIN_PER_CLASS` test images.
    """
    counts = np.bincount(ds.labels["test"][keep], minlength=ds.info.num_classes)
    if counts.min() < TWIN_FREE_MIN_PER_CLASS:
        return None
    part = analyse_fraction(cfg, ds, fr, target, test_mask=keep)
    heads = part["headline"]
    return {
        "n_test": int(keep.sum()),
        "counts": counts.tolist(),
        "metrics": {arm: {k: part["metrics"][arm][k] for k in heads} for arm in part["arms"]},
        "comparisons": [{"arm": c["arm"], "baseline": c["baseline"], "phrase": c["phrase"], "primary": c["primary"],
                         "metrics": {k: c["metrics"][k] for k in heads}} for c in part["comparisons"]],
    }


def _twin_free_clause(tf: dict[str, Any] | None, block: dict[str, Any], names: list[str], conf: float) -> str | None:
    """One sentence: the primary comparison on the test images without a twin, or None."""
    p = block["primary"]
    comp = next((c for c in (tf or {}).get("comparisons", []) if c["primary"]), None)
    if comp is None:
        return None
    c = comp["metrics"][p["metric"]]
    return (f"On the {tf['n_test']} test images without one, {comp['arm']} vs {comp['baseline']} on "
            f"{_label(p['metric'], names)} reads {100 * c['diff']:+.1f} points ({conf:.0%} CI "
            f"{_ci(c['ci_low'], c['ci_high'])}); see the twin-free section.")


def _twin_free_markdown(block: dict[str, Any], names: list[str], conf: str, h: str) -> list[str]:
    tf = block.get("twin_free")
    if not tf:
        return []
    headline = block["headline"]
    counts = ", ".join(f"{n} {names[i]}" for i, n in enumerate(tf["counts"]))
    lines = [f"{h} On the test images without a twin in the train split", "",
             f"{tf['n_test']} test images ({counts}) have no near-duplicate in the train split: no arm can score "
             "on them by recognising a scan it trained on. The same runs' predictions, rescored on them alone:", "",
             "| arm | " + " | ".join(_label(k, names) for k in headline) + " |", "|---" * (len(headline) + 1) + "|"]
    lines += [f"| {arm} | " + " | ".join(_cell(tf["metrics"][arm][k]) for k in headline) + " |" for arm in tf["metrics"]]
    lines += ["", f"| comparison | metric | difference (points) | {conf} CI | bootstrap p | reading |",
              "|---|---|---|---|---|---|"]
    for comp in tf["comparisons"]:
        for k in headline:
            c = comp["metrics"][k]
            reading = ("significant lift" if c["ci_low"] > 0 else "it hurt" if c["ci_high"] < 0
                       else "no evidence of a difference")
            lines.append(f"| {comp['arm']} vs {comp['baseline']}{' (primary)' if comp['primary'] else ''} | "
                         f"{_label(k, names)} | {100 * c['diff']:+.1f} | {_ci(c['ci_low'], c['ci_high'])} | "
                         f"{_p(c['p_bootstrap'])} | {reading} |")
    return [*lines, ""]


def _share(block: dict[str, Any]) -> str:
    return f"{100 * block['fraction']:g}%"


def _merged_caveats(blocks: list[dict[str, Any]]) -> list[str]:
    """Every fraction's cautions, each said once: shared ones plainly, the others with their fraction."""
    seen: list[str] = []
    for b in blocks:
        for line in b["verdict"]["caveats"]:
            shared = all(line in other["verdict"]["caveats"] for other in blocks)
            text = line if shared else f"At fraction {fraction_label(b['fraction'])}: {line}"
            if text not in seen:
                seen.append(text)
    return seen


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cell(s: dict[str, Any]) -> str:
    return f"{_pts(s['mean'])} ({_ci(s['ci_low'], s['ci_high'])})"


def _sizes(n: dict[str, Any]) -> str:
    """A training set's size in words: ``546 + 252``, ``546 + 252 repeated``, ``546 + 5460 pretraining``."""
    real, synthetic = sum(n["real"]), sum(n["synthetic"])
    if n.get("repeated") is not None:
        return f"{real} + {sum(n['repeated'])} repeated"
    return f"{real} + {synthetic}"


def _power_line(block: dict[str, Any], names: list[str]) -> str | None:
    pw = block["power"]
    if pw is None or not math.isfinite(pw["lift"]):
        return None
    what = _label(pw["metric"], names)
    by_slug = dict(zip(class_slugs(names), names, strict=True))
    target = by_slug.get(pw["metric"].partition("/")[2])
    cases = f"{pw['n_test']} {target} test images" if target is not None else f"{pw['n_test']} test images"
    seeds = f"±{100 * pw['se_seeds']:.1f} points from the seeds" if math.isfinite(pw["se_seeds"]) else \
        "the seed spread unknown with one seed"
    n_seeds = int(pw["n_seeds"])
    return (f"**Power.** With {cases} and {n_seeds} seed{'s' if n_seeds != 1 else ''}, the smallest lift in {what} that the primary "
            f"comparison would detect with {pw['power']:.0%} power (two-sided, α = {pw['alpha']:.2g}) is about "
            f"{100 * pw['lift']:.1f} points (standard error {100 * pw['se']:.1f}: {seeds}, "
            f"±{100 * pw['se_test']:.1f} from the test set). A smaller true lift would mostly read as a null.")


def _fraction_markdown(r: dict[str, Any], block: dict[str, Any], cfg: BenchmarkConfig, h: str) -> list[str]:
    """The table per arm, the verdict, the power line, the differences and the per-class table of one fraction."""
    names = r["dataset"]["class_names"]
    conf = f"{cfg.bootstrap.confidence:.0%}"
    keys, headline = block["keys"], block["headline"]
    lines: list[str] = []
    p = block["primary"]
    if p["arm"] is not None:
        lines += [f"Primary comparison (declared in the config): **{p['arm']} vs {p['baseline']}** on "
                  f"{_label(p['metric'], names)}; {p['arm']} was chosen by {p['chosen']}.", ""]
    power = _power_line(block, names)
    if power:
        lines += [power, ""]
    if block["selected_last"]:
        lines += [f"> **Check.** Validation picked the last step in {len(block['selected_last'])} run(s) "
                  f"({', '.join(block['selected_last'][:6])}{', …' if len(block['selected_last']) > 6 else ''}): they "
                  "may have wanted more steps (raise classifier.min_steps or classifier.steps).", ""]
    lines += [f"{h} Results per arm", ""]
    head = ["arm", "train images (real + added)", "steps (selected per seed)", *[_label(k, names) for k in keys[:6]]]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for arm in block["arms"]:
        steps = sorted(set(block["steps"][arm]))
        cells = [_cell(block["metrics"][arm][k]) for k in keys[:6]]
        lines.append(f"| {arm} | {_sizes(block['training_sets'][arm])} | {'/'.join(map(str, steps))} "
                     f"({', '.join(map(str, block['selected_steps'][arm]))}) | " + " | ".join(cells) + " |")
    for arm, cur in block["curation"].items():
        shares = ", ".join(f"{n} {_pts(v)}{'%' if math.isfinite(v) else ' (none added)'}"
                           for n, v in zip(names, cur["kept_share"], strict=True))
        lines += ["", f"Curation ({arm}, confidence ≥ {cur['confidence']:g}, likely copies dropped): kept share of "
                  f"the candidates per class, mean over seeds: {shares}."]
    suffix = "" if block["fraction"] == cfg.fractions[-1] else f"_f{fraction_label(block['fraction'])}"
    lines += ["", f"![balanced accuracy and target recall per arm](metrics{suffix}.png)", "",
              f"{h} Differences (paired by seed and test case)", "",
              "| comparison | metric | difference (points) | " + conf + " CI | bootstrap p | Holm p | t-test p (seeds) | "
              "seeds better / worse | reading |", "|---|---|---|---|---|---|---|---|---|"]
    for comp in block["comparisons"]:
        for k in [*headline, "auroc_macro", f"f1/{headline[0].partition('/')[2]}"]:
            c = comp["metrics"][k]
            reading = ("significant lift" if c["ci_low"] > 0 else "it hurt" if c["ci_high"] < 0
                       else "no evidence of a difference")
            holm_p = ("primary" if comp["primary"] and k == p["metric"] else _p(c["p_holm"]) if "p_holm" in c else "—")
            lines.append(f"| {comp['arm']} vs {comp['baseline']} | {_label(k, names)} | {100 * c['diff']:+.1f} | "
                         f"{_ci(c['ci_low'], c['ci_high'])} | {_p(c['p_bootstrap'])} | {holm_p} | {_p(c['p_ttest'])} | "
                         f"{c['seeds_better']} / {c['seeds_worse']} of {c['n_seeds']} | {reading} |")
    lines += ["", *_twin_free_markdown(block, names, conf, h)]
    lines += [f"{h} Per class", "", "| arm | class | recall | precision | F1 |", "|---|---|---|---|---|"]
    for arm in block["arms"]:
        order = [r["target_class"]["index"]] + [i for i in range(len(names)) if i != r["target_class"]["index"]]
        for i in order:
            slug = class_slugs(names)[i]
            cells = [_cell(block["metrics"][arm][f"{m}/{slug}"]) for m in ("recall", "precision", "f1")]
            lines.append(f"| {arm} | {names[i]} | " + " | ".join(cells) + " |")
    lines += ["", f"{h} Confusion matrices", "", "Test predictions summed over seeds (rows: true class; columns: "
              "predicted). The per-seed matrices are in results.json.", "",
              f"![confusion matrices](confusion_matrices{suffix}.png)", "", f"{h} Training curves", "",
              f"![validation balanced accuracy per step](training_curves{suffix}.png)", ""]
    return lines


def _markdown(r: dict[str, Any], cfg: BenchmarkConfig, blocks: list[dict[str, Any]]) -> str:
    names = r["dataset"]["class_names"]
    target = r["target_class"]["name"]
    conf = f"{cfg.bootstrap.confidence:.0%}"
    n_test = sum(r["dataset"]["counts"]["test"])
    sweep = len(blocks) > 1
    lines = [f"# medgan benchmark: {r['dataset']['name']}, target class {target}", "",
             "Does adding GAN samples help the classifier, and by how much"
             + (", at each amount of real training data?" if sweep else "?"), ""]
    if sweep:
        lines += ["**Answer.**", ""] + [f"- At {_share(b)} of the train split ({b['n_real']} real images): "
                                        f"{b['verdict']['answer']}" for b in blocks] + [""]
    else:
        lines += [f"**Answer.** {r['verdict']['answer']}", ""]
    lines += [f"> **Caution.** {line}\n" for line in r["verdict"]["caveats"]]
    if not sweep:
        lines += [f"- {line}" for line in r["verdict"]["lines"]]
    lines += ["", f"Numbers are percentages on the real test split ({n_test} images), mean over the seeds, with {conf} "
              "confidence intervals. A difference is significant when its interval excludes 0. Secondary comparisons "
              "carry Holm-adjusted p-values.", ""]
    if sweep:
        lines += ["## Lift curve", "", "![balanced accuracy and target recall against real training images]"
                  "(lift_curve.png)", "", "| fraction | real train images | primary comparison | difference (points) | "
                  f"{conf} CI | p | detectable lift (points) | reading |", "|---|---|---|---|---|---|---|---|"]
        for b in blocks:
            p = b["primary"]
            comp = next((c for c in b["comparisons"] if c["primary"]), None)
            if comp is None:
                lines.append(f"| {fraction_label(b['fraction'])} | {b['n_real']} | none | | | | | |")
                continue
            c = comp["metrics"][p["metric"]]
            mde = f"{100 * b['power']['lift']:.1f}" if b["power"] and math.isfinite(b["power"]["lift"]) else "n/a"
            lines.append(f"| {fraction_label(b['fraction'])} | {b['n_real']} | {p['arm']} vs {p['baseline']}, "
                         f"{_label(p['metric'], names)} | {100 * c['diff']:+.1f} | {_ci(c['ci_low'], c['ci_high'])} | "
                         f"{_p(c['p_bootstrap'])} | {mde} | {_READING.get(b['verdict'].get('kind'), '')} |")
        lines.append("")
        for b in blocks:
            lines += [f"## Fraction {fraction_label(b['fraction'])}: {b['n_real']} real training images "
                      f"({len(b['seeds'])} seeds)", "", f"**Verdict.** {b['verdict']['answer']}", ""]
            lines += [f"- {line}" for line in b["verdict"]["lines"]] + [""]
            lines += _fraction_markdown(r, b, cfg, "###")
    else:
        lines += _fraction_markdown(r, blocks[0], cfg, "##")
    lines += _gan_section(r, cfg, names, blocks)
    budget, per = r["budget"], r.get("budget_per_fraction")
    if per:
        steps = ("the same optimisation steps for every arm of a fraction, counted on the fraction's real images ("
                 + ", ".join(f"{label}: {b['steps']}" for label, b in per.items())
                 + f"; validation {cfg.classifier.epochs} times; the pretraining arms pretrain for "
                 f"{cfg.pretrain.share:.0%} of them)")
    elif budget:
        steps = (f"{budget['steps']} optimisation steps for every arm at every fraction (validation every "
                 f"{budget['eval_every']} steps; the pretraining arms pretrain for {budget['pretrain_steps']} of them)")
    else:
        steps = "the same budget for every arm"
    lines += ["## Method", "",
              f"- Data: `{r['dataset']['name']}` (sha256 {r['dataset']['sha256'][:12]}…), official splits: "
              f"train {sum(r['dataset']['counts']['train'])}, val {sum(r['dataset']['counts']['val'])}, "
              f"test {n_test}. "
              + (f"Fractions {', '.join(fraction_label(f) for f in r['fractions'])}: stratified, seeded subsets of the "
                 f"train split, nested across fractions (subset seed = seed mod {cfg.subsets}); val and test whole. "
                 if sweep or r["fractions"] != [1.0] else "")
              + "Each GAN trains on its fraction's training images only; val picks the checkpoint; test is used once "
              "per run.",
              f"- Classifier: `{cfg.classifier.arch}`, {steps}, batch {cfg.classifier.batch_size}, AdamW lr "
              f"{cfg.classifier.lr:g}, loss weighting `{cfg.classifier.class_weighting}`; the same for every arm. "
              "Every arm of a seed starts from the same weights and the same shuffling seed (initial-weight hashes in "
              "results.json).",
              f"- Synthetic data: policy `{cfg.synthetic.policy}`"
              + (f" (ratio {cfg.synthetic.ratio:g})" if cfg.synthetic.policy == "ratio" else "")
              + "; drawn per seed (seed k samples with sampling seed k), the same images for every arm of a seed. "
              "`synthetic-only` trains on as many synthetic images per class as the real training set has; "
              "`real+oversample` repeats real images up to the counts `real+synthetic` adds; `synthetic-pretrain` "
              f"pretrains on {cfg.pretrain.ratio:g} × the real count; `real+curated-synthetic` keeps images a "
              f"classifier trained on the real images gives their class with probability ≥ {cfg.curation.confidence:g}"
              " and that are no likely copy."
              + (f" The ratio sweep varies `{cfg.synthetic.ratio_arm}` (`synthetic.ratio_arm`) over "
                 f"{', '.join(f'{x:g}' for x in cfg.synthetic.ratios)} × the real count per class"
                 + (f" at fractions up to {cfg.synthetic.ratio_upto:g}" if cfg.synthetic.ratio_upto is not None else "")
                 + "; a ratio equal to the arm's own is the arm itself and is not run twice."
                 if cfg.synthetic.ratios else ""),
              f"- Intervals: {r['method']['ci']}. Paired differences use the same replicates for both arms.",
              f"- Tests: {r['method']['paired_test']}; significant when {r['method']['significant']}; "
              f"{r['method']['multiplicity']}.",
              "", "See docs/benchmark.md for how to read this report and its limits.", ""]
    return "\n".join(lines)


def _gan_section(r: dict[str, Any], cfg: BenchmarkConfig, names: list[str], blocks: list[dict[str, Any]]) -> list[str]:
    from medgan.metrics.report import metric_reading

    lines: list[str] = []
    for b in blocks:
        gan = b["gan"]
        if gan["checkpoint"] is None:
            continue
        title = "## The GAN" + (f" at fraction {fraction_label(b['fraction'])}" if len(blocks) > 1 else "")
        lines += [title, "", f"- Checkpoint: `{gan['checkpoint']}`"
                  + (f" (trained here on {b['n_real']} real images, {gan['training']['steps']} steps, "
                     f"{gan['training']['seconds']:.0f} s)" if gan["training"] else " (given with --checkpoint)")]
        added = b["training_sets"].get("real+synthetic") or b["training_sets"].get("real+classical+synthetic")
        if added:
            lines.append("- Synthetic images added per class: "
                         + ", ".join(f"{n} {name}" for name, n in zip(names, added["synthetic"], strict=True)))
        lines.append("")
        if gan["fidelity"] is None:
            lines += [f"_{gan['fidelity_note'] or 'fidelity not computed'}_", ""]
        else:
            keys = ["c2st/auc", "c2st/real_vs_real_auc",
                    *sorted(k for k in gan["fidelity"] if k.startswith("c2st/auc/class_")),
                    "swd/mean", "swd/real_vs_real_mean", "values/near_modes_real", "values/near_modes_synthetic",
                    "values/components_real", "values/components_synthetic",
                    *sorted(k for k in gan["fidelity"] if k.startswith(("values/foreground_", "values/size_auc_", "values/depth_"))),
                    "fid", "kid_mean", "precision", "recall", "density", "coverage", "memorisation/fraction",
                    "memorisation/n_likely_copies", "memorisation/p_value", "memorisation/n_train",
                    "domain_classifier/accuracy", "domain_classifier/balanced_accuracy"]
            audited = gan["fidelity"].get("memorisation/n_train")
            against = "the memorisation audit against the " + (
                f"{audited:.0f} images this GAN learnt from" if audited is not None and b["fraction"] < 1
                else "same split")
            lines += [f"Fidelity and memorisation of {cfg.fidelity.n_per_class} fresh samples per class: fidelity "
                      f"against the whole real train split, {against} (`medgan.metrics.evaluate`, domain feature "
                      "space; see docs/metrics.md):",
                      "", "| metric | value | reading |", "|---|---|---|"]
            for k in keys:
                if k in gan["fidelity"]:
                    v = float(gan["fidelity"][k])
                    lines.append(f"| `{k}` | {v:.4g} | {metric_reading(k, v)} |")
            lines.append("")
        grids = [f for f in b["figures"] if f.startswith("samples_")]
        lines += [f"![{f}]({f})" for f in grids]
        pairs = [f for f in b["figures"] if f.startswith("memorisation_pairs")]
        lines += [f"![closest synthetic / training pairs]({f})" for f in pairs]
        lines.append("")
    return lines


def print_summary(results: dict[str, Any], console: Any) -> None:
    """The answer and a per-arm table on the terminal."""
    from rich.table import Table

    names = results["dataset"]["class_names"]
    target = results["target_class"]["name"]
    key_t = f"recall/{class_slugs(names)[results['target_class']['index']]}"
    def cell(s: dict[str, Any]) -> str:
        return f"{_pts(s['mean'])} [{_pts(s['ci_low'])}, {_pts(s['ci_high'])}]"

    conf = results["config"]["bootstrap"]["confidence"]
    blocks = list(results.get("by_fraction", {}).values()) or [results]
    for block in blocks:
        where = (f", fraction {fraction_label(block['fraction'])}: {block['n_real']} real images"
                 if len(blocks) > 1 else "")
        table = Table(title=f"medgan benchmark: {results['dataset']['name']}{where} (test split, % [{conf:.0%} CI])")
        table.add_column("arm", no_wrap=True)
        for col in ("balanced accuracy", f"{target} recall", "macro AUROC"):
            table.add_column(col, justify="right")
        for arm in block["arms"]:
            m = block["metrics"][arm]
            table.add_row(arm, cell(m["balanced_accuracy"]), cell(m[key_t]), cell(m["auroc_macro"]))
        console.print(table)
    console.print(f"[bold]Answer.[/] {results['verdict']['answer']}", highlight=False)
    for line in results["verdict"].get("caveats", []):
        console.print(f"[yellow]Caution.[/] {line}", highlight=False)
