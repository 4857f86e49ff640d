"""`medgan data list | fetch | info` through Typer's CliRunner: exit codes and what is printed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.data.registry import REGISTRY
from medgan.utils import file_sha256

WIDE = {"COLUMNS": "200"}  # Rich tables fit on one line per row


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_data_list_table(runner: CliRunner) -> None:
    result = runner.invoke(app, ["data", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    rows = {line.split()[0]: line for line in lines if line.split()[0] in REGISTRY}
    assert set(rows) == set(REGISTRY)
    breast = rows["breastmnist"].split()
    assert breast == ["breastmnist", "2D", "1", "2", "28,64,128,224", "546", "78", "156"]
    adrenal = rows["adrenalmnist3d"].split()
    assert adrenal == ["adrenalmnist3d", "3D", "1", "2", "28,64", "1188", "98", "298"]
    assert "multi-label" in rows["chestmnist"]
    assert "CC BY-NC" in rows["dermamnist"]


def test_data_list_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert len(rows) == 18
    derma = rows["dermamnist"]
    assert derma["label_names"][4] == "melanoma"
    assert derma["md5"]["28"] == "0744692d530f8e62ec473284d019b0c7"
    assert derma["urls"]["64"] == "https://zenodo.org/records/10519652/files/dermamnist_64.npz?download=1"
    assert rows["synapsemnist3d"]["sizes"] == [28, 64]
    assert rows["pneumoniamnist"]["n_samples"] == {"train": 4708, "val": 524, "test": 624}


@pytest.mark.parametrize("command", ["list", "fetch", "info"])
def test_every_command_has_help_with_an_example(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, ["data", command, "--help"], env=WIDE)
    assert result.exit_code == 0
    assert f"Example: medgan data {command}" in result.stdout


def test_data_info_breastmnist_from_the_mirror(runner: CliRunner, medmnist_dir: Path, tmp_path: Path) -> None:
    env = {**WIDE, "MEDGAN_MIRROR": str(medmnist_dir), "MEDGAN_HOME": str(tmp_path / "home")}
    result = runner.invoke(app, ["data", "info", "breastmnist"], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    cells = [line.replace("│", " ").split() for line in out.splitlines() if line.startswith("│")]
    assert ["0", "malignant", "147", "21", "42", "210"] in cells
    assert ["1", "normal,", "benign", "399", "57", "114", "570"] in cells
    assert ["all", "546", "78", "156", "780"] in cells
    assert "2.71 ('normal, benign' 399 / 'malignant' 147, train)" in out
    assert "size  28×28" in out and "channels  1" in out and "spatial dims  2D" in out
    assert file_sha256(medmnist_dir / "breastmnist.npz") in out
    assert "Al-Dhabyani" in out and "Scientific Data 10, 41 (2023)" in out


def test_data_info_size_option(runner: CliRunner, medmnist_dir: Path, tmp_path: Path) -> None:
    env = {"MEDGAN_MIRROR": str(medmnist_dir), "MEDGAN_HOME": str(tmp_path / "home")}
    result = runner.invoke(app, ["data", "info", "breastmnist", "--size", "64", "--json"], env=env)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["size"] == [64, 64] and info["path"] == str(medmnist_dir / "breastmnist_64.npz")
    assert info["counts"]["train"] == [147, 399]
    assert info["imbalance_train"] == pytest.approx(399 / 147)


def test_data_fetch_reports_mirror(runner: CliRunner, medmnist_dir: Path, tmp_path: Path) -> None:
    env = {"MEDGAN_MIRROR": str(medmnist_dir), "MEDGAN_HOME": str(tmp_path / "home")}
    result = runner.invoke(app, ["data", "fetch", "adrenalmnist3d_64"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(medmnist_dir / "adrenalmnist3d_64.npz")
    assert "found in MEDGAN_MIRROR" in result.stderr
    assert "MD5 17721accfe9fb005146a47d33bc54b2f verified" in result.stderr


def _made_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    counts = {"train": [6, 2, 0], "val": [1, 1, 1], "test": [2, 1, 1]}
    arrays = {}
    for split, per_class in counts.items():
        labels = np.repeat(np.arange(3), per_class).astype(np.uint8)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(len(labels), 16, 16, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = labels[:, None]
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_data_info_on_an_npz_made_here(runner: CliRunner, tmp_path: Path) -> None:
    npz = _made_npz(tmp_path / "tiny.npz")
    result = runner.invoke(app, ["data", "info", str(npz)], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    cells = [line.replace("│", " ").split() for line in out.splitlines() if line.startswith("│")]
    assert cells == [["0", "0", "6", "1", "2", "9"], ["1", "1", "2", "1", "1", "4"],
                     ["2", "2", "0", "1", "1", "2"], ["all", "8", "3", "4", "15"]]
    assert "no train images of '2'" in out
    assert "channels  3" in out and "size  16×16" in out
    assert file_sha256(npz) in out
    assert "license" not in out  # not an official MedMNIST file


def test_data_info_json_imbalance_for_a_made_npz(runner: CliRunner, tmp_path: Path) -> None:
    npz = _made_npz(tmp_path / "tiny.npz")
    result = runner.invoke(app, ["data", "info", str(npz), "--json"])
    info = json.loads(result.stdout)
    assert info["counts"]["train"] == [6, 2, 0]
    assert info["imbalance_train"] is None  # a class with no training images
    assert info["channels"] == 3 and info["spatial_dims"] == 2


def test_unknown_name_exits_2_listing_known_names(runner: CliRunner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["data", "info", "kneemnist"], ["data", "fetch", "kneemnist"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: unknown dataset 'kneemnist' (known: adrenalmnist3d, ")
        assert "breastmnist" in result.stderr and "vesselmnist3d)" in result.stderr
        assert "Traceback" not in result.output


def test_unknown_size_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["data", "fetch", "nodulemnist3d", "--size", "224"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: nodulemnist3d has no size 224 (available: 28, 64)"


def test_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "info", str(tmp_path / "none.npz")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'none.npz'}: dataset file not found"
