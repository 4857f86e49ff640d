"""`medgan benchmark` through Typer's CliRunner: a quick toy run, resume, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from medgan.cli.main import app
from tests.benchmark.helpers import bench_config, gan_checkpoint, gan_config
from tests.conftest import make_disc_toy

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.getbasetemp() / "bench_shared"
    root.mkdir(exist_ok=True)
    data = make_disc_toy(root)
    return SimpleNamespace(root=root, data=data, gan_yaml=gan_config(root, data), ckpt=gan_checkpoint(root, data))


def _invoke(*args: str | Path):
    return runner.invoke(app, ["benchmark", *map(str, args)], terminal_width=200)


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("error: ") and "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text


def test_quick_run_end_to_end_then_resume(env: SimpleNamespace, tmp_path: Path) -> None:
    config = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, seeds=3, classifier={"epochs": 3},
                          quick={"seeds": 2, "classifier": {"epochs": 1}, "out": str(tmp_path / "quick")})
    result = _invoke(config, "--quick", "--checkpoint", env.ckpt, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Answer." in result.output and "real+classical+synthetic" in result.output
    assert "10 run(s) trained, 0 reused" in result.output
    results = json.loads((tmp_path / "quick" / "results.json").read_text())
    assert results["quick"] is True and results["seeds"] == [0, 1]
    assert results["config"]["classifier"]["epochs"] == 1
    assert "This is a quick run" in (tmp_path / "quick" / "report.md").read_text()

    again = _invoke(config, "--quick", "--checkpoint", env.ckpt, "--no-progress")
    assert again.exit_code == 0 and "0 run(s) trained, 10 reused" in again.output
    # The full settings are another benchmark: refused in the quick folder.
    other = _invoke(config, "--checkpoint", env.ckpt, "--out", tmp_path / "quick", "--no-progress")
    _one_line_error(other, "different config", "--overwrite")


def test_only_and_report_only(env: SimpleNamespace, tmp_path: Path) -> None:
    config = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, arms=["real", "real+classical"],
                          seeds=1, fidelity={"enabled": False})
    part = _invoke(config, "--only", "real:0", "--only", "real+classical:0", "--no-progress")
    assert part.exit_code == 0 and "2 run(s) done, 0 already finished" in part.output
    report = _invoke(config, "--report-only", "--no-progress")
    assert report.exit_code == 0 and "0 run(s) trained, 2 reused" in report.output
    _one_line_error(_invoke(config, "--only", "real:5"), "seed 5 is outside 0..0")
    _one_line_error(_invoke(config, "--only", "real+synthetic:0"), "'real+synthetic' is not in this benchmark")
    _one_line_error(_invoke(config, "--only", "gan", "--report-only"), "do not go together")


def test_target_class_not_in_the_dataset(env: SimpleNamespace, tmp_path: Path) -> None:
    config = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, target_class="melanoma")
    _one_line_error(_invoke(config), "target_class", "unknown class 'melanoma'", "0: lesion, 1: normal")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_checkpoint_trained_on_another_dataset(env: SimpleNamespace, tmp_path: Path) -> None:
    other = gan_checkpoint(env.root, make_disc_toy(env.root, seed=1, bright=150))
    config = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml)
    _one_line_error(_invoke(config, "--checkpoint", other), "the benchmark data is not the dataset this checkpoint was trained on")


def test_checkpoint_with_samples_of_the_wrong_shape(env: SimpleNamespace, tmp_path: Path) -> None:
    small = gan_checkpoint(env.root, make_disc_toy(env.root, size=8))
    config = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml)
    _one_line_error(_invoke(config, "--checkpoint", small), "wrong shape", "8×8", "16×16")


def test_bad_config_and_missing_checkpoint(env: SimpleNamespace, tmp_path: Path) -> None:
    config = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, arms=["real", "real+mixup"])
    _one_line_error(_invoke(config), "unknown arm 'real+mixup'")
    good = bench_config(tmp_path / "good.yaml", env.data, env.gan_yaml)
    _one_line_error(_invoke(good, "--checkpoint", tmp_path / "none.pt"), "checkpoint not found")


def test_help_lists_the_options() -> None:
    result = _invoke("--help")
    assert result.exit_code == 0
    for option in ("--quick", "--out", "--checkpoint", "--seeds", "--jobs", "--device", "--only", "--report-only"):
        assert option in result.output
