"""The benchmark's report: ``results.json``, ``report.md`` with a plain-language verdict, and PNGs.

Figures (matplotlib's object API with an Agg canvas, written atomically):

- ``metrics.png``: balanced accuracy and target-class recall per arm, CI whiskers, seeds as dots;
- ``confusion_matrices.png``: one matrix per arm, summed over seeds, coloured by row share;
- ``training_curves.png``: validation balanced accuracy per epoch per arm (mean and each seed);
- ``samples_<class>.png``: real and synthetic images of every class, side by side;
- ``memorisation_pairs.png``: the synthetic images closest to a training image.

The verdict calls a difference significant when its confidence interval excludes 0, and says so
in words: "raised", "lowered ...: it hurt", or "the interval covers 0, so there is no evidence of
a lift". See :mod:`medgan.benchmark.stats` for how the intervals are made.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.stats import compare, make_resampler, metric_names, metric_values, summarise
from medgan.configio import config_to_dict
from medgan.data.dataset import PreparedDataset, class_slugs
from medgan.errors import MedganError
from medgan.utils import atomic_file, write_text_atomic

__all__ = ["COMPARISONS", "caveats", "print_summary", "verdict", "write_report"]

COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("real+synthetic", "real", "Adding synthetic data to the real images"),
    ("real+classical", "real", "Classical augmentation"),
    ("real+classical+synthetic", "real", "Classical augmentation plus synthetic data"),
    ("real+classical+synthetic", "real+classical", "Adding synthetic data on top of classical augmentation"),
    ("real+synthetic", "real+classical", "Synthetic data instead of classical augmentation"),
    ("synthetic-only", "real", "Training on synthetic images only, testing on real ones"),
)
"""``(arm, baseline, phrase)``: the paired differences reported, when both arms ran."""

_COLOURS = {"real": "#7f7f7f", "real+classical": "#1f77b4", "real+synthetic": "#ff7f0e",
            "real+classical+synthetic": "#9467bd", "synthetic-only": "#d62728"}

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


def caveats(summaries: dict[str, dict[str, Any]], fidelity: dict[str, float] | None, num_classes: int,
            seeds: int, quick: bool) -> list[str]:
    """Warnings that change how the answer should be read, from the results themselves.

    Args:
        summaries: per arm, per metric, from :func:`medgan.benchmark.stats.summarise`.
        fidelity: the GAN's ``medgan.metrics.evaluate`` numbers, or None.
        num_classes: K (chance balanced accuracy is 1/K).
        seeds: seeds per arm.
        quick: whether ``--quick`` settings were used.
    """
    out = []
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
    auc = (fidelity or {}).get("c2st/auc")
    if auc is not None and math.isfinite(auc) and auc > C2ST_CAUTION:
        out.append(f"A small CNN tells this GAN's samples from real training images with ROC AUC {auc:.2f} "
                   f"(C2ST; 0.5 = indistinguishable, caution above {C2ST_CAUTION}): the synthetic arms test this "
                   "weak GAN, not GAN augmentation. Look at samples_<class>.png.")
    coverage = (fidelity or {}).get("coverage")
    if coverage is not None and math.isfinite(coverage) and coverage < 0.25:
        out.append(f"The synthetic images cover only {coverage:.0%} of the real training images (coverage in the "
                   "domain feature space): look at samples_<class>.png before trusting any synthetic arm.")
    return out


def verdict(comparisons: list[dict[str, Any]], headline: list[str], class_names: list[str],
            confidence: float) -> dict[str, Any]:
    """The answer to "does adding GAN samples help?", and one sentence per comparison.

    Args:
        comparisons: ``{"arm", "baseline", "phrase", "metrics": {key: compare(...)}}`` items.
        headline: the metric keys the verdict speaks about (target recall, balanced accuracy).
        class_names: names by label index.
        confidence: the intervals' coverage.

    Returns:
        ``{"answer": str, "lines": [str, ...]}``.
    """
    lines = []
    for comp in comparisons:
        clauses = [_clause(comp["metrics"][k], _label(k, class_names), confidence) for k in headline]
        lines.append(f"{comp['phrase']} ({comp['arm']} vs {comp['baseline']}) " + "; it ".join(clauses) + ".")
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
    """Validation balanced accuracy per epoch: the mean over seeds (thick) and every seed (thin)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for arm, runs in histories.items():
        colour = _COLOURS.get(arm, "#333333")
        curves = [[100 * row["val_balanced_accuracy"] for row in h] for h in runs]
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), curve, color=colour, lw=0.5, alpha=0.35)
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        ax.plot(range(1, length + 1), mean, color=colour, lw=1.8, label=arm)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("val balanced accuracy (%)")
    ax.set_title("validation balanced accuracy per epoch (thin: seeds; thick: mean)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


# Section. The GAN's fidelity and memorisation.


def _fidelity(out: Path, cfg: BenchmarkConfig, ds: PreparedDataset, checkpoint: str,
              device: str) -> tuple[dict[str, float] | None, str | None, list[str]]:
    """``medgan.metrics.evaluate`` of a fresh synthetic draw; sample grids and memorisation pairs."""
    from medgan.metrics.evaluate import evaluate_detailed
    from medgan.metrics.report import save_class_grid, save_memorisation_pairs
    from medgan.synth.sampling import sample_classes
    from medgan.synth.translate import LoadedTranslator, load_model

    names = list(ds.info.class_names)
    gen = load_model(checkpoint, device)
    if isinstance(gen, LoadedTranslator):  # a CycleGAN: a translated draw, audited against both domains
        return _translator_fidelity(out, cfg, ds, gen, device)
    images, labels, _ = sample_classes(gen, cfg.fidelity.n_per_class, seed=cfg.fidelity.seed, device=device)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    figures = []
    for c, (name, slug) in enumerate(zip(names, class_slugs(names), strict=True)):
        figures.append(save_class_grid(out / f"samples_{slug}.png", real_x[real_y == c], images[labels == c],
                                       title=f"{ds.info.name}: {name} (left real train, right synthetic)").name)
    try:
        ev = evaluate_detailed(ds, (images, labels), arch=cfg.fidelity.arch, device=device, seed=0,
                               feature_epochs=cfg.fidelity.feature_epochs)
    except MedganError as exc:
        return None, f"fidelity not computed: {exc}", figures
    if ev.audit is not None:
        figures.append(save_memorisation_pairs(out / "memorisation_pairs.png", ev.audit, images, real_x).name)
    return ev.metrics, None, figures


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
                                 device=device, feature_epochs=cfg.fidelity.feature_epochs)
    except MedganError as exc:
        return None, f"fidelity not computed: {exc}", []
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    figures = [save_class_grid(out / f"samples_{slug}{suffix}.png", real_x[real_y == c], ev.images[ev.labels == c],
                               title=f"{ds.info.name}: {name} (left real train, right translated)").name
               for c, (name, slug) in enumerate(zip(names, class_slugs(names), strict=True)) if (ev.labels == c).any()]
    return ev.metrics, None, figures


