"""``OUT/index.md``: the first page of a ``medgan run`` folder.

It opens with the figures a reader needs first: how well a small CNN tells the synthetic images
from real ones (C2ST AUC against the real-vs-real floor), what share of each class the quality
gate kept, and what adding synthetic images did to the classifier (the lift with its confidence
interval, and the benchmark's verdict). Then one section per stage links every artefact. Stages
not run yet say so. The page depends only on the files, so a run that skips every stage leaves it
byte for byte as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medgan.data.dataset import class_slugs
from medgan.pipeline.labels import RunSources

__all__ = ["index_markdown", "write_index"]

_STAGE_TITLES = {
    "preprocess": "Prepared dataset",
    "train": "The GAN",
    "evaluate": "Fidelity and memorisation",
    "export": "The audited synthetic set",
    "benchmark": "Does it help a classifier?",
}


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _link(out: Path, rel: str, text: str | None = None) -> str | None:
    return f"[{text or rel}]({rel})" if (out / rel).exists() else None


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.0f} %"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _c2st_line(metrics: dict[str, Any] | None) -> str:
    if metrics is None:
        return "not measured yet (stage 3)"
    auc = metrics.get("c2st/auc")
    if auc is None:
        return "not computed: too few images for the two-sample test"
    line = f"**{auc:.2f}**"
    if "c2st/auc_std" in metrics:
        line += f" (± {metrics['c2st/auc_std']:.2f} over folds)"
    floor = metrics.get("c2st/real_vs_real_auc")
    if floor is not None:
        line += f" against a real-vs-real floor of {floor:.2f}"
    return line + " (0.5: a small CNN cannot tell them apart; 1.0: every synthetic image is recognisable)"


def _gate_line(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return "not exported yet (stage 4)"
    parts = [
        f"{name}: **{_pct(c['kept_share'])}** ({c['kept']} of {c['candidates']})"
        for name, c in gate["classes"].items()
    ]
    return "; ".join(parts)


GATE_CHANCE_MARGIN = 0.1
"""The gate's classifier is called no better than chance below this much above 1/K (balanced accuracy)."""


def _gate_caveat(gate: dict[str, Any] | None, num_classes: int) -> str | None:
    """A warning when the gate's classifier barely beats chance on the real test split."""
    score = (gate or {}).get("classifier", {}).get("test_balanced_accuracy")
    if score is None or not math.isfinite(score) or score >= 1 / num_classes + GATE_CHANCE_MARGIN:
        return None
    return (
        f"The quality gate's classifier reaches a balanced accuracy of {score:.2f} on the real test split "
        f"(chance {1 / num_classes:.2f}): its class check is little better than a coin, so the kept shares say "
        "little about the samples. More real data, or more evaluate.feature_epochs, make it meaningful."
    )


def _comparison(results: dict[str, Any], arm: str, baseline: str) -> dict[str, Any] | None:
    return next(
        (c for c in results.get("comparisons", []) if (c["arm"], c["baseline"]) == (arm, baseline)), None
    )


def _difference(results: dict[str, Any], comp: dict[str, Any]) -> str:
    """``arm vs baseline: target recall +x points (95% CI a to b); balanced accuracy ...``."""
    names = results["dataset"]["class_names"]
    target = results["target_class"]
    conf = results.get("config", {}).get("bootstrap", {}).get("confidence", 0.95)
    keys = [
        (f"recall/{class_slugs(names)[target['index']]}", f"{target['name']} recall"),
        ("balanced_accuracy", "balanced accuracy"),
    ]
    parts = []
    for key, label in keys:
        c = comp["metrics"].get(key)
        if c is not None:
            parts.append(
                f"{label} **{_pts(c['diff'])} points** ({conf:.0%} CI {_pts(c['ci_low'])} to "
                f"{_pts(c['ci_high'])})"
            )
    return f"{comp['arm']} vs {comp['baseline']}: " + "; ".join(parts)


def _lift_rows(results: dict[str, Any] | None) -> list[str]:
    """The lift from adding synthetic images to the real ones, and the benchmark's primary comparison
    (what its verdict speaks of) when that is another one."""
    if results is None:
        return ["| Lift from adding synthetic images to the real ones | not benchmarked yet (stage 5) |"]
    main = _comparison(results, "real+synthetic", "real")
    primary = next((c for c in results.get("comparisons", []) if c.get("primary")), None)
    rows = [
        "| Lift from adding synthetic images to the real ones | "
        + (_difference(results, main) if main is not None else "the benchmark ran no real+synthetic arm")
        + " |"
    ]
    if primary is not None and primary is not main:
        rows.append(
            f"| The benchmark's primary comparison ({primary['phrase']}) | {_difference(results, primary)} |"
        )
    return rows


