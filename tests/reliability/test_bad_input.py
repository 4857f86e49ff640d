"""The bad-input corpus (#15): each bad input, through the real CLI, is one line, exit 2, and nothing written.

Every case is a row of :data:`CASES`: an id, a setup that builds the bad input in a fresh folder and
returns the command line, and a fragment of the one-line message. The same rows fill the table in
docs/reliability.md ("Bad input: one line, exit 2, nothing partial"); add a row for every new
defect found.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from medgan.cli.main import app
from tests.conftest import make_banded_toy

TINY = {
    "steps": 2,
    "batch_size": 8,
    "log_every": 1,
    "sample_every": 2,
    "checkpoint_every": 100,
    "device": "cpu",
    "model": {"g_channels": 8, "d_channels": 8, "g_max_channels": 16, "d_max_channels": 16, "z_dim": 16},
}


def _train_config(root: Path, **keys: object) -> Path:
    """A valid tiny training config on a toy dataset, with ``keys`` changed."""
    cfg = {**TINY, "data": str(make_banded_toy(root / "data", size=8)), "out": str(root / "run"), **keys}
    path = root / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train_with(*sets: str, **keys: object) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        return ["train", str(_train_config(root, **keys)), "--no-progress", *(f"--set={s}" for s in sets)]

    return setup


def _yaml_text(command: str, text: str) -> Callable[[Path], list[str]]:
    """A config file written verbatim (YAML spellings such as ``.nan`` that safe_dump would not produce)."""

    def setup(root: Path) -> list[str]:
        path = root / "config.yaml"
        path.write_text(text)
        return [command, str(path), "--no-progress"]

    return setup


def _train_yaml(extra: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        path = _train_config(root)
        path.write_text(path.read_text() + extra)
        return ["train", str(path), "--no-progress"]

    return setup


def _bench(extra: str) -> Callable[[Path], list[str]]:
    """A benchmark config on a toy dataset, with ``extra`` YAML lines; --out inside the case folder."""

    def setup(root: Path) -> list[str]:
        data = make_banded_toy(root / "data", size=8)
        path = root / "bench.yaml"
        path.write_text(f"data: {data}\ntarget_class: class0\n{extra}")
        return ["benchmark", str(path), "--out", str(root / "bench_out"), "--no-progress"]

    return setup


def _npz(
    root: Path,
    labels: dict[str, np.ndarray] | None = None,
    name: str = "bad.npz",
    sidecar: dict | None = None,
) -> Path:
    """A 2-class 8×8 npz in the MedMNIST layout (20 / 6 / 6 images), labels replaced by ``labels``."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 20), ("val", 6), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = (labels or {}).get(split, (np.arange(n) % 2).reshape(-1, 1))
    path = root / name
    if sidecar is not None:
        path = root / "prepared" / "dataset.npz"
        path.parent.mkdir()
    np.savez(path, **arrays)
    if sidecar is not None:
        (path.parent / "dataset.json").write_text(json.dumps(sidecar))
    return path


def _neg_labels() -> dict[str, np.ndarray]:
    lab = (np.arange(20) % 2).reshape(-1, 1).astype(np.int64)
    lab[:3] = -1
    return {"train": lab}


def _data_info(**npz_kw: object) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        path = _npz(root, **npz_kw)  # type: ignore[arg-type]
        return ["data", "info", str(path.parent if path.name == "dataset.npz" else path)]

    return setup


def _train_on_negative_labels(root: Path) -> list[str]:
    npz = _npz(root, _neg_labels())
    path = root / "train.yaml"
    path.write_text(yaml.safe_dump({**TINY, "data": str(npz), "out": str(root / "run")}))
    return ["train", str(path), "--no-progress"]


SIDECAR = {"name": "toy", "class_names": ["a", "b"], "channels": 1, "spatial_dims": 2, "size": [8, 8]}
FULL_SIDECAR = {**SIDECAR, "source": "test", "sha256": ""}


@dataclass(frozen=True)
class Case:
    """One bad input: ``setup(folder)`` builds it and returns the command line; ``message`` is in the line."""

    id: str
    setup: Callable[[Path], list[str]]
    message: str


