"""Per-class runs (``per_class: true``): one unconditional GAN per class, and the checkpoint that samples them.

:func:`medgan.training.loop.train` trains the members one after another. Each is an ordinary run folder,
``RUN/classes/<slug>/``, trained with the run's config (same seed, steps and model, ``model.conditional``
off) on its class's training images alone, ``RUN/class_data/<slug>/`` (:func:`write_class_data`). Then
:func:`write_composite` writes ``RUN/checkpoints/step_N.pt``: a checkpoint of the whole dataset whose generator
is a :class:`~medgan.networks.perclass.PerClassGenerator` holding each member's G_ema, so every command that
samples a class-conditional run samples this one unchanged, class ``c`` from class ``c``'s own weights.
``select_checkpoint`` (:func:`medgan.metrics.selection.select_checkpoint`) picks among the combinations of
the members' kept checkpoints and rewrites the composite from the pick.

Why: on AdrenalMNIST3D the conditional generator drew its two classes too alike, and three class levers on
D did not change that; a generator per class cannot share a shape between the classes. It raised the class signal
on two training seeds and failed on a third, where D ran away in both class GANs
(``benchmarks/results/gan_quality.md``, "One GAN per class"), so no config turns it on.

Example:
    >>> result = medgan.train("configs/train/cgan_adrenalmnist3d.yaml", overrides={"per_class": True, "out": "runs/pc"})
    >>> medgan.load_generator("runs/pc").sample("hyperplasia", 8)  # from the hyperplasia GAN
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medgan.configio import config_to_dict
from medgan.data.dataset import SPLITS, DatasetInfo, PreparedDataset, class_slugs, save_prepared
from medgan.errors import MedganError
from medgan.training.checkpoint import (
    RunFolder,
    dataset_record,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from medgan.training.config import TrainConfig
from medgan.utils import atomic_dir
from medgan.version import __version__

__all__ = [
    "base_record",
    "composite_checkpoint",
    "is_per_class",
    "member_config",
    "member_runs",
    "read_base",
    "write_class_data",
    "write_composite",
]

FAMILY = "per_class"
"""The ``model.family`` of a per-class run's sampling checkpoint (:mod:`medgan.networks.perclass`)."""


def member_config(cfg: TrainConfig, data: str | Path, out: str | Path) -> TrainConfig:
    """The config of one class's GAN: the run's, unconditional, on ``data`` (that class alone), into ``out``.

    The members keep the run's seed, so each class's GAN starts from the same weights and noise stream.
    """
    return dataclasses.replace(cfg, data=str(data), data_size=None, out=str(out), per_class=False,
                               select_checkpoint=False, model=dataclasses.replace(cfg.model, conditional=False))


def write_class_data(ds: PreparedDataset, class_index: int, folder: Path) -> Path:
    """Write class ``class_index``'s training images, in their order in the split, as a one-class prepared dataset.

    Val and test are left empty: a member, like any training run, reads the train split only. Written whole
    every time (the bytes are a function of the data), so a resumed run whose data changed is refused by its
    members' own check of their training data.

    Raises:
        MedganError: the class has no training images.
    """
    info = ds.info
    name = info.class_names[class_index]
    labels = np.asarray(ds.labels["train"]).reshape(-1)
    keep = np.flatnonzero(labels == class_index)
    if len(keep) == 0:
        raise MedganError(f"class '{name}' has no training images; per_class trains one GAN on each class's own")
    images = {s: np.zeros((0, *ds.images["train"].shape[1:]), np.uint8) for s in SPLITS}
    images["train"] = ds.images["train"][keep]
    split_labels = {s: np.zeros(len(images[s]), np.int64) for s in SPLITS}
    sidecar = DatasetInfo(
        name=f"{info.name}-{class_slugs(list(info.class_names))[class_index]}", class_names=[name],
        channels=info.channels, spatial_dims=info.spatial_dims, size=list(info.size),
        source=f"class '{name}' of the train split of {info.name} (sha256 {info.sha256}); val and test withheld",
        sha256="", preprocessing={"per_class": "one class of the train split"}, spacing=info.spacing)
    with atomic_dir(folder, overwrite=True) as tmp:
        save_prepared(tmp, images, split_labels, sidecar)
    return folder


def member_runs(run_dir: str | Path, class_names: Sequence[str]) -> list[Path]:
    """The members' run folders, in class order."""
    layout = RunFolder(Path(run_dir))
    return [layout.class_run(slug) for slug in class_slugs(list(class_names))]


