"""How an evaluation is shown: a Markdown summary, a Rich table and PNG figures.

Figures use matplotlib's object API (``Figure`` + Agg canvas), so nothing touches pyplot's global
state. A 3D volume is shown by its central slice along the first spatial axis.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medgan.data.dataset import class_slugs
from medgan.metrics.evaluate import PER_CLASS_METRICS
from medgan.utils import atomic_file

if TYPE_CHECKING:
    from rich.table import Table

    from medgan.metrics.c2st import C2STRanking
    from medgan.metrics.memorisation import MemorisationAudit

__all__ = [
    "class_tables",
    "metric_reading",
    "rich_tables",
    "save_c2st_extremes",
    "save_class_grid",
    "save_memorisation_pairs",
    "summary_markdown",
]

_READINGS: dict[str, str] = {
    "n_real": "real training images the synthetic set is compared with",
    "n_synthetic": "synthetic images evaluated",
    "c2st/auc": "a small CNN tells synthetic from real training images with ROC AUC {x} (out of fold); "
    "0.5 = indistinguishable, 1.0 = every synthetic image recognisable; compare with the real-vs-real floor",
    "c2st/auc_std": "spread of that AUC over the cross-validation folds",
    "c2st/twin_share": "{pct} of the real images tested have a near-duplicate among them (the same scan twice); "
    "each is kept in one fold with its twin, so the CNN cannot score it by memory",
    "c2st/n_per_side": "images per side in the two-sample test (balanced)",
    "c2st/real_vs_real_auc": "the same test, real train against held-out real images: the floor (about 0.5)",
    "c2st/real_vs_real_auc_std": "its spread over the folds",
    "swd/mean": "sliced Wasserstein distance (x10^3) between Laplacian-pyramid patches, averaged over "
    "levels; lower is closer; compare with the real-vs-real floor",
    "swd/real_vs_real_mean": "the same distance, real train against held-out real images: the floor",
    "values/components_real": "real masks hold {x} connected pieces each on average (an organ is one piece)",
    "values/components_synthetic": "synthetic masks hold {x}; well above the real count means speckle or fragments",
    "values/one_piece_real": "{pct} of real masks are a single piece",
    "values/one_piece_synthetic": "{pct} of synthetic masks are",
    "values/near_modes_real": "{pct} of real voxels lie within 0.1 of the data's two values (mask-like data)",
    "values/near_modes_synthetic": "{pct} of synthetic voxels do; far below the real share means grey, "
    "not mask-like, output",
    "values/foreground_real": "real masks fill {pct1} of the image on average",
    "values/foreground_synthetic": "synthetic masks fill {pct1}; a class far from its real size draws the "
    "wrong organ size",
    "values/size_auc_real": "the mask's size alone tells this class from the others with ROC AUC {x} in real "
    "data (0.5: size carries no class; below 0.5: the class is the smaller)",
    "values/size_auc_synthetic": "the same in the synthetic set; on the other side of 0.5 from the real figure, "
    "the generator draws the class sizes backwards",
    "values/depth_real": "the foreground's mean depth in real masks: {x} voxels (city-block distance to the "
    "background, 1 on the surface; thicker organs read higher)",
    "values/depth_synthetic": "the same in synthetic masks: {x}; far from the real figure, the generator draws "
    "the organ too thick or too thin",
    "values/depth_auc_real": "the mask's thickness alone tells this class from the others with ROC AUC {x} in "
    "real data (0.5: thickness carries no class)",
    "values/depth_auc_synthetic": "the same in the synthetic set; nearer 0.5 than the real figure, the draws "
    "carry less of the class's thickness than real masks do",
    "values/mode_low": "the lower of the two grey levels of the mask-like real data",
    "values/mode_high": "the higher of the two",
    "fid": "Fréchet distance between real-train and synthetic feature distributions; lower is closer, "
    "0 is identical; biased upwards at small n, so compare only at equal n",
    "kid_mean": "kernel distance between the feature distributions, unbiased at small n; about 0 when they match",
    "kid_std": "spread of KID over random subsets; differences smaller than this are noise",
    "precision": "{pct} of synthetic images fall inside the real data's manifold (fidelity)",
    "recall": "{pct} of real training images fall inside the synthetic manifold (diversity)",
    "density": "synthetic images sit in {x} times as many real neighbourhoods as expected; ~1 matches, "
    "> 1 crowds typical images",
    "coverage": "{pct} of real training images have a synthetic image nearby (diversity, robust to outliers)",
    "fid/class_mean": "mean of the per-class FIDs: does each class look like its own real class?",
    "memorisation/fraction": "{pct1} of synthetic images are nearer a training image than 99% of real test "
    "images are; about 1% is expected by chance, more suggests copying",
    "memorisation/n_likely_copies": "synthetic images flagged as likely copies: look at memorisation_pairs.png",
    "memorisation/threshold": "the flagging distance: 1st percentile of real-test-to-train distances",
    "memorisation/min_distance": "the smallest synthetic-to-train distance (0 means an exact copy in feature space)",
    "memorisation/median_distance": "median synthetic-to-train distance",
    "memorisation/median_reference_distance": "median real-test-to-train distance, for comparison",
    "memorisation/p_value": "the chance of this many likely copies from a generator that copies nothing "
    "(beta-binomial; small says it reproduces training images)",
    "memorisation/n_train": "the training images audited: those the generator learnt from",
    "domain_classifier/accuracy": "the feature net classifies {pct} of real test images correctly; "
    "the feature space is only as meaningful as this",
    "domain_classifier/balanced_accuracy": "the same, averaged over classes ({pct}; 1/K is chance)",
    "domain_is": "Inception-Score-like figure with the domain classifier ({x}; 1 to the class count): rewards "
    "confident, class-balanced predictions, not realism or within-class variety; compare with real test",
    "domain_is/real_test": "the same figure for real held-out images ({x})",
    "domain_is/max": "its upper bound, the number of classes",
}


def metric_reading(key: str, value: float) -> str:
    """A one-line plain-language reading of one metric value."""
    base, _, cls = key.partition("/class_")
    template = _READINGS.get(key if key in _READINGS else base, "")
    if not template and base.startswith("swd/level_"):
        template = f"sliced Wasserstein distance (x10^3) at the {base.removeprefix('swd/level_')}-pixel pyramid level"
    if not math.isfinite(value):
        text = template.format(pct="?", pct1="?", x="?")
    else:
        text = template.format(pct=f"{value:.0%}", pct1=f"{value:.1%}", x=f"{value:.2f}")
    if cls and key != "fid/class_mean":
        text = f"class {cls}: {text}"
    return text


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4g}"


def _is_per_class(key: str) -> bool:
    return "/class_" in key and key != "fid/class_mean"


def class_tables(metrics: dict[str, float], class_names: list[str]) -> list[tuple[str, dict[str, float]]]:
    """Per-class metrics as rows ``(class name, {metric: value})``, in class order."""
    rows = []
    for name, slug in zip(class_names, class_slugs(class_names), strict=True):
        row = {m: metrics[f"{m}/class_{slug}"] for m in PER_CLASS_METRICS if f"{m}/class_{slug}" in metrics}
        if row:
            rows.append((name, row))
    return rows


def summary_markdown(
    metrics: dict[str, float], class_names: list[str], *, title: str, notes: list[str] | None = None
) -> str:
    """A Markdown summary: the whole-set metrics with a reading each, then a per-class table.

    Args:
        metrics: from :func:`medgan.metrics.evaluate`.
        class_names: names by label index.
        title: the page title.
        notes: lines shown under the title (provenance: real and synthetic sources, feature net).
    """
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes or []]
    lines += ["", "| metric | value | reading |", "|---|---|---|"]
    for key, value in metrics.items():
        if not _is_per_class(key):
            lines.append(f"| `{key}` | {_fmt(value)} | {metric_reading(key, value)} |")
    rows = class_tables(metrics, class_names)
    if rows:
        cols = [m for m in PER_CLASS_METRICS if any(m in r for _, r in rows)]
        lines += ["", "## Per class", "", "| class | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for name, row in rows:
            lines.append(f"| {name} | " + " | ".join(_fmt(row[c]) if c in row else "" for c in cols) + " |")
        lines += [
            "",
            "Each column reads as the whole-set metric above, restricted to one class: the class's "
            "synthetic images against the same class's real training images. A class whose FID is "
            "far above the others is the one the generator renders worst.",
        ]
    lines += ["", "See docs/metrics.md for what each metric means in the domain feature space and how it fails.", ""]
    return "\n".join(lines)


def rich_tables(metrics: dict[str, float], class_names: list[str]) -> list[Table]:
    """Rich tables for the terminal: whole-set metrics with readings, then per class."""
    from rich.table import Table

    main = Table(title="medgan evaluate", show_lines=False)
    main.add_column("metric", style="bold", no_wrap=True)
    main.add_column("value", justify="right", no_wrap=True)
    main.add_column("reading", overflow="fold")
    for key, value in metrics.items():
        if not _is_per_class(key):
            main.add_row(key, _fmt(value), metric_reading(key, value))
    tables = [main]
    rows = class_tables(metrics, class_names)
    if rows:
        # Metrics as rows and classes as columns: seven numbers per class fit a terminal this way.
        per = Table(title="per class")
        per.add_column("metric", style="bold", no_wrap=True)
        for name, _ in rows:
            per.add_column(name, justify="right", overflow="fold")
        for m in PER_CLASS_METRICS:
            if any(m in r for _, r in rows):
                per.add_row(m, *(_fmt(r[m]) if m in r else "" for _, r in rows))
        tables.append(per)
    return tables


def _display(image: np.ndarray) -> np.ndarray:
    """uint8 ``(C, *spatial)`` -> a 2D grey or ``(H, W, 3)`` array; 3D shows its central slice."""
    if image.ndim == 4:  # (C, D, H, W)
        image = image[:, image.shape[1] // 2]
    return image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)


def _save_figure(fig: object, path: Path, dpi: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # type: ignore[arg-type]
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")  # type: ignore[attr-defined]


def _show(ax: object, image: np.ndarray) -> None:
    ax.imshow(_display(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest")  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def _save_panels(path: Path, panels: list[tuple[str, np.ndarray]], title: str, per_row: int = 2) -> Path:
    """Labelled panels of images, ``per_row`` panels a row, eight images a panel row, under a wrapped title."""
    from matplotlib.figure import Figure

    cols, cell, gap, label_h = 8, 0.6, 0.3, 0.25
    rows = max(1, *(math.ceil(len(images) / cols) for _, images in panels))
    panel_rows = math.ceil(len(panels) / per_row)
    width = per_row * cols * cell + (per_row - 1) * gap
    lines = textwrap.wrap(title, width=int(width * 13)) or [""]  # ~13 characters per inch at 9 pt: none cut off
    head = 0.5 + 0.15 * (len(lines) - 1)
    height = head + panel_rows * rows * cell + (panel_rows - 1) * label_h
    fig = Figure(figsize=(width, height))
    for p, (label, images) in enumerate(panels):
        pr, pc = divmod(p, per_row)
        left = pc * (cols * cell + gap) / width
        top = 1 - (head + pr * (rows * cell + label_h)) / height
        grid = fig.add_gridspec(
            rows, cols, left=left + 0.005, right=left + cols * cell / width - 0.005,
            bottom=top - rows * cell / height, top=top, wspace=0.04, hspace=0.04,
        )
        for j in range(rows * cols):
            ax = fig.add_subplot(grid[j // cols, j % cols])
            if j < len(images):
                _show(ax, images[j])
            else:
                ax.set_axis_off()
        fig.text(left + 0.005, top + 0.04 / height, label, fontsize=8)
    fig.suptitle("\n".join(lines), fontsize=9, y=0.99, va="top")
    _save_figure(fig, path, dpi=100)
    return path


def save_class_grid(
    path: str | Path, real: np.ndarray, synthetic: np.ndarray, title: str, n: int = 32, seed: int = 0
) -> Path:
    """Real (left) and synthetic (right) images of one class, up to ``n`` of each, as a PNG.

    Args:
        path: the PNG to write (atomically).
        real: uint8 ``(N, C, *spatial)`` real images of the class.
        synthetic: uint8 ``(M, C, *spatial)`` synthetic images of the class.
        title: shown above the figure.
        n: images per side (a seeded random subset when there are more).
        seed: seeds the subset.
    """
    rng = np.random.default_rng(seed)
    pick_r = np.sort(rng.permutation(len(real))[:n])
    pick_s = np.sort(rng.permutation(len(synthetic))[:n])
    panels = [(f"real ({len(real)})", real[pick_r]), (f"synthetic ({len(synthetic)})", synthetic[pick_s])]
    return _save_panels(Path(path), panels, title)


def save_c2st_extremes(
    path: str | Path, ranking: C2STRanking, real: np.ndarray, synthetic: np.ndarray, title: str, n: int = 16
) -> Path:
    """What the two-sample CNN saw: the synthetic images it told apart most and least easily, and the real
    images it found most and least real, ``n`` of each, as one PNG.

    Read the top row against the bottom-left panel: what the most easily spotted synthetic images
    lack, or have, that the most real-looking real images do not is the generator's defect, named.

    Args:
        path: the PNG to write (atomically).
        ranking: from :func:`medgan.metrics.c2st.c2st_ranking` on these two sets.
        real: the real images the test was run on, uint8 ``(N, C, *spatial)``.
        synthetic: the synthetic images, uint8 ``(M, C, *spatial)``.
        title: shown above the figure.
        n: images per panel, most extreme first.
    """
    spotted, hidden = ranking.synthetic_extremes(n)
    most_real, least_real = ranking.real_extremes(n)
    panels = [
        ("synthetic: most easily told apart", synthetic[spotted]),
        ("synthetic: hardest to tell apart", synthetic[hidden]),
        ("real: scored most real", real[most_real]),
        ("real: scored least real", real[least_real]),
    ]
    return _save_panels(Path(path), panels, title)


def save_memorisation_pairs(
    path: str | Path,
    audit: MemorisationAudit,
    synthetic: np.ndarray,
    train: np.ndarray,
    n: int = 16,
) -> Path:
    """The ``n`` synthetic images nearest the training set, each beside its nearest training image.

    Each pair is labelled with the two indices and their feature distance; pairs under the
    memorisation threshold (likely copies) are labelled in red.

    Args:
        path: the PNG to write (atomically).
        audit: from :func:`medgan.metrics.memorisation.memorisation_audit`.
        synthetic: uint8 ``(M, C, *spatial)``, in the order the audit saw them.
        train: uint8 ``(N, C, *spatial)`` real training images, in the order the audit saw them.
        n: pairs to show.
    """
    from matplotlib.figure import Figure

    pairs = audit.closest_pairs(n)
    per_row, cell, gap, label_h, head = 4, 0.9, 0.25, 0.3, 0.45
    rows = max(1, math.ceil(len(pairs) / per_row))
    width = per_row * (2 * cell + gap)
    height = rows * (cell + label_h) + head
    fig = Figure(figsize=(width, height))
    for p in range(len(pairs)):
        s_idx, r_idx, dist = pairs[p]
        row, col = divmod(p, per_row)
        x0 = col * (2 * cell + gap) + gap / 2
        y0 = height - head - (row + 1) * (cell + label_h) + label_h
        for j, image in enumerate((synthetic[s_idx], train[r_idx])):
            ax = fig.add_axes(((x0 + j * cell) / width, y0 / height, cell / width * 0.97, cell / height))
            _show(ax, image)
        colour = "red" if dist < audit.threshold else "black"
        fig.text(
            x0 / width, (y0 - 0.05) / height, f"syn {s_idx} | train {r_idx}  d={dist:.3g}",
            fontsize=7, color=colour, va="top",
        )
    fig.suptitle(
        f"closest synthetic | training pairs (threshold {audit.threshold:.3g}; red = likely copy)",
        fontsize=9, y=0.99,
    )
    path = Path(path)
    _save_figure(fig, path, dpi=100)
    return path
