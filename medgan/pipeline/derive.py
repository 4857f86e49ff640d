"""The configs that ``medgan run`` derives from the prepared data, so that nobody writes YAML.

Training starts from the packaged config in ``configs/train/`` whose data is closest to the
prepared dataset: the same dimensionality first, then the same channels, then the nearest size (on
a log scale); on a tie the residual family, then progressive, then style (never a translation
family). It then takes the dataset's own path, size and classes, and the run's seed, device and
``--steps``; a generator that emits binary masks (``model.g_binary``) is kept only for data whose
training images take two grey values; a progressive schedule is re-aimed at the data's canvas and, with ``--steps``, shortened
in proportion so that training still ends at full resolution. The ``train:`` section of ``--config``
is applied last.

The benchmark is a small plan that finishes in minutes on a CPU: two seeds, 20 classifier epochs,
the run's GAN checkpoint (not a second GAN), and no fidelity section (stage 3 measured it). Its
``benchmark:`` section in ``--config`` is applied last (e.g. ``seeds: 5`` for the full answer).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan.benchmark.config import BenchmarkConfig
from medgan.configio import config_to_dict, load_config, packaged_configs, to_dataclass
from medgan.data.dataset import DatasetInfo
from medgan.errors import MedganError
from medgan.training.config import BINARY_MASK_KEYS, ModelConfig, TrainConfig
from medgan.training.schedule import total_steps

__all__ = [
    "NOISE_FAMILIES",
    "DerivedTrain",
    "closest_train_config",
    "derive_benchmark_config",
    "derive_train_config",
    "merge_overrides",
]


NOISE_FAMILIES: tuple[str, ...] = ("residual", "progressive", "style")
"""The families a run may start from: class-conditional noise-to-image GANs (a translation family such as
``cycle`` makes no samples of a chosen class from noise), in the order that breaks a tie (docs/models.md)."""

QUICK_BENCHMARK: dict[str, Any] = {
    "seeds": 2,
    "jobs": 1,
    "classifier": {"epochs": 20},
    "bootstrap": {"resamples": 1000},
    "fidelity": {"enabled": False},
}
"""The benchmark plan of a run, on top of the :class:`BenchmarkConfig` defaults."""


@dataclass
class DerivedTrain:
    """A training config derived from the data, and how it was made.

    Attributes:
        config: the resolved config.
        base: the packaged config it started from (a path), or ``"TrainConfig defaults"``.
        reason: one line: why that base.
        changes: the keys the derivation set (dotted), with their values, before ``--config``.
        overrides: the ``train:`` overrides of ``--config`` and ``--steps``, as given.
    """

    config: TrainConfig
    base: str
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` (nested mappings or dotted keys) into a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        node, parts = out, str(key).split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise MedganError(f"config key '{key}': '{part}' is not a section")
            node = child
        last = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = merge_overrides(node[last], value)
        else:
            node[last] = copy.deepcopy(value)
    return out


def _data_shape(cfg: TrainConfig) -> tuple[int, int, int] | None:
    """``(spatial_dims, channels, size)`` of a packaged config's registry dataset; None if it names a file."""
    from medgan.data.registry import REGISTRY

    name, _, suffix = cfg.data.lower().partition("_")
    if name not in REGISTRY:
        return None
    spec = REGISTRY[name]
    size = cfg.data_size or (int(suffix) if suffix.isdigit() else 28)
    return spec.spatial_dims, spec.channels, size


def _distance(want: tuple[int, int, int], have: tuple[int, int, int]) -> float:
    dims, channels, size = want
    return 100.0 * (dims != have[0]) + 10.0 * (channels != have[1]) + abs(math.log2(size / have[2]))


def closest_train_config(info: DatasetInfo, folder: Path | None = None) -> tuple[Path | None, str]:
    """The packaged training config closest to ``info``'s data, and why (None when none is packaged)."""
    folder = folder if folder is not None else packaged_configs() / "train"
    want = (info.spatial_dims, info.channels, int(info.size[0]))
    scored = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        cfg = load_config(TrainConfig, path)
        shape = _data_shape(cfg)
        if shape is not None and cfg.model.family in NOISE_FAMILIES:
            # Ties go in the order of NOISE_FAMILIES: the residual family is the quickest usable model.
            rank = NOISE_FAMILIES.index(cfg.model.family)
            scored.append((_distance(want, shape), rank, path.name, path, shape))
    if not scored:
        return None, "as no packaged config was found"
    _, _, _, path, (dims, channels, size) = min(scored)
    kind = f"{dims}D, {channels} channel{'s' if channels > 1 else ''}, {size} px"
    return path, f"the closest packaged config to this data ({kind})"


def _two_valued(data: Path) -> bool:
    """Whether every training image of the prepared dataset at ``data`` uses at most two grey levels (a mask)."""
    import numpy as np

    from medgan.data.dataset import load_dataset

    x = load_dataset(str(data)).images["train"]
    return int(np.count_nonzero(np.bincount(np.asarray(x, dtype=np.uint8).reshape(-1), minlength=256))) <= 2


def _canvas(size: int) -> int:
    return 1 << (size - 1).bit_length()


