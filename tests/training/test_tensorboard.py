"""TensorBoard logging (medgan/training/loggers.py): the event files hold the losses, ADA p, the evaluator's
figures and the sample grids; without the package, ``--tensorboard`` is a one-line error naming the install."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.configio import save_config
from medgan.training.checkpoint import RunFolder
from medgan.training.loggers import INSTALL_TENSORBOARD, JsonlLogger, Loggers, make_logger
from medgan.training.loop import train
from medgan.training.snapshots import read_jsonl
from tests.benchmark.helpers import bench_config, gan_config
from tests.conftest import make_banded_toy, make_disc_toy
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _events(log_dir: Path) -> Any:
    """The event files of one TensorBoard run, read back by TensorBoard's own reader."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _steps(acc: Any, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


@pytest.fixture
def no_tensorboard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torch.utils.tensorboard`` fail, as it does without the tensorboard package."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


def test_the_loop_logs_losses_ada_p_the_evaluator_and_grids(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    data = make_banded_toy(tmp_path)
    cfg = tiny_config(data, tmp_path / "run", "steps=4", "log_every=2", "sample_every=2", "fid_every=2")
    calls: list[int] = []

    def evaluator(G_ema: Any, g_kw: dict[str, Any]) -> dict[str, float]:
        calls.append(1)
        return {"fid": 10.0 * len(calls), "swd/mean": 0.5}

    run = train(cfg, progress=False, evaluator=evaluator,
                logger=make_logger("tensorboard", RunFolder(tmp_path / "run").tensorboard)).run_dir
    acc = _events(RunFolder(run).tensorboard)
    scalars = set(acc.Tags()["scalars"])
    assert {"d_loss", "g_loss", "aug_p", "fid", "swd/mean", "img_per_s"} <= scalars
    assert _steps(acc, "d_loss") == [2, 4] and _steps(acc, "fid") == [2, 4]
    assert [e.value for e in acc.Scalars("fid")] == [10.0, 20.0]
    # The same numbers as metrics.jsonl, which is still written.
    records = read_jsonl(RunFolder(run).metrics)
    assert [r["step"] for r in records] == [2, 4]
    assert [e.value for e in acc.Scalars("aug_p")] == pytest.approx([r["aug_p"] for r in records])
    assert [e.value for e in acc.Scalars("d_loss")] == pytest.approx([r["d_loss"] for r in records], rel=1e-6)
    # The sample grids as images, at the steps the PNGs were written.
    assert acc.Tags()["images"] == ["samples"]
    images = acc.Images("samples")
    assert [e.step for e in images] == [2, 4]
    assert images[0].width > 0 and images[0].height > 0
    assert sorted(p.name for p in RunFolder(run).samples.glob("*.png")) == ["step_000002.png", "step_000004.png"]


def test_a_resumed_run_continues_the_curves_without_repeating_steps(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    data = make_banded_toy(tmp_path)
    cfg = tiny_config(data, tmp_path / "run", "steps=4", "log_every=2", "checkpoint_every=2", "logger=tensorboard")
    log_dir = RunFolder(tmp_path / "run").tensorboard
    train(cfg, progress=False, logger=make_logger(cfg.logger, log_dir))
    more = tiny_config(data, tmp_path / "run", "steps=6", "log_every=2", "checkpoint_every=2", "logger=tensorboard")
    train(more, resume=tmp_path / "run", progress=False, logger=make_logger(more.logger, log_dir))
    assert _steps(_events(log_dir), "g_loss") == [2, 4, 6]


def test_medgan_train_tensorboard_option_and_config_key(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    data = make_banded_toy(tmp_path)
    config = tmp_path / "tiny.yaml"
    save_config(tiny_config(data, tmp_path / "unused", "steps=2"), config)
    for args, run in ((["--tensorboard"], tmp_path / "a"), (["--set", "logger=tensorboard"], tmp_path / "b")):
        result = CliRunner().invoke(app, ["train", str(config), "--out", str(run), "--no-progress", *args])
        assert result.exit_code == 0, result.output
        acc = _events(RunFolder(run).tensorboard)
        assert {"d_loss", "g_loss", "aug_p"} <= set(acc.Tags()["scalars"]) and acc.Tags()["images"] == ["samples"]
    # Without the option, no event files.
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "c"), "--no-progress"])
    assert result.exit_code == 0 and not RunFolder(tmp_path / "c").tensorboard.exists()


def test_without_the_package_the_option_is_a_one_line_error(tmp_path: Path, no_tensorboard: None) -> None:
    data = make_banded_toy(tmp_path)
    config = tmp_path / "tiny.yaml"
    save_config(tiny_config(data, tmp_path / "unused", "steps=2"), config)
    for args in (["--tensorboard"], ["--set", "logger=tensorboard"]):
        result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "run"), *args])
        assert result.exit_code == 2, result.output
        text = result.output.strip()
        assert text.startswith("error: ") and "\n" not in text and INSTALL_TENSORBOARD in text, text
        assert not (tmp_path / "run").exists()  # refused before training started
    bench = bench_config(tmp_path / "bench.yaml", make_disc_toy(tmp_path), gan_config(tmp_path, data))
    result = CliRunner().invoke(app, ["benchmark", str(bench), "--tensorboard", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and INSTALL_TENSORBOARD in result.output, result.output
    assert not (tmp_path / "b").exists()
    # The default logger never needs the package.
    assert make_logger("jsonl", tmp_path / "tb") is None


def test_jsonl_logger_writes_the_records_the_loop_always_wrote(tmp_path: Path) -> None:
    sink = Loggers([JsonlLogger(tmp_path / "m.jsonl"), None])
    sink.start(0)
    sink.log_metrics(2, {"step": 2, "d_loss": 0.5, "aug_p": 0.0})
    sink.log_image("samples", np.zeros((4, 4), np.uint8), 2)
    sink.close()
    assert [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()] == [
        {"step": 2, "d_loss": 0.5, "aug_p": 0.0}]


def test_benchmark_tensorboard_logs_the_gan_and_every_classifier(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    root = tmp_path / "env"
    root.mkdir()
    data = make_disc_toy(root)
    config = bench_config(tmp_path / "bench.yaml", data, gan_config(root, data), arms=["real", "real+synthetic"],
                          seeds=1, fidelity={"enabled": False}, bootstrap={"resamples": 50})
    result = CliRunner().invoke(app, ["benchmark", str(config), "--out", str(tmp_path / "out"), "--no-progress",
                                      "--tensorboard", "--set", "jobs=1"])
    assert result.exit_code == 0, result.output
    gan = _events(tmp_path / "out" / "gan" / "tensorboard")
    assert {"d_loss", "g_loss", "aug_p"} <= set(gan.Tags()["scalars"]) and gan.Tags()["images"] == ["samples"]
    for run in ("real__seed0", "real+synthetic__seed0"):
        acc = _events(tmp_path / "out" / "tensorboard" / run)
        assert {"classifier/train_loss", "classifier/val_balanced_accuracy"} <= set(acc.Tags()["scalars"])
        history = json.loads((tmp_path / "out" / "runs" / f"{run}.json").read_text())["history"]
        assert len(acc.Scalars("classifier/val_balanced_accuracy")) == len(history)
    # Logging is not part of what the benchmark computes: the same folder resumes without it.
    again = CliRunner().invoke(app, ["benchmark", str(config), "--out", str(tmp_path / "out"), "--no-progress",
                                     "--set", "jobs=1"])
    assert again.exit_code == 0 and "0 run(s) trained" in again.output, again.output
