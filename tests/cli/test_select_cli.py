"""`medgan select` through Typer's CliRunner: two tiny mask GANs ranked, the JSON it writes, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgan.api import train
from medgan.cli.main import app
from medgan.data.dataset import load_dataset
from medgan.metrics.selection import score_run
from medgan.synth.sampling import load_generator
from tests.conftest import make_banded_toy, make_square_masks
from tests.training.helpers import tiny_config

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("select")
    data = make_square_masks(root / "squares", counts=(16, 16)).path
    out = [train(tiny_config(data, root / f"s{s}", f"seed={s}", "model.g_binary=true"), progress=False).run_dir
           for s in (0, 1)]
    return data, out


def _invoke(*args: str | Path):
    return runner.invoke(app, ["select", *map(str, args), "--no-progress"], terminal_width=200)


def test_ranks_the_runs_and_writes_the_figures(runs, tmp_path):
    data, (a, b) = runs
    result = _invoke(a, b, "--out", tmp_path / "sel.json")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "sel.json").read_text())
    ds = load_dataset(data)
    expected = sorted((score_run(load_generator(r, "cpu"), ds, str(r)) for r in (a, b)), key=lambda s: s.distance)
    assert [r["run"] for r in record["ranking"]] == [s.run for s in expected]
    assert [r["distance"] for r in record["ranking"]] == pytest.approx([s.distance for s in expected])
    assert record["keep"] == expected[0].run and record["seed"] == 0
    assert {"values/components_synthetic", "mask_distance/class_gap", "mask_distance/sizes",
            "mask_distance/pieces"} <= record["ranking"][0]["metrics"].keys()
    assert f"keep: {expected[0].run}" in result.output and "Mask distance" in result.output


def test_a_narrow_terminal_folds_run_names_and_never_cuts_them(runs):
    _, (a, b) = runs
    result = runner.invoke(app, ["select", str(a), str(b), "--no-progress"], terminal_width=60)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    column = "".join(line.split("│")[2].strip() for line in result.output.splitlines() if line.startswith("│"))
    assert str(a) in column and str(b) in column  # each name whole, folded over lines of its own cell


@pytest.mark.parametrize("case", ["twice", "not_json", "inside_run", "missing", "other_data"])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, case):
    _, (a, b) = runs
    args: list[str | Path] = {
        "twice": [a, a],
        "not_json": [a, b, "--out", tmp_path / "sel.txt"],
        "inside_run": [a, b, "--out", a / "sel.json"],
        "missing": [a, tmp_path / "nowhere"],
        "other_data": [a, "--data", make_banded_toy(tmp_path)],
    }[case]
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert not (a / "sel.json").exists() and not (tmp_path / "sel.txt").exists()
