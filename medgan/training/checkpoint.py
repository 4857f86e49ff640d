"""Checkpoints: one file, written atomically, with a ``.sha256`` sidecar; loaded ``weights_only``.

A checkpoint is a dict of plain types and tensors, so ``torch.load(..., weights_only=True)`` reads
it without unpickling arbitrary objects:

- ``G``, ``D``, ``G_ema``: state dicts; ``opt_G``, ``opt_D``: optimizer state dicts;
- ``step``, ``images_seen``, ``stage``, ``alpha``, ``augment`` (the ADA state);
- ``rng``: torch (CPU and CUDA), numpy and Python RNG states;
- ``config`` (plain types), ``class_names``, ``dataset`` (name, sha256, channels, size, ...),
  ``model`` (how to rebuild G and D), ``medgan_version``.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.data.dataset import DatasetInfo
from medgan.errors import MedganError
from medgan.utils import atomic_file, file_sha256, write_text_atomic

__all__ = [
    "RunFolder",
    "check_trained_on",
    "dataset_record",
    "find_checkpoint",
    "get_rng_state",
    "list_checkpoints",
    "load_checkpoint",
    "sampling_checkpoint",
    "save_checkpoint",
    "set_rng_state",
    "train_copy_source",
    "trained_on",
]

FORMAT = "medgan-checkpoint-1"
_STEP = re.compile(r"^step_(\d+)\.pt$")


@dataclass(frozen=True)
class RunFolder:
    """The layout of a training run folder; the only place that knows it.

    Layout::

        ROOT/config.yaml               the resolved TrainConfig
        ROOT/checkpoints/step_NNNNNN.pt (+ .sha256 sidecar)
        ROOT/samples/step_NNNNNN.png   G_ema grids
        ROOT/metrics.jsonl             one record per log interval
        ROOT/loss_curves.png
        ROOT/tensorboard/              TensorBoard event files (``logger: tensorboard``)
        ROOT/selected.json             the checkpoint to sample from, when training picked one (``select_checkpoint``)

    A per-class run (``per_class: true``) also holds one ordinary run folder per class and the data each
    trained on; its ``checkpoints/`` holds the composite that samples every class from its own generator::

        ROOT/classes/<class slug>/     the class's run folder (this same layout)
        ROOT/class_data/<class slug>/  the class's training images (a prepared dataset of one class)

    Example:
        >>> RunFolder.containing("runs/a/checkpoints/step_000100.pt").root
        PosixPath('runs/a')
    """

    root: Path

    @classmethod
    def containing(cls, path: str | Path) -> RunFolder:
        """The run folder ``path`` is, or the one its checkpoint file lies in.

        Raises:
            MedganError: when ``path`` does not exist (naming it as given).
        """
        p = Path(path)
        if not p.exists():
            raise MedganError("no such run folder or checkpoint", p)
        return cls(p if p.is_dir() else p.parent.parent)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether ``path`` is a run folder (it has ``checkpoints/``)."""
        return (Path(path) / "checkpoints").is_dir()

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def loss_curves(self) -> Path:
        return self.root / "loss_curves.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def selection(self) -> Path:
        return self.root / "selected.json"

    @property
    def classes(self) -> Path:
        return self.root / "classes"

    def class_run(self, slug: str) -> Path:
        """The run folder of class ``slug``'s own GAN, in a per-class run."""
        return self.classes / slug

    def class_data(self, slug: str) -> Path:
        """The training images of class ``slug`` alone, in a per-class run."""
        return self.root / "class_data" / slug

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:06d}.pt"

    def sample_grid(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"


Subset = tuple[float, int]
"""``(fraction, subset seed)``: a stratified share of a train split (the benchmark's scarcity sweep)."""

_SUBSET_TAG = re.compile(r"^train subset \(fraction ([0-9.eE+-]+), subset seed (\d+)\) of ")


def train_copy_source(name: str, sha256: str, subset: Subset | None = None) -> str:
    """The ``source`` of a train-split copy of dataset ``name`` (sha256 ``sha256``): what :func:`trained_on` reads.

    Args:
        name: the full dataset's name.
        sha256: the full dataset's sha256.
        subset: ``(fraction, subset seed)`` when the copy holds only that subset of the train split.

    Example:
        >>> train_copy_source("breastmnist", "ab12", (0.1, 0))
        'train subset (fraction 0.1, subset seed 0) of breastmnist (sha256 ab12); val and test withheld'
    """
    what = "train split" if subset is None else f"train subset (fraction {subset[0]:g}, subset seed {int(subset[1])})"
    return f"{what} of {name} (sha256 {sha256}); val and test withheld"


def _subset_of(source: str) -> Subset | None:
    tag = _SUBSET_TAG.match(source)
    return (float(tag.group(1)), int(tag.group(2))) if tag else None


def trained_on(record: dict[str, Any], class_names: list[str], info: DatasetInfo, subset: Subset | None = None) -> bool:
    """Whether a checkpoint whose dataset record is ``record`` was trained on ``info``'s dataset.

    The one rule: the same file (sha256), or a copy of its train split that records the file's
    sha256 as its ``source`` (:func:`train_copy_source`; what the benchmark trains its GAN on), with
    the same class names (case-insensitive). ``medgan train`` trains on the train split only, so both
    are the same images. A copy of a *subset* of the train split (the benchmark's scarcity sweep) is
    recognised only when ``subset`` names that very subset: its GAN saw a part of the images, and
    never counts as trained on the whole split, nor on another fraction.

    Args:
        record: the checkpoint's ``dataset`` record (``sha256``, ``source``, ...).
        class_names: the checkpoint's class names.
        info: the dataset asked about.
        subset: ``(fraction, subset seed)`` when the question is about that subset of ``info``'s
            train split (``None`` or fraction 1: the whole split).
    """
    if [n.lower() for n in class_names] != [n.lower() for n in info.class_names]:
        return False
    trained, source = str(record.get("sha256") or ""), str(record.get("source") or "")
    if trained and trained == info.sha256:
        return True
    if not info.sha256 or info.sha256 not in source:
        return False
    copied = _subset_of(source)
    asked = None if subset is None or float(subset[0]) >= 1.0 else (float(subset[0]), int(subset[1]))
    return copied == asked


def check_trained_on(record: dict[str, Any], class_names: list[str], info: DatasetInfo, what: str = "the data",
                     path: str | Path | None = None) -> None:
    """Raise unless :func:`trained_on`; ``what`` names the refused data (``--data``, ``data``).

    Raises:
        MedganError: the checkpoint was trained on another dataset (the message gives both names,
            sha256 prefixes and class names).
    """
    if trained_on(record, class_names, info):
        return
    part = _subset_of(str(record.get("source") or ""))
    if part is not None and info.sha256 and info.sha256 in str(record.get("source") or ""):
        raise MedganError(
            f"the checkpoint was trained on a subset of {info.name}'s train split (fraction {part[0]:g}, subset seed "
            f"{part[1]}), not on all of it, so {what} holds images it never saw; use a checkpoint trained on the "
            "whole train split", path)
    raise MedganError(
        f"{what} is not the dataset this checkpoint was trained on (checkpoint: {record.get('name')} sha256 "
        f"{str(record.get('sha256') or '')[:12]}…, classes {', '.join(class_names)}; {what}: {info.name} sha256 "
        f"{info.sha256[:12]}…, classes {', '.join(info.class_names)}); use a checkpoint trained on this "
        "dataset's train split", path)


def dataset_record(info: DatasetInfo) -> dict[str, Any]:
    """What a checkpoint records of its training data (``ckpt["dataset"]``), read by :func:`trained_on`."""
    return {"name": info.name, "sha256": info.sha256, "channels": info.channels, "spatial_dims": info.spatial_dims,
            "size": list(info.size), "spacing": info.spacing, "source": info.source}


def get_rng_state() -> dict[str, Any]:
    """Every RNG state that training draws from, as tensors and plain lists."""
    np_state: Any = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` through a temporary file and a rename, then its sha256 sidecar.

    The sidecar is written after the checkpoint; a reader that finds a checkpoint without a
    matching sidecar refuses it, so a crash between the two never yields a silently bad file.
    """
    path = Path(path)
    state = {"format": FORMAT, **state}
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
        digest = file_sha256(tmp)
    write_text_atomic(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify the sha256 sidecar, then load with ``weights_only=True``.

    Args:
        path: a checkpoint file, or a run folder (its latest checkpoint is used).
        map_location: where tensors go.

    Raises:
        MedganError: missing file or sidecar, hash mismatch, or not a medgan checkpoint.
    """
    path = find_checkpoint(path)
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        raise MedganError(f"checkpoint has no {sidecar.name} sidecar; refusing an unverified file", path)
    expected = sidecar.read_text().split()[0].strip() if sidecar.read_text().strip() else ""
    actual = file_sha256(path)
    if expected != actual:
        raise MedganError(f"sha256 mismatch (sidecar {expected[:12]}…, file {actual[:12]}…): corrupt or altered checkpoint", path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a non-checkpoint file
        raise MedganError(f"not a readable checkpoint ({exc.__class__.__name__})", path) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MedganError("not a medgan checkpoint", path)
    state["sha256"] = actual
    state["path"] = str(path)
    return state


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Periodic checkpoints of a run folder, oldest first."""
    folder = RunFolder(Path(run_dir)).checkpoints
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP.match(p.name))]
    return [p for _, p in sorted(found)]


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the latest one in a run folder."""
    p = Path(path)
    if p.is_dir():
        ckpts = list_checkpoints(p)
        if not ckpts:
            raise MedganError("no checkpoints in this run folder (expected checkpoints/step_*.pt)", p)
        return ckpts[-1]
    if not p.is_file():
        raise MedganError("checkpoint not found", p)
    return p


def sampling_checkpoint(path: str | Path) -> Path:
    """The checkpoint to sample from: a file as given; in a run folder, the one ``selected.json`` names, else the latest.

    ``selected.json`` is written after training by ``select_checkpoint`` (``{"checkpoint": "checkpoints/step_…pt",
    …}``, relative to the run folder). A record that names a checkpoint no longer there is refused rather than
    passed over, so a run is never sampled from another checkpoint than the one its record promises.

    Raises:
        MedganError: no checkpoint, or a selection record that cannot be read or names a missing file.
    """
    p = Path(path)
    record = RunFolder(p).selection
    if not (p.is_dir() and record.is_file()):
        return find_checkpoint(p)
    try:
        chosen = p / json.loads(record.read_text())["checkpoint"]
    except (ValueError, KeyError, TypeError):
        raise MedganError("unreadable selection record; delete it to sample from the latest checkpoint", record) from None
    if not chosen.is_file():
        raise MedganError(f"the selected checkpoint {chosen.name} is missing; delete {record.name} to sample from "
                          "the latest checkpoint", record)
    return chosen


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` periodic checkpoints (and their sidecars)."""
    ckpts = list_checkpoints(run_dir)
    for old in ckpts[: max(len(ckpts) - keep, 0)]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
