"""`medgan evaluate` through Typer's CliRunner: the real end-to-end run and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medgan.cli.main import app
from tests.conftest import make_dark_bright_toy, real_npz

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _invoke(*args: str | Path):
    # A short two-sample test: its own tests (tests/metrics/test_c2st.py) check what it detects.
    cheap = ["--c2st-folds", "2", "--c2st-steps", "20"]
    return runner.invoke(app, ["evaluate", *map(str, args), *cheap], terminal_width=160)


def _npz(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, train_images=images, train_labels=labels.reshape(-1, 1).astype(np.uint8))
    return path


def test_end_to_end_on_real_images(tmp_path: Path) -> None:
    real = real_npz("breastmnist.npz")
    with np.load(real) as d:
        syn = _npz(tmp_path / "syn.npz", d["test_images"], d["test_labels"])
    out = tmp_path / "eval"
    result = _invoke("--real", real, "--synthetic", syn, "--out", out)
    assert result.exit_code == 0, result.output

    assert sorted(p.name for p in out.iterdir()) == [
        "c2st_extremes_class_malignant.png", "c2st_extremes_class_normal_benign.png",
        "grid_class_malignant.png", "grid_class_normal_benign.png", "memorisation_pairs.png",
        "metrics.json", "summary.md",
    ]
    record = json.loads((out / "metrics.json").read_text())
    metrics = record["metrics"]
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["n_synthetic"] == 156.0 and metrics["n_real"] == 546.0
    assert metrics["precision"] >= 0.6 and metrics["recall"] >= 0.6
    assert metrics["memorisation/fraction"] <= 0.02
    assert {"fid/class_malignant", "coverage/class_normal_benign", "domain_classifier/accuracy"} <= metrics.keys()
    # Pixel metrics: real test images against real train are near the floor.
    assert {"c2st/auc", "c2st/auc_std", "c2st/real_vs_real_auc", "c2st/auc/class_malignant", "swd/mean",
            "swd/level_28", "swd/level_14", "swd/real_vs_real_mean", "swd/mean/class_malignant"} <= metrics.keys()
    assert 0.0 <= metrics["c2st/auc"] <= 1.0 and metrics["swd/mean"] > 0
    assert record["feature_net"]["arch"] == "cnn" and record["class_names"] == ["malignant", "normal, benign"]

    summary = (out / "summary.md").read_text()
    assert "| metric | value | reading |" in summary and "| class | c2st/auc |" in summary and "| fid |" in summary
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG and png.stat().st_size < 200_000

    # The Rich table on stdout.
    assert "medgan evaluate" in result.output and "memorisation/fraction" in result.output
    assert "c2st/auc" in result.output and "swd/mean" in result.output
    assert "per class" in result.output and "malignant" in result.output

    # A second run into the same folder is refused, then allowed with --overwrite.
    again = _invoke("--real", real, "--synthetic", syn, "--out", out)
    assert again.exit_code == 2 and "not empty" in again.output
    assert _invoke("--real", real, "--synthetic", syn, "--out", out, "--overwrite", "--n", "20").exit_code == 0
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n_synthetic"] == 40.0


@pytest.fixture
def toy(tmp_path: Path):
    return make_dark_bright_toy(tmp_path / "toy")


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_shape_mismatch_is_refused(toy, tmp_path: Path) -> None:
    vols = np.zeros((10, 8, 8, 8), np.uint8)
    syn = _npz(tmp_path / "vol.npz", vols, np.arange(10) % 2)
    _assert_one_line_error(_invoke("--real", toy.path.parent, "--synthetic", syn, "--out", tmp_path / "o"),
                           "(8, 8, 8)", "2D, 1 channel, 8×8", "dimensionality, channels and size")
    rgb = _npz(tmp_path / "rgb.npz", np.zeros((10, 8, 8, 3), np.uint8), np.arange(10) % 2)
    _assert_one_line_error(_invoke("--real", toy.path.parent, "--synthetic", rgb, "--out", tmp_path / "o"),
                           "(8, 8, 3)")
    assert not (tmp_path / "o").exists()


def test_too_few_samples_is_refused(toy, tmp_path: Path) -> None:
    syn = _npz(tmp_path / "few.npz", toy.images["test"][[0, 1, 2, 6, 7, 8, 9]], np.array([0, 0, 0, 1, 1, 1, 1]))
    _assert_one_line_error(_invoke("--real", toy.path.parent, "--synthetic", syn, "--out", tmp_path / "o"),
                           "class 'dark'", "3", "k+1 = 4")
    # A smaller k needs fewer.
    ok = _invoke("--real", toy.path.parent, "--synthetic", syn, "--out", tmp_path / "o", "--k", "2",
                 "--feature-epochs", "2")
    assert ok.exit_code == 0, ok.output


def test_missing_class_is_refused(toy, tmp_path: Path) -> None:
    syn = _npz(tmp_path / "dark.npz", toy.images["test"][:6], np.zeros(6, int))
    _assert_one_line_error(_invoke("--real", toy.path.parent, "--synthetic", syn, "--out", tmp_path / "o"),
                           "missing from the synthetic set: bright")


def test_bad_arch_and_missing_file(toy, tmp_path: Path) -> None:
    _assert_one_line_error(_invoke("--real", toy.path.parent, "--synthetic", tmp_path / "none.npz"), "not found")
    syn = _npz(tmp_path / "s.npz", toy.images["test"], toy.labels["test"])
    _assert_one_line_error(_invoke("--real", toy.path.parent, "--synthetic", syn, "--arch", "vit"),
                           "allowed: cnn, resnet10, resnet18, densenet121")


def test_the_volume_stride_option_is_offered_and_checked() -> None:
    shown = runner.invoke(app, ["evaluate", "--help"], terminal_width=200)
    assert shown.exit_code == 0 and "--c2st-volume-stride" in shown.output
    bad = runner.invoke(app, ["evaluate", "--real", "breastmnist", "--synthetic", "x.npz", "--c2st-volume-stride", "0"])
    assert bad.exit_code != 0 and "c2st-volume-stride" in bad.output and "Traceback" not in bad.output
