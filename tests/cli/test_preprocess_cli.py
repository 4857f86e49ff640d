"""`medgan preprocess` through Typer's CliRunner: a good run, --help, and every bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.data.dataset import load_dataset
from tests.data.helpers import make_nifti_csv, make_png_tree

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["preprocess", *map(str, args)])
    return result.exit_code, result.output


def assert_error(args: list[str | Path], message: str, out: Path) -> None:
    """Exit 2, one ``error:`` line naming the problem, no traceback, and no output folder."""
    code, output = run(*args)
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], output
    assert "Traceback" not in output
    if out.exists():
        assert not any(p.name.endswith(".tmp") for p in out.parent.iterdir()), list(out.parent.iterdir())
    else:
        assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())


def test_help_has_an_example() -> None:
    code, output = run("--help")
    assert code == 0
    assert "Example: medgan preprocess ./scans --out prepared/ --size 64" in output
    for option in ("--out", "--csv", "--size", "--window", "--slices", "--n-slices", "--channels", "--overwrite"):
        assert option in output


def test_png_tree(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=10)
    out = tmp_path / "prepared"
    code, output = run(tmp_path / "src", "--out", out, "--size", "8", "--seed", "1", "--no-progress")
    assert code == 0, output
    assert "8x8 grey images" in output and "benign" in output and "malignant" in output
    ds = load_dataset(out)
    assert ds.info.counts == {"train": [7, 7], "val": [1, 1], "test": [2, 2]}
    assert ds.images["train"].shape == (14, 8, 8) and ds.info.preprocessing["seed"] == 1
    # A second run is refused, then allowed with --overwrite.
    assert_error([tmp_path / "src", "--out", out, "--size", "8"], "folder exists and is not empty", out)
    assert load_dataset(out).info.size == [8, 8]
    code, output = run(tmp_path / "src", "--out", out, "--size", "4", "--overwrite", "--no-progress")
    assert code == 0, output
    assert load_dataset(out).info.size == [4, 4]


def test_csv_nifti_with_negative_window(tmp_path: Path) -> None:
    manifest = make_nifti_csv(tmp_path / "data")
    out = tmp_path / "out"
    code, output = run("--csv", manifest, "--out", out, "--size", "8", "--slices", "sagittal",
                       "--n-slices", "2", "--window", "-2,2", "--no-progress")
    assert code == 0, output
    ds = load_dataset(out)
    assert sum(ds.info.counts["train"]) == 16 and ds.images["val"].shape == (8, 8, 8)
    assert ds.info.preprocessing["window"] == [-2.0, 2.0] and ds.info.preprocessing["slices"] == "sagittal"
    assert "grouped by patient" in output


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    assert_error([tmp_path / "src", "--out", tmp_path / "out"], "src: folder is empty", tmp_path / "out")


def test_class_folder_without_images(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=3)
    (tmp_path / "src" / "notes").mkdir()
    (tmp_path / "src" / "notes" / "readme.txt").write_text("no images here")
    assert_error([tmp_path / "src", "--out", tmp_path / "out"], "notes: class folder has no images", tmp_path / "out")


def test_unreadable_image(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=3)
    (tmp_path / "src" / "benign" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert_error([tmp_path / "src", "--out", tmp_path / "out"], "broken.png: not a readable image", tmp_path / "out")


@pytest.mark.parametrize(("header", "missing"), [("path,diagnosis", "label"), ("file,label", "path")])
def test_csv_missing_a_column(tmp_path: Path, header: str, missing: str) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"{header}\na.png,x\n")
    assert_error([manifest, "--out", tmp_path / "out"], f"m.csv: CSV manifest has no '{missing}' column",
                 tmp_path / "out")


def test_csv_naming_a_missing_file(tmp_path: Path) -> None:
    manifest = make_nifti_csv(tmp_path / "data")
    with open(manifest, "a") as fh:
        fh.write("vols/ghost.nii.gz,healthy,H99\n")
    assert_error(["--csv", manifest, "--out", tmp_path / "out", "--slices", "axial"],
                 "line 18: vols/ghost.nii.gz does not exist", tmp_path / "out")


def test_class_too_small_to_split(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=6)
    for p in sorted((tmp_path / "src" / "malignant").iterdir())[2:]:
        p.unlink()
    assert_error([tmp_path / "src", "--out", tmp_path / "out"],
                 "class 'malignant' has 2 images; at least 3 are needed", tmp_path / "out")


def test_bad_option_values(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=3)
    out = tmp_path / "out"
    assert_error([tmp_path / "src", "--out", out, "--window", "400"], "--window: expected 2 comma-separated", out)
    assert_error([tmp_path / "src", "--out", out, "--spacing", "a,b,c"], "--spacing: expected 1 or 3", out)
    assert_error([tmp_path / "src", "--out", out, "--channels", "2"], "--channels must be 1 or 3", out)
    assert_error(["--out", out], "give a source folder (SRC) or a CSV manifest (--csv)", out)
    code, output = run(tmp_path / "src", "--out", out, "--slices", "oblique")
    assert code == 2 and "oblique" in output


def test_failure_keeps_the_previous_output(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=5)
    out = tmp_path / "out"
    assert run(tmp_path / "src", "--out", out, "--size", "8", "--no-progress")[0] == 0
    before = (out / "dataset.npz").read_bytes()
    (tmp_path / "src" / "benign" / "broken.png").write_bytes(np.random.default_rng(0).bytes(50))
    assert_error([tmp_path / "src", "--out", out, "--overwrite"], "broken.png: not a readable image", out)
    assert (out / "dataset.npz").read_bytes() == before