def _stage_row(out: Path, k: int, name: str, record: dict[str, Any] | None) -> str:
    if record is None:
        return f"| {k} | {name} | not run yet | | |"
    link = _link(out, f"{name}/", f"{name}/") or name
    return f"| {k} | {name} | done | {record.get('seconds', 0):.0f} s | {link} |"


def _bullets(out: Path, items: list[tuple[str, str]]) -> list[str]:
    lines = []
    for rel, what in items:
        link = _link(out, rel)
        if link is not None:
            lines.append(f"- {link}: {what}")
    return lines


def _latest(out: Path, folder: str, pattern: str) -> str | None:
    found = sorted((out / folder).glob(pattern))
    return found[-1].relative_to(out).as_posix() if found else None


def index_markdown(
    out: Path, sources: RunSources, records: dict[str, dict[str, Any]], stages: Sequence[str]
) -> str:
    """The text of ``OUT/index.md``.

    Args:
        out: the run folder.
        sources: the run's inputs.
        records: the ``stage.json`` of every finished stage, by name.
        stages: every stage's name, in order.
    """
    info = _json(out / "preprocess" / "dataset.json")
    metrics_record = _json(out / "evaluate" / "metrics.json") if "evaluate" in records else None
    gate = _json(out / "export" / "gate.json") if "export" in records else None
    results = _json(out / "benchmark" / "results.json") if "benchmark" in records else None
    name = info["name"] if info else out.name
    names = sources.class_names
    lines = [
        f"# medgan run: {name}",
        "",
        f"From {len(sources.sources)} scans (labels from {sources.labels_from}) to a trained GAN, an audited "
        "synthetic set and a benchmark report. "
        f"Classes: {', '.join(names)}; the benchmark reports **{names[sources.target]}** first. "
        "Run the same `medgan run` command again to resume; delete a stage's folder to redo it and the stages "
        "after it.",
        "",
        "## First, the figures",
        "",
        "| question | answer |",
        "|---|---|",
        f"| Can a small CNN tell synthetic from real images? (C2ST ROC AUC) | "
        f"{_c2st_line(metrics_record['metrics'] if metrics_record else None)} |",
        f"| Share of each class that the quality gate kept | {_gate_line(gate)} |",
        *_lift_rows(results),
        f"| Verdict | {results['verdict']['answer'] if results else 'not benchmarked yet (stage 5)'} |",
        "",
    ]
    gate_caveat = _gate_caveat(gate, len(names))
    if gate_caveat:
        lines.append(f"> **Caution.** {gate_caveat}\n")
    if results and results.get("verdict", {}).get("caveats"):
        lines += [f"> **Caution.** {c}\n" for c in results["verdict"]["caveats"]]
    lines += ["## Stages", "", "| # | stage | status | time | output |", "|---|---|---|---|---|"]
    lines += [_stage_row(out, k, s, records.get(s)) for k, s in enumerate(stages, start=1)]
    lines += ["", "- [run.yaml](run.yaml): the source, the options and `--config` of this run", ""]

    # Section. One section per stage.
    if "preprocess" in records and info:
        lines += [f"## 1. {_STAGE_TITLES['preprocess']}", ""]
        kind = f"{'×'.join(map(str, info['size']))} {'RGB' if info['channels'] == 3 else 'grey'}"
        lines += [
            f"{kind} {'volumes' if info['spatial_dims'] == 3 else 'images'}, split "
            f"{info['preprocessing'].get('split_by', '')}.",
            "",
            "| class | train | val | test |",
            "|---|---|---|---|",
        ]
        for c, cls in enumerate(info["class_names"]):
            lines.append(
                f"| {cls} | " + " | ".join(str(info["counts"][s][c]) for s in ("train", "val", "test")) + " |"
            )
        lines.append("")
        lines += _bullets(
            out,
            [
                ("preprocess/dataset.npz", "the images, MedMNIST layout"),
                ("preprocess/dataset.json", "classes, size, counts, preprocessing, sha256"),
                ("preprocess/sources.csv", "which input became which image, its split and patient"),
                ("labels_matched.csv", "the labels CSV matched to files"),
            ],
        )
        unlabelled = records["preprocess"].get("summary", {}).get("unlabelled_inputs", 0)
        if unlabelled:
            lines.append(
                f"- {unlabelled} image(s) below the source are not named by the labels CSV and were left out"
            )
        lines.append("")
    if "train" in records:
        summary = records["train"].get("summary", {})
        derived = _json(out / "train" / "derived.json") or {}
        grid = _latest(out, "train/run/samples", "step_*.png")
        lines += [
            f"## 2. {_STAGE_TITLES['train']}",
            "",
            f"{summary.get('family', '')} GAN, {summary.get('steps', '?')} steps, from "
            f"`{Path(derived.get('base', '?')).name}`, {derived.get('reason', '')}.",
            "",
        ]
        lines += _bullets(
            out,
            [
                ("train/derived.json", "how the training config was derived from the data"),
                ("train/run/config.yaml", "the resolved training config"),
                (f"train/{summary.get('checkpoint', '')}", "the checkpoint (with its .sha256)"),
                ("train/run/metrics.jsonl", "losses and ADA p per log interval"),
                ("train/run/loss_curves.png", "loss curves"),
            ],
        )
        if grid is not None:
            lines += ["", f"![last sample grid]({grid})"]
        lines.append("")
    if metrics_record is not None:
        lines += [f"## 3. {_STAGE_TITLES['evaluate']}", ""]
        items = [
            ("evaluate/summary.md", "every metric with how to read it"),
            ("evaluate/metrics.json", "the numbers"),
        ]
        for cls, slug in zip(names, class_slugs(names), strict=True):
            items += [(f"evaluate/grid_class_{slug}.png", f"real and synthetic {cls}"),
                      (f"evaluate/c2st_extremes_class_{slug}.png",
                       f"the {cls} images the two-sample CNN told apart most and least easily")]
        items.append(("evaluate/memorisation_pairs.png", "the synthetic images closest to a training image"))
        lines += [*_bullets(out, items), ""]
    if gate is not None:
        lines += [
            f"## 4. {_STAGE_TITLES['export']}",
            "",
            f"Rule: {gate['rule']}. Likely-copy threshold {gate['threshold']:.4g} "
            f"(percentile {gate['percentile']:g} of the real test images' distances), classifier `{gate['classifier'].get('arch')}` "
            f"(real test balanced accuracy {gate['classifier'].get('test_balanced_accuracy') or float('nan'):.3f}).",
            "",
            "| class | candidates | kept | kept share | likely copies | not assigned to its class |",
            "|---|---|---|---|---|---|",
        ]
        for cls, c in gate["classes"].items():
            lines.append(
                f"| {cls} | {c['candidates']} | {c['kept']} | {_pct(c['kept_share'])} | {c['likely_copies']} | "
                f"{c['wrong_class']} |"
            )
        lines.append("")
        lines += _bullets(
            out,
            [
                ("export/synthetic/", "the kept samples, one folder per class"),
                ("export/synthetic/manifest.csv", "every kept sample: file, class, seed, sample index"),
                ("export/synthetic/provenance.json", "checkpoint, config and the gate"),
                ("export/gate.json", "the gate's settings and counts"),
                ("export/gate.csv", "every candidate: kept or dropped, and why"),
            ],
        )
        lines.append("")
    if results is not None:
        lines += [
            f"## 5. {_STAGE_TITLES['benchmark']}",
            "",
            f"**Answer.** {results['verdict']['answer']}",
            "",
        ]
        lines += _bullets(
            out,
            [
                ("benchmark/report.md", "the report: every arm, difference and interval"),
                ("benchmark/results.json", "the numbers"),
                ("benchmark/benchmark.yaml", "the derived benchmark config"),
            ],
        )
        lines += [
            f"- [{f}](benchmark/{f})" for f in results.get("figures", []) if (out / "benchmark" / f).is_file()
        ]
        if (out / "benchmark" / "metrics.png").is_file():
            lines += ["", "![balanced accuracy and target recall per arm](benchmark/metrics.png)"]
        lines.append("")
    return "\n".join(lines)


def write_index(
    out: Path, sources: RunSources, records: dict[str, dict[str, Any]], stages: Sequence[str]
) -> Path:
    """Write ``OUT/index.md`` (see :func:`index_markdown`) atomically, unless it already holds exactly this text."""
    from medgan.utils import write_text_atomic

    path = out / "index.md"
    text = index_markdown(out, sources, records, stages)
    if not (path.is_file() and path.read_text() == text):
        write_text_atomic(path, text)
    return path