# Section. Aggregation and the files.


def _aggregate(cfg: BenchmarkConfig, ds: PreparedDataset, runs: dict[tuple[str, int], dict[str, Any]],
               target: int) -> dict[str, Any]:
    import hashlib

    names = list(ds.info.class_names)
    labels = ds.labels["test"]
    seeds = list(range(cfg.seeds))
    want = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    for (arm, seed), run in runs.items():
        if run["test_labels_sha256"] != want:
            raise MedganError(f"run {arm}:{seed} was tested on other test labels than {ds.info.name}'s")
    res = make_resampler(labels, len(seeds), resamples=cfg.bootstrap.resamples, seed=cfg.bootstrap.seed,
                         resample_seeds=cfg.bootstrap.resample_seeds, confidence=cfg.bootstrap.confidence)
    keys = metric_names(names, target)
    point: dict[str, dict[str, np.ndarray]] = {}
    boot: dict[str, dict[str, np.ndarray]] = {}
    for arm in cfg.arms:
        probas = np.stack([np.asarray(runs[(arm, s)]["test_proba"], dtype=np.float64) for s in seeds])  # (S, n, K)
        point[arm] = {k: v[:, 0] for k, v in metric_values(labels, probas, np.arange(len(labels))[None], names).items()}
        boot[arm] = metric_values(labels, probas, res.cases, names)
    summaries = {arm: {k: summarise(point[arm][k], boot[arm][k], res) for k in keys} for arm in cfg.arms}
    comparisons = []
    for arm, base, phrase in COMPARISONS:
        if arm in cfg.arms and base in cfg.arms:
            comparisons.append({"arm": arm, "baseline": base, "phrase": phrase, "metrics": {
                k: compare(point[arm][k], boot[arm][k], point[base][k], boot[base][k], res) for k in keys}})
    return {"keys": keys, "summaries": summaries, "comparisons": comparisons, "resamples": res.resamples}