def _shorten_schedule(data: dict[str, Any], steps: int) -> dict[str, Any]:
    """A progressive schedule whose phases are scaled so the whole schedule takes about ``steps`` steps."""
    from medgan.training.schedule import ProgressiveSchedule

    sched = to_dataclass(ProgressiveSchedule, data["progressive"], prefix="progressive.")
    factor = steps / total_steps(sched)
    out = copy.deepcopy(data)
    for key in ("fade_images", "stable_images"):
        out["progressive"][key] = max(1, round(getattr(sched, key) * factor))
    out["steps"] = None  # the (shortened) schedule's total: training ends at full resolution
    return out


def derive_train_config(
    info: DatasetInfo,
    data: Path,
    out: Path,
    *,
    seed: int = 0,
    device: str = "auto",
    steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    folder: Path | None = None,
) -> DerivedTrain:
    """The training config for a prepared dataset (see the module docstring).

    Args:
        info: the prepared dataset's sidecar.
        data: its folder.
        out: the run folder to train into.
        seed: the training seed.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        steps: total steps (``--steps``); for a progressive schedule, its phases are scaled to fit.
        overrides: the ``train:`` section of ``--config`` (nested or dotted keys).
        folder: where the packaged training configs are (default ``configs/train`` of
            :func:`medgan.configio.packaged_configs`).

    Raises:
        MedganError: an override that is not a training key, or a value the config refuses.
    """
    base_path, reason = closest_train_config(info, folder)
    base = config_to_dict(load_config(TrainConfig, base_path) if base_path is not None else TrainConfig())
    size = int(info.size[0])
    changes: dict[str, Any] = {
        "data": str(data),
        "data_size": None,
        "out": str(out),
        "seed": seed,
        "device": device,
        "fid_every": 0,  # stage 3 measures the generator; FID during training would slow the run
        "model.conditional": True,
    }
    if base["model"].get("g_binary") and not _two_valued(data):
        changes["model.g_binary"] = False  # the closest config makes masks; these images have grey levels
        if base.get("augment", {}).get("fill", 0.0) != 0.0:
            changes["augment.fill"] = 0.0  # background fill is for masks; grey images get DiffAugment's mid-grey
        for key in BINARY_MASK_KEYS:  # each needs g_binary: back to its off value
            if base["model"].get(key):
                changes[f"model.{key}"] = getattr(ModelConfig(), key)
        if base.get("select_checkpoint"):  # it ranks checkpoints by their masks
            changes["select_checkpoint"] = False
    if base["model"]["family"] == "progressive" and base.get("progressive"):
        canvas = _canvas(size)
        sched = base["progressive"]
        batches = {int(r): b for r, b in (sched.get("batch_size") or {}).items()}
        stages = [sched.get("start_resolution", 4) * 2**k for k in range(32)]
        stages = stages[: stages.index(canvas) + 1] if canvas in stages else stages[:1]
        changes["progressive.target_resolution"] = canvas
        changes["progressive.batch_size"] = {r: b for r, b in batches.items() if r in stages}
        changes["progressive.resolutions"] = None
    user = dict(overrides or {})
    data_dict = merge_overrides(base, changes)
    data_dict = merge_overrides(data_dict, user)
    if steps is not None:
        user["steps"] = steps
        data_dict["steps"] = steps
    family = data_dict.get("model", {}).get("family")
    if family == "progressive" and data_dict.get("progressive") and data_dict.get("steps") is not None:
        data_dict = _shorten_schedule(data_dict, int(data_dict["steps"]))
        changes["progressive.fade_images"] = data_dict["progressive"]["fade_images"]
        changes["progressive.stable_images"] = data_dict["progressive"]["stable_images"]
    cfg = to_dataclass(TrainConfig, data_dict)
    base_name = str(base_path) if base_path is not None else "TrainConfig defaults"
    return DerivedTrain(config=cfg, base=base_name, reason=reason, changes=changes, overrides=user)


def derive_benchmark_config(
    info: DatasetInfo,
    data: Path,
    checkpoint: Path,
    target: int,
    *,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
) -> BenchmarkConfig:
    """The benchmark config of a run: :data:`QUICK_BENCHMARK` on the prepared data and the run's GAN.

    The synthetic policy fills the smaller classes up to the largest (``balance``); when the
    training split is already balanced, that would add nothing, so it adds as many synthetic images
    as there are real ones (``ratio: 1``) instead.

    Args:
        info: the prepared dataset's sidecar.
        data: its folder.
        checkpoint: the GAN checkpoint the benchmark samples from (trained on ``data``).
        target: the index of the class reported first.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        overrides: the ``benchmark:`` section of ``--config`` (nested or dotted keys).

    Raises:
        MedganError: an override that is not a benchmark key, or a value the config refuses.
    """
    counts = info.counts.get("train") or []
    balanced = bool(counts) and max(counts) == min(counts)
    derived = merge_overrides(config_to_dict(BenchmarkConfig()), QUICK_BENCHMARK)
    derived = merge_overrides(
        derived,
        {
            "data": str(data),
            "data_size": None,
            "target_class": info.class_names[target],
            "device": device,
            "gan.checkpoint": str(checkpoint),
            "quick": {},
            "synthetic.policy": "ratio" if balanced else "balance",
            # Left-right flips: the last axis of a 2D image, the W axis (patient left-right) of a volume.
            "classical.flip_axes": [1] if info.spatial_dims == 2 else [2],
        },
    )
    derived = merge_overrides(derived, dict(overrides or {}))
    return to_dataclass(BenchmarkConfig, derived)
