"""Usability defects of #15, through the real CLI: the README's commands run, nothing is silently ignored."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medgan.benchmark.config import default_config_path, load_benchmark_config
from medgan.cli.main import app
from medgan.configio import packaged_configs
from medgan.data.dataset import load_dataset
from medgan.data.registry import REGISTRY
from medgan.metrics.evaluate import load_synthetic
from medgan.metrics.features import get_feature_extractor
from medgan.training.loop import train
from tests.conftest import make_banded_toy, make_dark_bright_toy
from tests.training.helpers import tiny_config

REPO = Path(__file__).resolve().parents[2]
CHEAP_EVAL = ["--feature-epochs", "1", "--c2st-folds", "2", "--c2st-steps", "5", "--device", "cpu"]

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _invoke(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A two-step run on a 16² two-class toy (24 + 24 training images)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("usability")
    data = make_banded_toy(root)
    run = train(tiny_config(data, root / "run", "steps=2"), progress=False).run_dir
    return {"data": data, "run": run}


# The README tour and the evaluate docs name what augment writes.


def _tour() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## A tour of the CLI", 1)[1].split("```", 2)[1]
    return [line.split("#")[0].split() for line in block.splitlines() if line.startswith("medgan ")]


def test_the_readme_tour_evaluates_the_folder_that_augment_writes() -> None:
    tour = _tour()
    augment = next(t for t in tour if t[1] == "augment")
    evaluate = next(t for t in tour if t[1] == "evaluate")
    written = augment[augment.index("--out") + 1].rstrip("/")
    assert evaluate[evaluate.index("--synthetic") + 1].rstrip("/") == written
    # Every class, since evaluate measures each class of the real data.
    assert augment[augment.index("--class") + 1] == "all"
    metrics_doc = (REPO / "docs" / "metrics.md").read_text()
    assert "synthetic.npz" not in metrics_doc and "--synthetic synth/" in metrics_doc
    help_text = _invoke("evaluate", "--help").output
    assert "synthetic.npz" not in help_text and "--synthetic synth/" in help_text


def _augment(run: Path, out: Path, fmt: str) -> Path:
    wrote = _invoke(
        "augment",
        "--checkpoint",
        run,
        "--class",
        "all",
        "--n",
        6,
        "--format",
        fmt,
        "--out",
        out,
        "--device",
        "cpu",
        "--no-progress",
    )
    assert wrote.exit_code == 0, wrote.output
    return out


def test_evaluate_reads_the_png_folder_that_augment_wrote(trained: dict[str, Path], tmp_path: Path) -> None:
    synth = _augment(trained["run"], tmp_path / "synth", "png")
    out = tmp_path / "eval"
    result = _invoke("evaluate", "--real", trained["data"], "--synthetic", synth, "--out", out, *CHEAP_EVAL)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["metrics"]["n_synthetic"] == 12.0 and record["synthetic"] == str(synth)


def test_png_and_npz_exports_read_back_as_the_same_samples(trained: dict[str, Path], tmp_path: Path) -> None:
    real = load_dataset(trained["data"])
    sets = [load_synthetic(_augment(trained["run"], tmp_path / fmt, fmt), real) for fmt in ("png", "npz")]
    assert sets[0].images.shape == (12, 1, 16, 16) and sets[0].images.dtype == np.uint8
    np.testing.assert_array_equal(sets[0].labels, [0] * 6 + [1] * 6)
    np.testing.assert_array_equal(sets[0].images, sets[1].images)  # both lossless: the same pixels
    np.testing.assert_array_equal(sets[0].labels, sets[1].labels)


def test_a_png_export_of_other_classes_is_refused(trained: dict[str, Path], tmp_path: Path) -> None:
    synth = tmp_path / "synth"
    assert (
        _invoke(
            "augment",
            "--checkpoint",
            trained["run"],
            "--class",
            "all",
            "--n",
            6,
            "--out",
            synth,
            "--device",
            "cpu",
            "--no-progress",
        ).exit_code
        == 0
    )
    manifest = synth / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",class1,1,", ",tumour,1,"))
    result = _invoke(
        "evaluate", "--real", trained["data"], "--synthetic", synth, "--out", tmp_path / "e", *CHEAP_EVAL
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is class 1 'tumour', which the real data does not have" in result.output
    assert not (tmp_path / "e").exists()


# train --resume, as the README writes it.


def test_resume_as_the_readme_writes_it_names_the_checkpoint(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    run = tmp_path / "cgan_breastmnist"
    shutil.copytree(trained["run"], run)
    result = _invoke("train", "--resume", run, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "checkpoint None" not in result.output
    assert re.search(r"checkpoint \S*cgan_breastmnist/checkpoints/step_000002\.pt$", result.output.strip())


def test_resume_of_a_missing_run_names_the_path_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke("train", "--resume", "runs/cgan_breastmnist")
    assert result.exit_code == 2
    assert result.output.strip() == "error: runs/cgan_breastmnist: no such run folder or checkpoint"


# A minimal benchmark config, from any directory.


def test_a_minimal_benchmark_config_works_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("data: breastmnist\ntarget_class: malignant\n")
    cfg = load_benchmark_config("mine.yaml")
    assert Path(cfg.gan.train_config) == packaged_configs() / "train" / "cgan_breastmnist.yaml"
    assert default_config_path() == packaged_configs() / "benchmark" / "default.yaml"
    assert default_config_path().is_file()
    # A training config that is nowhere is still an error that says where it looked.
    (tmp_path / "bad.yaml").write_text("gan: {train_config: nowhere.yaml}\n")
    with pytest.raises(Exception, match=f"in the working directory, in {packaged_configs()}"):
        load_benchmark_config("bad.yaml")


# The feature net's cache.


def test_feature_epochs_is_not_ignored_when_a_net_is_cached(tmp_path: Path) -> None:
    """``evaluate --feature-epochs N`` calls ``get_feature_extractor(epochs=N)``: no net of other settings."""
    toy = make_dark_bright_toy(tmp_path / "toy")
    cache = tmp_path / "features"
    trained_epochs: list[list[float]] = []
    for epochs in (1, 2, 1):
        seen: list[float] = []
        fx = get_feature_extractor(
            toy,
            "cnn",
            epochs=epochs,
            seed=3,
            cache_dir=cache,
            progress=lambda row, seen=seen: seen.append(row["epoch"]),
        )
        assert fx.info["epochs"] == epochs
        trained_epochs.append(seen)
    assert trained_epochs == [[1.0], [1.0, 2.0], []]  # the third call reuses the first net
    assert len(list(cache.glob("*.pt"))) == 2
    # Another seed is another net too (evaluate --seed seeds the feature net).
    assert get_feature_extractor(toy, "cnn", epochs=1, seed=4, cache_dir=cache).info["seed"] == 4


# data list and data info.


def test_data_list_at_80_columns_shows_every_count() -> None:
    result = CliRunner().invoke(app, ["data", "list"], env={"COLUMNS": "80"})  # CliRunner is not a terminal
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in REGISTRY}
    assert set(rows) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        counts = [str(spec.n_samples[s]) for s in ("train", "val", "test")]
        assert rows[name][5:8] == counts, rows[name]


def test_data_info_words_a_tie_as_balanced(tmp_path: Path) -> None:
    data = make_banded_toy(tmp_path)  # 24 training images in each class
    result = _invoke("data", "info", data)
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("imbalance"))
    assert line.split(None, 1)[1] == "1.00 (balanced: 24 per class, train)"
