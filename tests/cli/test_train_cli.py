"""`medgan train` through the CLI: bad input is one line and exit 2; Ctrl-C checkpoints and exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from medgan.cli.main import app
from tests.conftest import make_banded_toy

runner = CliRunner()

TINY = {
    "steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 100, "device": "cpu",
    "model": {"g_channels": 8, "d_channels": 8, "g_max_channels": 16, "d_max_channels": 16, "z_dim": 16},
}


def _config(tmp_path: Path, data: Path, **extra) -> Path:
    cfg = {**TINY, "data": str(data), "out": str(tmp_path / "run"), **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert text in lines[0]
    assert "Traceback" not in result.output


def test_train_writes_a_run_and_reports(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path))
    result = runner.invoke(app, ["train", str(cfg), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "done: 2 steps" in result.output
    assert (tmp_path / "run" / "checkpoints" / "step_000002.pt").is_file()


def test_train_names_the_checkpoint_it_selected(tmp_path):
    from tests.conftest import make_square_masks

    data = make_square_masks(tmp_path / "squares", counts=(16, 16)).path
    cfg = _config(tmp_path, data, steps=4, checkpoint_every=2, keep_checkpoints=2, select_checkpoint=True,
                  model={**TINY["model"], "g_binary": True})
    result = runner.invoke(app, ["train", str(cfg), "--no-progress"])
    assert result.exit_code == 0, result.output
    import json

    chosen = json.loads((tmp_path / "run" / "selected.json").read_text())["checkpoint"]
    picked = [ln for ln in result.output.splitlines() if ln.startswith("selected: ")]
    assert chosen in ("checkpoints/step_000002.pt", "checkpoints/step_000004.pt")
    assert len(picked) == 1 and picked[0].startswith(f"selected: {tmp_path / 'run' / chosen} ")


def test_unknown_config_key(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path), learning_rate=0.1)
    _one_line_error(runner.invoke(app, ["train", str(cfg)]), "unknown config key 'learning_rate'")


@pytest.mark.parametrize(
    ("item", "text"),
    [("steps", "bad --set 'steps': expected key=value"), ("steps=abc", "'steps': expected an integer"),
     ("model.width=3", "unknown config key 'model.width'"), ("loss=l1", "'loss': 'l1' is not one of")],
)
def test_bad_set(tmp_path, item, text):
    cfg = _config(tmp_path, make_banded_toy(tmp_path))
    _one_line_error(runner.invoke(app, ["train", str(cfg), "--set", item]), text)


def test_missing_dataset(tmp_path):
    cfg = _config(tmp_path, tmp_path / "nowhere.npz")
    _one_line_error(runner.invoke(app, ["train", str(cfg)]), "dataset file not found")
    cfg = _config(tmp_path, "nosuchmnist")
    _one_line_error(runner.invoke(app, ["train", str(cfg)]), "unknown dataset 'nosuchmnist' (known: ")


def test_resume_with_a_wrong_hash(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path))
    assert runner.invoke(app, ["train", str(cfg), "--no-progress"]).exit_code == 0
    sidecar = tmp_path / "run" / "checkpoints" / "step_000002.pt.sha256"
    sidecar.write_text("0" * 64 + "  step_000002.pt\n")
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--steps", "4"])
    _one_line_error(result, "sha256 mismatch")


def test_resume_on_another_dataset(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path))
    assert runner.invoke(app, ["train", str(cfg), "--no-progress"]).exit_code == 0
    other = make_banded_toy(tmp_path / "other", seed=3)
    result = runner.invoke(app, ["train", str(cfg), "--resume", str(tmp_path / "run"), "--data", str(other), "--steps", "4"])
    _one_line_error(result, "data is not the dataset this checkpoint was trained on (checkpoint: toy")


def test_resume_with_a_config_that_would_change_the_run(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path), seed=1)
    assert runner.invoke(app, ["train", str(cfg), "--no-progress"]).exit_code == 0
    other = _config(tmp_path, make_banded_toy(tmp_path), seed=0)
    result = runner.invoke(app, ["train", str(other), "--resume", str(tmp_path / "run"), "--steps", "4"])
    _one_line_error(result, "this config differs from the run's own in seed: a resumed run continues exactly only")
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["seed"] == 1


def test_resume_from_the_run_folder_alone(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path))
    assert runner.invoke(app, ["train", str(cfg), "--no-progress"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--steps", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "done: 3 steps" in result.output


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_a_checkpoint_and_exits_128_plus_signal(tmp_path, sig, code):
    cfg = _config(tmp_path, make_banded_toy(tmp_path), steps=100000, sample_every=100000)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "medgan", "train", str(cfg), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and log.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted at step" in err and "checkpoint written to" in err
    ckpts = list((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert len(ckpts) == 1


def test_train_under_torchrun_writes_one_checkpoint_and_one_log(tmp_path):
    cfg = _config(tmp_path, make_banded_toy(tmp_path), steps=4, log_every=2, sample_every=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "medgan",
                           "train", str(cfg), "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: 4 steps") == 1, proc.stdout  # rank 0 reports for both
    run = tmp_path / "run"
    assert [p.name for p in (run / "checkpoints").glob("*.pt")] == ["step_000004.pt"]
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000004.png"]


def test_every_command_has_help_with_an_example():
    for cmd in (["train"], ["augment"], ["evaluate"], ["preprocess"], ["data", "fetch"], ["data", "info"], ["data", "list"]):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0, cmd
        assert "Example" in result.output, cmd


PROGRESSIVE = {"model": {**TINY["model"], "family": "progressive", "g_channels": 2, "d_channels": 2},
               "steps": None, "progressive": {"target_resolution": 16, "fade_images": 16, "stable_images": 16}}


@pytest.mark.parametrize(
    ("schedule", "text"),
    [({"target_resolution": 32}, "progressive.target_resolution is 32, but the data is 16"),
     ({"resolutions": []}, "resolutions"),
     ({"resolutions": [4, 16, 8]}, "increasing")],
)
def test_progressive_schedule_errors(tmp_path, schedule, text):
    cfg = _config(tmp_path, make_banded_toy(tmp_path), **{**PROGRESSIVE,
                  "progressive": {**PROGRESSIVE["progressive"], **schedule}})
    _one_line_error(runner.invoke(app, ["train", str(cfg)]), text)
