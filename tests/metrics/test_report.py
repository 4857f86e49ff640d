"""Markdown summary, Rich tables and PNG figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgan.metrics.c2st import C2STRanking
from medgan.metrics.memorisation import memorisation_audit
from medgan.metrics.report import (
    metric_reading,
    rich_tables,
    save_c2st_extremes,
    save_class_grid,
    save_memorisation_pairs,
    summary_markdown,
)

METRICS = {
    "n_real": 546.0, "n_synthetic": 156.0, "fid": 0.66, "kid_mean": 0.016, "kid_std": 0.017,
    "precision": 0.94, "recall": 0.9, "density": 0.88, "coverage": 0.42,
    "fid/class_malignant": 9.9, "precision/class_malignant": 0.79,
    "fid/class_normal_benign": 1.45, "precision/class_normal_benign": 0.79,
    "fid/class_mean": 5.68, "memorisation/fraction": 0.0128,
}
NAMES = ["malignant", "normal, benign"]

PNG = b"\x89PNG\r\n\x1a\n"


def test_readings_put_numbers_in_words() -> None:
    assert metric_reading("precision", 0.94).startswith("94% of synthetic images")
    assert "1.3% of synthetic images" in metric_reading("memorisation/fraction", 0.0128)
    assert metric_reading("precision/class_malignant", 0.79).startswith("class malignant: 79%")
    assert metric_reading("density", 1.5).startswith("synthetic images sit in 1.50 times")
    assert metric_reading("something/new", 1.0) == ""


def test_summary_markdown_has_both_tables() -> None:
    md = summary_markdown(METRICS, NAMES, title="t", notes=["real: x"])
    lines = md.splitlines()
    assert lines[0] == "# t" and "- real: x" in lines
    assert "| metric | value | reading |" in lines
    assert any(line.startswith("| `precision` | 0.94 | 94% of synthetic") for line in lines)
    assert "| class | fid | precision |" in lines
    assert "| normal, benign | 1.45 | 0.79 |" in lines
    assert not any(line.startswith("| `fid/class_malignant`") for line in lines)  # per class: second table only
    assert any(line.startswith("| `fid/class_mean`") for line in lines)


def test_rich_tables() -> None:
    main, per = rich_tables(METRICS, NAMES)
    assert main.row_count == 11 and per.row_count == 2  # fid and precision, one column per class
    assert [c.header for c in per.columns] == ["metric", *NAMES]


@pytest.mark.parametrize("spatial", [(28, 28), (16, 16, 16)])
def test_figures_are_small_pngs(tmp_path: Path, spatial: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, size=(40, 1, *spatial), dtype=np.uint8)
    syn = rng.integers(0, 256, size=(20, 1, *spatial), dtype=np.uint8)
    grid = save_class_grid(tmp_path / "grid.png", real, syn, title="class x")
    f_real = real.reshape(40, -1).astype(float)
    f_syn = syn.reshape(20, -1).astype(float)
    f_syn[:3] = f_real[:3]
    audit = memorisation_audit(f_syn, f_real, rng.normal(128, 70, size=(30, f_real.shape[1])))
    pairs = save_memorisation_pairs(tmp_path / "pairs.png", audit, syn, real)
    for path in (grid, pairs):
        assert path.read_bytes()[:8] == PNG
        assert path.stat().st_size < 200_000
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_a_long_grid_title_wraps_onto_a_taller_figure(tmp_path: Path) -> None:
    from PIL import Image

    imgs = np.random.default_rng(2).integers(0, 256, size=(8, 1, 28, 28), dtype=np.uint8)
    short = Image.open(save_class_grid(tmp_path / "short.png", imgs, imgs, title="malignant")).size
    long_title = "malignant (" + "a label that runs on, " * 12 + "seed 0)"
    tall = Image.open(save_class_grid(tmp_path / "long.png", imgs, imgs, title=long_title)).size
    assert tall[0] == short[0] and tall[1] > short[1]  # same width, one more line of title


def test_rgb_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(5, 3, 12, 12), dtype=np.uint8)
    assert save_class_grid(tmp_path / "rgb.png", imgs, imgs[:0], title="rgb").read_bytes()[:8] == PNG


def test_c2st_extremes_shows_each_panel_its_own_images(tmp_path: Path) -> None:
    """Top row: synthetic told apart most / least easily; bottom row: real scored most / least real."""
    from PIL import Image

    n = 16
    # Synthetic image i scores i: the lowest scores (told apart) are white, the highest (hidden) black.
    syn = np.zeros((2 * n, 1, 28, 28), np.uint8)
    syn[:n] = 255
    # Real image i scores -i: the highest scores (most real) are white, the lowest black.
    real = np.zeros((2 * n, 1, 28, 28), np.uint8)
    real[:n] = 255
    idx = np.arange(2 * n)
    ranking = C2STRanking(idx, -idx.astype(float), idx, idx.astype(float))
    path = save_c2st_extremes(tmp_path / "x.png", ranking, real, syn, title="class x", n=n)
    assert path.read_bytes()[:8] == PNG
    im = np.asarray(Image.open(path).convert("L"), dtype=float)
    h, w = im.shape
    body = im[int(0.2 * h):]  # below the title
    bh = body.shape[0]
    quarter = lambda r, c: body[r * bh // 2 + bh // 8:(r + 1) * bh // 2 - bh // 8,  # noqa: E731
                                c * w // 2 + w // 8:(c + 1) * w // 2 - w // 8].mean()
    assert quarter(0, 0) > 200 and quarter(1, 0) > 200  # white images: told apart / most real
    assert quarter(0, 1) < 60 and quarter(1, 1) < 60  # black images: hidden / least real