def base_record(cfg: TrainConfig, info: DatasetInfo) -> dict[str, Any]:
    """What a composite records about the whole run: its config, the full dataset and its classes."""
    return {"config": config_to_dict(cfg), "class_names": list(info.class_names), "dataset": dataset_record(info)}


def read_base(run_dir: str | Path) -> dict[str, Any]:
    """The whole run's record, from the composite training wrote (:func:`write_composite`).

    Raises:
        MedganError: the folder holds no per-class composite.
    """
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise MedganError("no checkpoints in this run folder (expected checkpoints/step_*.pt)", Path(run_dir))
    ckpt = load_checkpoint(ckpts[-1])
    if (ckpt.get("model") or {}).get("family") != FAMILY:
        raise MedganError("not a per-class run (its checkpoint is not a per-class composite)", ckpts[-1])
    return {k: ckpt[k] for k in ("config", "class_names", "dataset")}


def is_per_class(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is a per-class run folder (it holds class GANs' run folders, ``RUN/classes/``)."""
    return RunFolder(Path(run_dir)).classes.is_dir()


def composite_checkpoint(members: Sequence[dict[str, Any]], base: dict[str, Any],
                         path: str = "(per-class composite)") -> dict[str, Any]:
    """A checkpoint, in memory, whose generator holds ``members[c]``'s G_ema for class ``c``.

    Args:
        members: the members' loaded checkpoints (:func:`~medgan.training.checkpoint.load_checkpoint`), in class order.
        base: :func:`base_record` of the whole run.
        path: what the in-memory checkpoint calls itself (``load_generator`` names it in messages).

    Returns:
        What :func:`medgan.synth.sampling.load_generator` accepts: the composite's state plus ``path`` and an
        empty ``sha256`` (it is not a file); :func:`write_composite` saves the same state.
    """
    if len(members) != len(base["class_names"]):
        raise MedganError(f"{len(members)} member checkpoints for {len(base['class_names'])} classes")
    families = {m["model"]["family"] for m in members}
    if len(families) != 1:
        raise MedganError(f"the members' model families differ ({', '.join(sorted(families))})")
    family = families.pop()
    gens = [m["model"]["generator"] for m in members]
    spec = {"family": FAMILY,
            "generator": {"num_classes": len(members), "z_dim": int(gens[0]["z_dim"]), "member_family": family,
                          "members": gens},
            "discriminator": {"num_classes": len(members), "member_family": family,
                              "members": [m["model"]["discriminator"] for m in members]}}
    g_ema = {f"members.{c}.{k}": v for c, m in enumerate(members) for k, v in m["G_ema"].items()}
    record = [{"class": name, "checkpoint": str(m["path"]), "sha256": m["sha256"], "step": int(m["step"])}
              for name, m in zip(base["class_names"], members, strict=True)]
    return {"medgan_version": __version__, "step": max(int(m["step"]) for m in members),
            "images_seen": sum(int(m.get("images_seen", 0)) for m in members), "G_ema": g_ema, "model": spec,
            "members": record, **base, "sha256": "", "path": path}


def write_composite(run_dir: str | Path, member_checkpoints: Sequence[str | Path],
                    base: dict[str, Any] | None = None) -> Path:
    """Write the composite of ``member_checkpoints`` (one per class, in class order) as the run's only checkpoint.

    Saved as ``RUN/checkpoints/step_N.pt`` (N: the latest member step), replacing any earlier composite, with
    each member's checkpoint recorded by path (relative to the run folder), sha256 and step.

    Args:
        run_dir: the per-class run folder.
        member_checkpoints: each class's chosen checkpoint file.
        base: :func:`base_record`; default: the one the run's current composite holds.
    """
    root = Path(run_dir)
    base = base if base is not None else read_base(root)
    members = [load_checkpoint(p) for p in member_checkpoints]
    state = composite_checkpoint(members, base)
    for entry in state["members"]:
        entry["checkpoint"] = str(Path(entry["checkpoint"]).resolve().relative_to(root.resolve()))
    state = {k: v for k, v in state.items() if k not in ("sha256", "path")}
    layout = RunFolder(root)
    path = save_checkpoint(state, layout.checkpoint(int(state["step"])))
    for old in list_checkpoints(root):
        if old != path:
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".sha256").unlink(missing_ok=True)
    return path