CASES: list[Case] = [
    # Numbers in a training config: sign, finiteness, range (medgan.configio.check_fields).
    Case("train --set lr_g=-1", _train_with("lr_g=-1"), "config key 'lr_g' must be positive, got -1.0"),
    Case(
        "train lr_g: .nan in YAML",
        _train_yaml("lr_g: .nan\n"),
        "config key 'lr_g' must be a finite number, got nan",
    ),
    Case(
        "train --set lr_d=inf", _train_with("lr_d=inf"), "config key 'lr_d' must be a finite number, got inf"
    ),
    Case(
        "train --set betas=[0.5,1.0]",
        _train_with("betas=[0.5, 1.0]"),
        "config key 'betas[1]' must be in [0, 1), got 1.0",
    ),
    Case(
        "train --set ema_decay=.nan",
        _train_with("ema_decay=.nan"),
        "config key 'ema_decay' must be a finite number",
    ),
    Case("train --set r1_gamma=-1", _train_with("r1_gamma=-1"), "config key 'r1_gamma' must be at least 0"),
    Case(
        "train --set gp_weight=.nan",
        _train_with("gp_weight=.nan"),
        "config key 'gp_weight' must be a finite number",
    ),
    Case("train --set seed=-1", _train_with("seed=-1"), "config key 'seed' must be at least 0, got -1"),
    Case(
        "train --set fid_samples=0", _train_with("fid_samples=0"), "config key 'fid_samples' must be positive"
    ),
    Case(
        "train --set model.z_dim=0", _train_with("model.z_dim=0"), "config key 'model.z_dim' must be positive"
    ),
    Case(
        "train --set fid_every=-1",
        _train_with("fid_every=-1"),
        "config key 'fid_every' must be at least 0, got -1",
    ),
    Case(
        "train --set augment.speed_images=0",
        _train_with("augment.speed_images=0"),
        "config key 'augment.speed_images' must be positive, got 0",
    ),
    Case("train an empty YAML", _yaml_text("train", "# nothing here\n"), "config file is empty"),
    # Numbers in a benchmark config.
    Case(
        "benchmark classifier.lr: -1",
        _bench("classifier: {lr: -1}\n"),
        "config key 'classifier.lr' must be positive, got -1.0",
    ),
    Case(
        "benchmark bootstrap.confidence: .nan",
        _bench("bootstrap: {confidence: .nan}\n"),
        "config key 'bootstrap.confidence' must be a finite number, got nan",
    ),
    Case(
        "benchmark classical.scale: 1.5",
        _bench("classical: {scale: 1.5}\n"),
        "config key 'classical.scale' must be in [0, 1), got 1.5",
    ),
    Case(
        "benchmark classical.noise_std: -0.1",
        _bench("classical: {noise_std: -0.1}\n"),
        "config key 'classical.noise_std' must be at least 0",
    ),
    Case(
        "benchmark fidelity.seed: -3",
        _bench("fidelity: {seed: -3}\n"),
        "config key 'fidelity.seed' must be at least 0",
    ),
    Case("benchmark an empty YAML", _yaml_text("benchmark", "\n"), "config file is empty"),
    # Labels of an npz: negative, not whole, out of range.
    Case(
        "data info, labels -1",
        _data_info(labels=_neg_labels()),
        "bad.npz: train_labels holds 3 negative label(s) (e.g. -1)",
    ),
    Case("train, labels -1", _train_on_negative_labels, "bad.npz: train_labels holds 3 negative label(s)"),
    Case(
        "data info, labels 0.5",
        _data_info(labels={"val": np.array([0.5, 1, 0, 1, 0, 1])}),
        "bad.npz: val_labels holds 1 label(s) that are not whole numbers (e.g. 0.5)",
    ),
    Case(
        "data info, label 7 of 2 classes",
        _data_info(labels={"test": np.array([0, 1, 7, 1, 7, 1])}, sidecar=FULL_SIDECAR),
        "dataset.npz: test_labels holds 2 label(s) outside 0..1 (e.g. 7); the dataset has 2 classes",
    ),
    Case(
        "data info, label 2**40 without sidecar",
        _data_info(labels={"val": np.array([0, 1, 2**40, 1, 0, 1])}),
        "bad.npz: labels run up to 1099511627776, but there are only 32 images",
    ),
    # The dataset.json sidecar.
    Case(
        "sidecar without source and sha256",
        _data_info(sidecar=SIDECAR),
        "dataset.json: sidecar is missing key(s) source, sha256",
    ),
    Case(
        "sidecar with channels 'one'",
        _data_info(sidecar={**FULL_SIDECAR, "channels": "one"}),
        "dataset.json: sidecar key 'channels': expected an integer, got 'one'",
    ),
    Case(
        "sidecar with 2 channels",
        _data_info(sidecar={**FULL_SIDECAR, "channels": 2}),
        "dataset.json: sidecar has channels 2",
    ),
    # A run to resume that does not exist: named as given.
    Case(
        "train --resume a missing run",
        lambda root: ["train", "--resume", str(root / "runs" / "nothere")],
        "runs/nothere: no such run folder or checkpoint",
    ),
]


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = case.setup(tmp_path)
    before = _tree(tmp_path)
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert case.message in lines[0], lines[0]
    assert _tree(tmp_path) == before, "a refused command left files behind"


def test_the_corpus_is_the_table_in_docs_reliability() -> None:
    """docs/reliability.md lists every case of the corpus, by its id."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    missing = [c.id for c in CASES if f"`{c.id}`" not in doc]
    assert not missing, f"add these rows to docs/reliability.md: {missing}"
