"""BenchmarkConfig: the shipped configs load, quick overrides apply, bad keys are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medgan.benchmark.config import ARMS, identity, load_benchmark_config
from medgan.errors import MedganError
from tests.conftest import REPO

SHIPPED = sorted((REPO / "configs" / "benchmark").glob("*.yaml"))


def test_the_four_configs_ship() -> None:
    assert [p.stem for p in SHIPPED] == ["adrenalmnist3d", "default", "dermamnist", "pneumoniamnist"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_load_full_and_quick(path: Path) -> None:
    full = load_benchmark_config(path)
    quick = load_benchmark_config(path, quick=True)
    assert full.arms == list(ARMS) and Path(full.gan.train_config).is_file()
    assert quick.seeds == 2 and full.seeds >= 5
    assert quick.classifier.epochs < full.classifier.epochs
    assert quick.gan.steps is not None and (full.gan.steps is None or quick.gan.steps < full.gan.steps)
    assert quick.out != full.out and quick.quick == {}
    # The quick run computes something else, so it never resumes the full run's folder.
    assert identity(quick) != identity(full)


def test_default_config_targets_malignant_breastmnist() -> None:
    cfg = load_benchmark_config(REPO / "configs" / "benchmark" / "default.yaml")
    assert (cfg.data, cfg.target_class, cfg.synthetic.policy) == ("breastmnist", "malignant", "balance")


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "gan.yaml").write_text("steps: 2\n")
    path = tmp_path / "bench.yaml"
    path.write_text("gan: {train_config: gan.yaml}\n" + text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("colour: blue\n", "unknown config key 'colour'"),
    ("arms: [real, real+gan]\n", r"unknown arm 'real\+gan'"),
    ("arms: [real+synthetic]\n", "must include 'real'"),
    ("seeds: 0\n", "'seeds' must be at least 1"),
    ("quick: {classifier: {epoch: 3}}\n", "unknown config key 'classifier.epoch'"),
    ("quick: {seeds: -1}\n", "'seeds' must be at least 1"),
    ("synthetic: {policy: double}\n", "synthetic.policy"),
    ("synthetic: {truncation: 0}\n", "must be positive or null"),
])
def test_bad_configs_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MedganError, match=message):
        load_benchmark_config(_write(tmp_path, text))


def test_quick_accepts_nested_and_dotted_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "seeds: 5\nquick: {seeds: 2, classifier.epochs: 3, gan: {steps: 7}}\n")
    cfg = load_benchmark_config(path, quick=True, overrides=["bootstrap.resamples=50"])
    assert (cfg.seeds, cfg.classifier.epochs, cfg.gan.steps, cfg.bootstrap.resamples) == (2, 3, 7, 50)
    assert cfg.classifier.batch_size == 64  # untouched keys keep their value
    assert load_benchmark_config(path).seeds == 5


def test_train_config_is_found_beside_the_benchmark_config(tmp_path: Path) -> None:
    cfg = load_benchmark_config(_write(tmp_path, ""))
    assert Path(cfg.gan.train_config) == (tmp_path / "gan.yaml").resolve()
    (tmp_path / "gan.yaml").unlink()
    with pytest.raises(MedganError, match=r"gan\.train_config"):
        load_benchmark_config(tmp_path / "bench.yaml")


@pytest.mark.parametrize("quick", [False, True])
def test_the_pneumonia_sweep_keeps_batch_32_for_2000_steps_while_the_train_config_moved_to_64_x_3000(quick, tmp_path):
    """The sweep trains a GAN on subsets down to 236 images; 64 x 3000 there is a regime never measured."""
    from medgan.benchmark.runner import _train_config

    sweep = load_benchmark_config(REPO / "configs" / "benchmark" / "sweeps" / "pneumoniamnist.yaml", quick=quick)
    gan = _train_config(sweep, tmp_path, "cpu")
    assert (gan.batch_size, gan.steps) == (32, 500 if quick else 2000)
    plain = _train_config(load_benchmark_config(REPO / "configs" / "benchmark" / "pneumoniamnist.yaml"), tmp_path, "cpu")
    assert (plain.batch_size, plain.steps) == (64, 3000)