def write_report(
    out: Path,
    cfg: BenchmarkConfig,
    ds: PreparedDataset,
    target: int,
    runs: dict[tuple[str, int], dict[str, Any]],
    *,
    checkpoint: str | None,
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
        runs: ``{(arm, seed): run record}`` for every arm and seed of ``cfg``.
        checkpoint: the GAN checkpoint (None when no arm used synthetic data).
        quick: whether ``--quick`` settings were used (said in the report).
        console: a Rich console for a status line.
        progress: show the status line.

    Returns:
        The content of ``results.json``.
    """
    from rich.console import Console

    from medgan.device import resolve_device

    names = list(ds.info.class_names)
    slugs = class_slugs(names)
    seeds = list(range(cfg.seeds))
    console = console or Console(quiet=not progress)
    agg = _aggregate(cfg, ds, runs, target)
    summaries, comparisons = agg["summaries"], agg["comparisons"]
    headline = [f"recall/{slugs[target]}", "balanced_accuracy"]
    said = verdict(comparisons, headline, names, cfg.bootstrap.confidence)

    # Section. Figures.
    figures = [
        save_metric_bars(out / "metrics.png", summaries, headline[::-1], names, cfg.bootstrap.confidence).name,
        save_confusion_matrices(out / "confusion_matrices.png", {
            arm: np.sum([runs[(arm, s)]["confusion_matrix"] for s in seeds], axis=0) for arm in cfg.arms}, names).name,
        save_training_curves(out / "training_curves.png",
                             {arm: [runs[(arm, s)]["history"] for s in seeds] for arm in cfg.arms}).name,
    ]
    fidelity, fidelity_note = None, None
    if checkpoint is not None and cfg.fidelity.enabled:
        with console.status("measuring the GAN's fidelity and memorisation"):
            fidelity, fidelity_note, more = _fidelity(out, cfg, ds, checkpoint, str(resolve_device(cfg.device)))
        figures += more

    said["caveats"] = caveats(summaries, fidelity, len(names), len(seeds), quick)

    # Section. results.json.
    gan_marker = out / "gan.json"
    results = {
        "format": "medgan-benchmark-results-v1",
        "question": "does adding GAN samples help the classifier, and by how much?",
        "verdict": said,
        "quick": quick,
        "dataset": {"name": ds.info.name, "path": str(ds.path), "sha256": ds.info.sha256, "class_names": names,
                    "counts": ds.info.counts},
        "target_class": {"index": target, "name": names[target]},
        "arms": list(cfg.arms),
        "seeds": seeds,
        "training_sets": {arm: runs[(arm, 0)]["n_train"] for arm in cfg.arms},
        "metrics": summaries,
        "comparisons": comparisons,
        "confusion_matrices": {arm: {"summed": np.sum([runs[(arm, s)]["confusion_matrix"] for s in seeds], axis=0)
                                     .tolist(), "per_seed": [runs[(arm, s)]["confusion_matrix"] for s in seeds]}
                               for arm in cfg.arms},
        "selected_epochs": {arm: [runs[(arm, s)]["selected_epoch"] for s in seeds] for arm in cfg.arms},
        "init_sha256": {str(s): runs[(cfg.arms[0], s)]["init_sha256"] for s in seeds},
        "seconds": {arm: [runs[(arm, s)]["seconds"] for s in seeds] for arm in cfg.arms},
        "gan": {
            "checkpoint": checkpoint,
            "trained_here": gan_marker.is_file(),
            "training": json.loads(gan_marker.read_text()) if gan_marker.is_file() else None,
            "fidelity": fidelity,
            "fidelity_note": fidelity_note,
        },
        "method": {
            "selection": "epoch with the best validation balanced accuracy (official val split)",
            "ci": (f"{cfg.bootstrap.confidence:.0%} percentile bootstrap, {agg['resamples']} replicates; each "
                   "replicate resamples test cases within each true class"
                   + (" and the training seeds" if cfg.bootstrap.resample_seeds else "")
                   + ", and averages the metric over the drawn seeds"),
            "paired_test": "paired bootstrap over the same replicates (two-sided p); paired t-test over seeds",
            "significant": "the confidence interval of the difference excludes 0",
        },
        "config": config_to_dict(cfg),
        "figures": figures,
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2, default=_json_default) + "\n")
    write_text_atomic(out / "report.md", _markdown(results, cfg, agg["keys"], headline))
    return results


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cell(s: dict[str, Any]) -> str:
    return f"{_pts(s['mean'])} ({_ci(s['ci_low'], s['ci_high'])})"


def _markdown(r: dict[str, Any], cfg: BenchmarkConfig, keys: list[str], headline: list[str]) -> str:
    names = r["dataset"]["class_names"]
    target = r["target_class"]["name"]
    conf = f"{cfg.bootstrap.confidence:.0%}"
    n_test = sum(r["dataset"]["counts"]["test"])
    lines = [f"# medgan benchmark: {r['dataset']['name']}, target class {target}", "",
             "Does adding GAN samples help the classifier, and by how much?", "",
             f"**Answer.** {r['verdict']['answer']}", ""]
    lines += [f"> **Caution.** {line}\n" for line in r["verdict"]["caveats"]]
    lines += [f"- {line}" for line in r["verdict"]["lines"]]
    lines += ["", f"Numbers are percentages on the real test split ({n_test} images), mean over "
              f"{len(r['seeds'])} seeds, with {conf} confidence intervals. A difference is significant when its "
              "interval excludes 0.", "", "## Results per arm", ""]
    head = ["arm", "train images (real + synthetic)", *[_label(k, names) for k in keys[:6]], "selected epochs"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for arm in r["arms"]:
        n = r["training_sets"][arm]
        sizes = f"{sum(n['real'])} + {sum(n['synthetic'])}"
        cells = [_cell(r["metrics"][arm][k]) for k in keys[:6]]
        lines.append(f"| {arm} | {sizes} | " + " | ".join(cells) + f" | {', '.join(map(str, r['selected_epochs'][arm]))} |")
    lines += ["", "![balanced accuracy and target recall per arm](metrics.png)", "",
              "## Differences (paired by seed and test case)", "",
              "| comparison | metric | difference (points) | " + conf + " CI | bootstrap p | t-test p (seeds) | "
              "seeds better / worse | reading |", "|---|---|---|---|---|---|---|---|"]
    for comp in r["comparisons"]:
        for k in [*headline, "auroc_macro", f"f1/{headline[0].partition('/')[2]}"]:
            c = comp["metrics"][k]
            reading = ("significant lift" if c["ci_low"] > 0 else "it hurt" if c["ci_high"] < 0
                       else "no evidence of a difference")
            lines.append(f"| {comp['arm']} vs {comp['baseline']} | {_label(k, names)} | {100 * c['diff']:+.1f} | "
                         f"{_ci(c['ci_low'], c['ci_high'])} | {_p(c['p_bootstrap'])} | {_p(c['p_ttest'])} | "
                         f"{c['seeds_better']} / {c['seeds_worse']} of {c['n_seeds']} | {reading} |")
    lines += ["", "## Per class", "", "| arm | class | recall | precision | F1 |", "|---|---|---|---|---|"]
    for arm in r["arms"]:
        order = [r["target_class"]["index"]] + [i for i in range(len(names)) if i != r["target_class"]["index"]]
        for i in order:
            slug = class_slugs(names)[i]
            cells = [_cell(r["metrics"][arm][f"{m}/{slug}"]) for m in ("recall", "precision", "f1")]
            lines.append(f"| {arm} | {names[i]} | " + " | ".join(cells) + " |")
    lines += ["", "## Confusion matrices", "", "Test predictions summed over seeds (rows: true class; columns: "
              "predicted). The per-seed matrices are in results.json.", "",
              "![confusion matrices](confusion_matrices.png)", "", "## Training curves", "",
              "![validation balanced accuracy per epoch](training_curves.png)", ""]
    lines += _gan_section(r, cfg, names)
    lines += ["## Method", "",
              f"- Data: `{r['dataset']['name']}` (sha256 {r['dataset']['sha256'][:12]}…), official splits: "
              f"train {sum(r['dataset']['counts']['train'])}, val {sum(r['dataset']['counts']['val'])}, "
              f"test {n_test}. The GAN trains on the train split only; val picks the epoch; test is used once per run.",
              f"- Classifier: `{cfg.classifier.arch}`, {cfg.classifier.epochs} epochs, batch {cfg.classifier.batch_size}, "
              f"AdamW lr {cfg.classifier.lr:g}, loss weighting `{cfg.classifier.class_weighting}`; the same for every "
              "arm. Every arm of a seed starts from the same weights and the same shuffling seed "
              f"(initial-weight hashes in results.json); seeds {r['seeds'][0]}..{r['seeds'][-1]}.",
              f"- Synthetic data: policy `{cfg.synthetic.policy}`"
              + (f" (ratio {cfg.synthetic.ratio:g})" if cfg.synthetic.policy == "ratio" else "")
              + "; drawn per seed (seed k samples with sampling seed k), the same images for every arm of a seed. "
              "`synthetic-only` trains on as many synthetic images per class as the real train split has.",
              f"- Intervals: {r['method']['ci']}. Paired differences use the same replicates for both arms.",
              f"- Tests: {r['method']['paired_test']}; significant when {r['method']['significant']}.",
              "", "See docs/benchmark.md for how to read this report and its limits.", ""]
    return "\n".join(lines)


def _gan_section(r: dict[str, Any], cfg: BenchmarkConfig, names: list[str]) -> list[str]:
    from medgan.metrics.report import metric_reading

    gan = r["gan"]
    if gan["checkpoint"] is None:
        return []
    lines = ["## The GAN", "", f"- Checkpoint: `{gan['checkpoint']}`"
             + (f" (trained here, {gan['training']['steps']} steps, {gan['training']['seconds']:.0f} s)"
                if gan["training"] else " (given with --checkpoint)")]
    added = r["training_sets"].get("real+synthetic") or r["training_sets"].get("real+classical+synthetic")
    if added:
        lines.append("- Synthetic images added per class: "
                     + ", ".join(f"{n} {name}" for name, n in zip(names, added["synthetic"], strict=True)))
    lines.append("")
    if gan["fidelity"] is None:
        lines += [f"_{gan['fidelity_note'] or 'fidelity not computed'}_", ""]
    else:
        keys = ["c2st/auc", "c2st/real_vs_real_auc", *sorted(k for k in gan["fidelity"] if k.startswith("c2st/auc/class_")),
                "swd/mean", "swd/real_vs_real_mean", "values/near_modes_real", "values/near_modes_synthetic",
                "fid", "kid_mean", "precision", "recall", "density", "coverage", "memorisation/fraction",
                "memorisation/n_likely_copies", "domain_classifier/accuracy", "domain_classifier/balanced_accuracy"]
        lines += [f"Fidelity and memorisation of {cfg.fidelity.n_per_class} fresh samples per class "
                  "(`medgan.metrics.evaluate`, domain feature space; see docs/metrics.md):", "",
                  "| metric | value | reading |", "|---|---|---|"]
        for k in keys:
            if k in gan["fidelity"]:
                v = float(gan["fidelity"][k])
                lines.append(f"| `{k}` | {v:.4g} | {metric_reading(k, v)} |")
        lines.append("")
    grids = [f for f in r["figures"] if f.startswith("samples_")]
    lines += [f"![{f}]({f})" for f in grids]
    if "memorisation_pairs.png" in r["figures"]:
        lines.append("![closest synthetic / training pairs](memorisation_pairs.png)")
    return [*lines, ""]


def print_summary(results: dict[str, Any], console: Any) -> None:
    """The answer and a per-arm table on the terminal."""
    from rich.table import Table

    names = results["dataset"]["class_names"]
    target = results["target_class"]["name"]
    key_t = f"recall/{class_slugs(names)[results['target_class']['index']]}"
    def cell(s: dict[str, Any]) -> str:
        return f"{_pts(s['mean'])} [{_pts(s['ci_low'])}, {_pts(s['ci_high'])}]"

    conf = results["config"]["bootstrap"]["confidence"]
    table = Table(title=f"medgan benchmark: {results['dataset']['name']} (test split, % [{conf:.0%} CI])")
    table.add_column("arm", no_wrap=True)
    for col in ("balanced accuracy", f"{target} recall", "macro AUROC"):
        table.add_column(col, justify="right")
    for arm in results["arms"]:
        m = results["metrics"][arm]
        table.add_row(arm, cell(m["balanced_accuracy"]), cell(m[key_t]), cell(m["auroc_macro"]))
    console.print(table)
    console.print(f"[bold]Answer.[/] {results['verdict']['answer']}", highlight=False)
    for line in results["verdict"].get("caveats", []):
        console.print(f"[yellow]Caution.[/] {line}", highlight=False)
