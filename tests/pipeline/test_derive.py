"""medgan.pipeline.derive: the training and benchmark configs that medgan run derives from the data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medgan.configio import packaged_configs
from medgan.data.dataset import DatasetInfo, save_prepared
from medgan.errors import MedganError
from medgan.pipeline.config import load_run_config
from medgan.pipeline.derive import derive_benchmark_config, derive_train_config
from medgan.training.schedule import phase_at, stage_resolutions, total_steps


def _info(dims: int = 2, channels: int = 1, size: int = 28, counts: list[int] | None = None) -> DatasetInfo:
    return DatasetInfo(
        name="scans",
        class_names=["a", "b", "c"],
        channels=channels,
        spatial_dims=dims,
        size=[size] * dims,
        source="test",
        sha256="0" * 64,
        counts={"train": counts or [5, 9, 30]},
    )


@pytest.mark.parametrize(
    ("dims", "channels", "size", "base", "family"),
    [
        (2, 1, 16, "cgan_breastmnist.yaml", "residual"),
        (2, 1, 28, "cgan_breastmnist.yaml", "residual"),
        (2, 3, 32, "cgan_dermamnist.yaml", "residual"),
        (2, 1, 64, "cgan_breastmnist64.yaml", "residual"),  # the residual 64² GAN beats the progressive one
        (3, 1, 28, "cgan_adrenalmnist3d.yaml", "residual"),  # a tie with the progressive 3D config: residual
        (3, 1, 64, "cgan_adrenalmnist3d.yaml", "residual"),
    ],
)
def test_closest_packaged_config(
    dims: int, channels: int, size: int, base: str, family: str, tmp_path: Path
) -> None:
    if dims == 3:  # the 3D config makes masks: derive reads the data to see whether it is two-valued
        _prepared(tmp_path / "data", size, two_valued=True)
    derived = derive_train_config(
        _info(dims, channels, size), tmp_path / "data", tmp_path / "run", seed=3, device="cpu"
    )
    cfg = derived.config
    assert Path(derived.base).name == base and cfg.model.family == family
    assert cfg.data == str(tmp_path / "data") and cfg.out == str(tmp_path / "run") and cfg.data_size is None
    assert (cfg.seed, cfg.device, cfg.fid_every, cfg.model.conditional) == (3, "cpu", 0, True)
    if family == "progressive":
        assert cfg.progressive is not None and cfg.progressive.target_resolution == 64


def _prepared(folder: Path, size: int, two_valued: bool) -> Path:
    """A tiny prepared 3D dataset: binary masks (0 / 255) or grey volumes."""
    rng = np.random.default_rng(0)
    shape = (4, size, size, size)
    make = (lambda: rng.integers(0, 2, shape) * 255) if two_valued else (lambda: rng.integers(0, 256, shape))
    images = {s: make().astype(np.uint8) for s in ("train", "val", "test")}
    labels = {s: np.array([0, 1, 2, 0]) for s in ("train", "val", "test")}
    save_prepared(folder, images, labels, _info(3, 1, size))
    return folder


@pytest.mark.parametrize("two_valued", [True, False])
def test_a_mask_generator_is_kept_only_for_mask_data(two_valued: bool, tmp_path: Path) -> None:
    data = _prepared(tmp_path / "data", 8, two_valued)
    derived = derive_train_config(_info(3, 1, 8), data, tmp_path / "run")
    assert Path(derived.base).name == "cgan_adrenalmnist3d.yaml"
    assert derived.config.model.g_binary is two_valued
    assert ("model.g_binary" in derived.changes) is (not two_valued)
    # background fill (-1) is for masks; grey volumes get DiffAugment's mid-grey
    assert derived.config.augment.fill == (-1.0 if two_valued else 0.0)
    # the mask-only keys follow g_binary: the 3D config's stochastic sign stays for masks, goes for grey volumes
    assert derived.config.model.g_stochastic == (0.5 if two_valued else 0.0)
    assert ("model.g_stochastic" in derived.changes) is (not two_valued)
    # the 3D config picks its checkpoint by the mask distance, which only masks have
    assert derived.config.select_checkpoint is two_valued
    assert ("select_checkpoint" in derived.changes) is (not two_valued)


def test_progressive_steps_shorten_the_schedule_so_training_ends_at_full_resolution(tmp_path: Path) -> None:
    folder = tmp_path / "configs"  # only the progressive config, so that it is the closest
    folder.mkdir()
    shutil.copy(packaged_configs() / "train" / "progressive_breastmnist64.yaml", folder)
    derived = derive_train_config(_info(size=48), tmp_path, tmp_path / "run", steps=60, folder=folder)
    assert Path(derived.base).name == "progressive_breastmnist64.yaml"
    cfg = derived.config
    sched = cfg.progressive
    assert sched is not None and cfg.steps is None  # the schedule's own total
    assert sched.target_resolution == 64 and stage_resolutions(sched)[-1] == 64
    assert abs(total_steps(sched) - 60) <= 5
    last = phase_at(total_steps(sched), sched)
    assert last.resolution == 64 and last.alpha == 1.0


def test_overrides_and_steps_come_last(tmp_path: Path) -> None:
    derived = derive_train_config(
        _info(),
        tmp_path,
        tmp_path / "run",
        steps=7,
        overrides={"lr_g": 2e-4, "model": {"g_channels": 32}, "model.z_dim": 64, "steps": 99},
    )
    cfg = derived.config
    assert (cfg.steps, cfg.lr_g, cfg.model.g_channels, cfg.model.z_dim) == (7, 2e-4, 32, 64)
    assert cfg.model.d_channels == 16  # untouched keys keep the packaged value
    with pytest.raises(MedganError, match=r"unknown config key 'model\.width'"):
        derive_train_config(_info(), tmp_path, tmp_path / "run", overrides={"model.width": 3})


def test_benchmark_is_a_quick_plan_on_the_runs_gan(tmp_path: Path) -> None:
    cfg = derive_benchmark_config(_info(), tmp_path / "data", tmp_path / "g.pt", 0, device="cpu")
    assert (cfg.seeds, cfg.jobs, cfg.classifier.epochs, cfg.fidelity.enabled) == (2, 1, 20, False)
    assert cfg.gan.checkpoint == str(tmp_path / "g.pt") and cfg.data == str(tmp_path / "data")
    assert cfg.target_class == "a" and cfg.synthetic.policy == "balance" and cfg.classical.flip_axes == [1]
    balanced = derive_benchmark_config(
        _info(dims=3, counts=[10, 10, 10]),
        tmp_path,
        tmp_path / "g.pt",
        2,
        overrides={"seeds": 5, "classifier.epochs": 3},
    )
    assert balanced.synthetic.policy == "ratio" and balanced.classical.flip_axes == [2]
    assert (balanced.seeds, balanced.classifier.epochs, balanced.target_class) == (5, 3, "c")


def test_run_config_yaml(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("train: {steps: 5, model.z_dim: 32}\nexport: {n_per_class: 10, confidence: 0.8}\n")
    cfg = load_run_config(good)
    assert cfg.train == {"steps": 5, "model.z_dim": 32} and cfg.export.n_per_class == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 5\n")
    with pytest.raises(MedganError, match="unknown config key 'steps': training keys go under 'train:'"):
        load_run_config(bad)
    bad.write_text("train: {out: x}\n")
    with pytest.raises(MedganError, match=r"'train\.out' is set by medgan run"):
        load_run_config(bad)
    bad.write_text("export: {confidence: 1.5}\n")
    with pytest.raises(MedganError, match=r"export\.confidence"):
        load_run_config(bad)
