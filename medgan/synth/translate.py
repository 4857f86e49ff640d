"""Translation with a cycle-family checkpoint: images of one domain made into the other, each with its source.

Inference only: G_ema in eval mode, no autograd, in batches. A translator turns images of domain A
into domain B and back (two classes of one dataset, or two datasets; see
:mod:`medgan.training.cycle`). Every output records the image it was made from, in the manifest's
``source`` column and the provenance's ``source_ids``: ``<dataset>:<split>:<index>`` for an image
of a prepared dataset, or the file's path relative to the input folder (never an absolute path,
never a header value such as a patient id).

Two uses:

- ``medgan translate``: every image of the input that belongs to the other domain
  (:func:`input_sources`), written by :func:`write_translated`;
- ``medgan augment`` with a translator: ``n`` images of the other class's train split, a seeded
  draw without replacement (:func:`augment_sources`), so output ``i`` of a class is a pure function
  of (checkpoint, seed, class, i).

The output bytes do not depend on ``--batch-size``: the translator always runs on blocks of
:func:`medgan.synth.sampling.forward_block` images (the last one padded), as sampling does.

Example:
    >>> tr = load_translator("runs/cycle_breastmnist", device="cpu")
    >>> to = tr.domain_index("malignant")
    >>> src = input_sources(tr, "breastmnist", to, split="test")
    >>> write_translated(tr, [(src, to)], "translated/", fmt="png")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.data.dataset import (
    DatasetInfo,
    PreparedDataset,
    class_slugs,
    describe_images,
    load_dataset,
)
from medgan.data.scaling import to_model_input, to_uint8
from medgan.device import resolve_device
from medgan.errors import MedganError
from medgan.networks import build_networks
from medgan.synth.plan import ClassPlan
from medgan.synth.sampling import LoadedGenerator, check_sampling_args, forward_block, load_generator
from medgan.synth.write import Batch, check_format, write_batches
from medgan.training.checkpoint import check_trained_on, load_checkpoint, sampling_checkpoint, trained_on

__all__ = [
    "LoadedTranslator",
    "Sources",
    "augment_parts",
    "augment_sources",
    "input_sources",
    "is_translator",
    "iter_translated",
    "load_model",
    "load_translator",
    "training_dataset",
    "translated_pool",
    "translator_from_checkpoint",
    "write_translated",
]


@dataclass
class LoadedTranslator:
    """A cycle-family G_ema rebuilt from a checkpoint, with what callers need to know about it.

    Args:
        G: both translators (``G(x, domain)``), eval mode, no gradients, on ``device``.
        mode: ``class`` (two classes of one dataset) or ``domain`` (two datasets).
        domains: the names of domains A and B.
        class_names: the classes of the training data (``data``, domain A's dataset).
        source_class, target_class: class mode: the classes of A and B.
        spatial_dims, channels, size: the images' geometry (``size`` is ``[H, W]`` or ``[D, H, W]``).
        spacing: the training data's spacing in mm, when recorded.
        checkpoint_sha256, checkpoint_path: the checkpoint file that was loaded.
        dataset: the checkpoint's record of ``data`` (name, sha256, ...).
        target_dataset: domain mode: its record of domain B's dataset (with its class names).
        config: the training config stored in the checkpoint.
        device: where ``G`` runs.
    """

    G: nn.Module
    mode: str
    domains: list[str]
    class_names: list[str]
    source_class: int | None
    target_class: int | None
    spatial_dims: int
    channels: int
    size: list[int]
    spacing: list[float] | None
    checkpoint_sha256: str
    checkpoint_path: str
    dataset: dict[str, Any]
    target_dataset: dict[str, Any] | None
    config: dict[str, Any]
    device: torch.device
    family: str = field(default="cycle")

    @property
    def num_classes(self) -> int:
        """The classes of the training data (as :attr:`LoadedGenerator.num_classes`; a translator is never unconditional)."""
        return len(self.class_names)

    @property
    def shape(self) -> str:
        """One image's shape in words (``2D, 1 channel, 28×28``)."""
        return describe_images([self.channels, *self.size])

    def domain_index(self, name: str) -> int:
        """The domain that ``--to NAME`` means: a domain name or its slug (any case), or in class mode a class index.

        Raises:
            MedganError: not one of this translator's two domains (the message lists them).
        """
        text = str(name).strip().lower()
        for i, (domain, slug) in enumerate(zip(self.domains, class_slugs(self.domains), strict=True)):
            if text in (domain.lower(), slug):
                return i
        if self.mode == "class" and text.isdigit() and int(text) in (self.source_class, self.target_class):
            return 0 if int(text) == self.source_class else 1
        raise MedganError(
            f"unknown --to '{name}' (this translator's domains: A: {self.domains[0]}, B: {self.domains[1]})"
        )

    def domain_class(self, domain: int) -> int:
        """Class mode: the class index of ``domain`` in :attr:`class_names`."""
        assert self.mode == "class" and self.source_class is not None and self.target_class is not None
        return self.source_class if domain == 0 else self.target_class

    def trained_on(self, info: DatasetInfo) -> bool:
        """Whether ``data`` (domain A's dataset, or the one dataset of class mode) was ``info``'s dataset.

        The rule is :func:`medgan.training.checkpoint.trained_on`: the same file, or a train-split
        copy of it; the translator read only its train split.
        """
        return trained_on(self.dataset, self.class_names, info)

    def check_trained_on(
        self, info: DatasetInfo, what: str = "the data", path: str | Path | None = None
    ) -> None:
        """Raise unless :meth:`trained_on`."""
        check_trained_on(self.dataset, self.class_names, info, what, path or self.checkpoint_path)


def is_translator(ckpt: dict[str, Any]) -> bool:
    """Whether a loaded checkpoint is a cycle-family translator."""
    return (ckpt.get("model") or {}).get("family") == "cycle"


def translator_from_checkpoint(ckpt: dict[str, Any], device: str = "auto") -> LoadedTranslator:
    """Rebuild the translator of a checkpoint that :func:`medgan.training.checkpoint.load_checkpoint` loaded.

    Raises:
        MedganError: not a translator, or one whose weights do not fit its model.
    """
    if not is_translator(ckpt):
        raise MedganError(
            "this checkpoint is not a translator (model.family cycle); use medgan augment to sample from it",
            ckpt.get("path"),
        )
    missing = [k for k in ("G_ema", "dataset", "class_names", "config", "cycle") if k not in ckpt]
    if missing:
        raise MedganError(f"checkpoint lacks {', '.join(missing)}; it cannot translate", ckpt["path"])
    try:
        G, _ = build_networks(ckpt["model"])
        G.load_state_dict(ckpt["G_ema"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise MedganError(
            f"the checkpoint's translator cannot be rebuilt ({exc.__class__.__name__})", ckpt["path"]
        ) from None
    dev = resolve_device(device)
    G.eval().requires_grad_(False).to(dev)
    ds, cyc = ckpt["dataset"], ckpt["cycle"]
    return LoadedTranslator(
        G=G,
        mode=str(cyc["mode"]),
        domains=[str(d) for d in cyc["domains"]],
        class_names=[str(c) for c in ckpt["class_names"]],
        source_class=cyc.get("source_class"),
        target_class=cyc.get("target_class"),
        spatial_dims=int(ds["spatial_dims"]),
        channels=int(ds["channels"]),
        size=[int(s) for s in ds["size"]],
        spacing=ds.get("spacing"),
        checkpoint_sha256=ckpt["sha256"],
        checkpoint_path=ckpt["path"],
        dataset=dict(ds),
        target_dataset=cyc.get("target_dataset"),
        config=ckpt["config"],
        device=dev,
    )


def load_model(checkpoint: str | Path, device: str = "auto") -> LoadedGenerator | LoadedTranslator:
    """A checkpoint's generator, or its translator for the cycle family (the checkpoint is read once).

    Raises:
        MedganError: as :func:`medgan.synth.sampling.load_generator` and :func:`load_translator`.
    """
    ckpt = load_checkpoint(sampling_checkpoint(checkpoint), map_location="cpu")
    return translator_from_checkpoint(ckpt, device) if is_translator(ckpt) else load_generator(ckpt, device)


def load_translator(checkpoint: str | Path, device: str = "auto") -> LoadedTranslator:
    """Verify and load a cycle-family checkpoint (file or run folder) and rebuild its G_ema.

    Raises:
        MedganError: a missing, corrupt or altered checkpoint, or one that is not a translator.
    """
    return translator_from_checkpoint(load_checkpoint(checkpoint, map_location="cpu"), device)


# Section. Source images.


@dataclass
class Sources:
    """The images to translate, and where each came from.

    Attributes:
        images: uint8 ``(N, C, *spatial)``.
        labels: int64 ``(N,)``: each image's class under ``class_names`` (the class the output keeps
            in domain mode; a folder's images get the target domain's name as their one class).
        class_names: names by label index.
        ids: per image, what the provenance records: ``<dataset>:<split>:<index>`` or a relative path.
        indices: int64 ``(N,)``: the index that names each output file (unique per class).
        record: what the input was, for the provenance (no absolute path).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    ids: list[str]
    indices: np.ndarray
    record: dict[str, Any]


def _check_shape(tr: LoadedTranslator, shape: Sequence[int], what: str, path: str | Path | None) -> None:
    got = describe_images(shape)
    if got != tr.shape:
        raise MedganError(
            f"{what} images are {got}; this translator takes {tr.shape} (prepare them with medgan "
            "preprocess at that size)",
            path,
        )


def _dataset_sources(tr: LoadedTranslator, ds: PreparedDataset, to: int, split: str) -> Sources:
    """The images of ``ds``'s ``split`` that belong to the domain other than ``to``."""
    info = ds.info
    if split not in ds.images:
        raise MedganError(f"unknown --split '{split}' (allowed: {', '.join(ds.images)})")
    x, y = ds.channel_first(split), ds.labels[split]
    _check_shape(tr, x.shape[1:], "--input", ds.path)
    if tr.mode == "class":
        if [c.lower() for c in info.class_names] != [c.lower() for c in tr.class_names]:
            raise MedganError(
                f"--input has the classes {', '.join(info.class_names)}, but this translator was trained "
                f"on {', '.join(tr.class_names)}; give a dataset with the translator's classes, or a "
                "folder of images",
                ds.path,
            )
        keep = np.flatnonzero(y == tr.domain_class(1 - to))
        if len(keep) == 0:
            raise MedganError(
                f"--input has no '{tr.domains[1 - to]}' image in its {split} split to translate "
                f"into '{tr.domains[to]}'",
                ds.path,
            )
    else:
        own = tr.dataset if to == 0 else (tr.target_dataset or {})
        if own.get("sha256") and own.get("sha256") == info.sha256:
            raise MedganError(
                f"--input is the dataset of domain '{tr.domains[to]}' itself; give images of "
                f"'{tr.domains[1 - to]}'",
                ds.path,
            )
        keep = np.arange(len(y))
        if len(keep) == 0:
            raise MedganError(f"--input's {split} split is empty", ds.path)
    record = {"kind": "dataset", "dataset": info.name, "sha256": info.sha256, "split": split}
    return Sources(
        x[keep],
        y[keep].astype(np.int64),
        list(info.class_names),
        [f"{info.name}:{split}:{i}" for i in keep],
        keep.astype(np.int64),
        record,
    )


def _folder_sources(tr: LoadedTranslator, folder: Path, to: int) -> Sources:
    """Every image file under ``folder`` (sorted by relative path), as the translator's input."""
    from medgan.data.io import image_kind, read_image

    files = sorted(p for p in folder.rglob("*") if p.is_file() and image_kind(p) is not None)
    if not files:
        raise MedganError("--input folder holds no image file (PNG, JPEG, NIfTI or DICOM)", folder)
    images = []
    for p in files:
        img = read_image(p, expect_dims=tr.spatial_dims)
        arr = np.moveaxis(img.array, -1, 0) if img.rgb else img.array[None]  # (C, *spatial)
        _check_shape(tr, arr.shape, f"--input {p.relative_to(folder).as_posix()}:", None)
        if arr.min() < 0 or arr.max() > 255:
            raise MedganError(
                f"pixel values span {arr.min():g}..{arr.max():g}; this translator takes 8-bit images "
                "(0..255); prepare them with medgan preprocess",
                p,
            )
        images.append(np.rint(arr).astype(np.uint8))
    name = tr.domains[to]  # no class is known: domain mode labels the outputs with their domain
    n = len(files)
    return Sources(
        np.stack(images),
        np.zeros(n, np.int64),
        [name],
        [p.relative_to(folder).as_posix() for p in files],
        np.arange(n, dtype=np.int64),
        {"kind": "folder", "files": n},
    )


def input_sources(tr: LoadedTranslator, input_: str | Path, to: int, split: str = "train") -> Sources:
    """What ``medgan translate --input`` names: a prepared dataset (registry name, npz or folder) or a folder of images.

    From a dataset, the images of ``split`` that belong to the other domain (class mode: the other
    class; domain mode: every image, unless the dataset is domain ``to``'s own). From a folder,
    every PNG / JPEG / NIfTI / DICOM file under it, which must have the translator's shape and
    8-bit values.

    Raises:
        MedganError: a missing input; images of another shape; a dataset with other classes, or
            without an image to translate.
    """
    p = Path(input_).expanduser()
    if p.is_dir() and not (p / "dataset.npz").is_file():
        return _folder_sources(tr, p, to)
    return _dataset_sources(tr, load_dataset(input_), to, split)


def training_dataset(tr: LoadedTranslator, data: str | None = None) -> PreparedDataset:
    """The dataset the translator was trained on: ``data``, or the ``data`` of its stored config.

    Raises:
        MedganError: the dataset cannot be found (pass ``--data``) or is not the one it was trained on.
    """
    given = data if data is not None else tr.config.get("data")
    if given is None:
        raise MedganError(
            "the checkpoint does not name its training data; pass --data DATASET", tr.checkpoint_path
        )
    try:
        ds = load_dataset(given, size=None if data is not None else tr.config.get("data_size"))
    except MedganError as exc:
        if data is not None:
            raise
        raise MedganError(
            f"cannot load the translator's training data '{given}' ({exc}); pass --data DATASET"
        ) from None
    tr.check_trained_on(ds.info, "--data" if data is not None else f"its training data '{given}'")
    return ds


def augment_sources(
    tr: LoadedTranslator, ds: PreparedDataset, target_class: int, n: int, seed: int = 0
) -> Sources:
    """``n`` images of the other class's train split, to be translated into ``target_class``.

    A seeded draw without replacement (key: ``seed`` and the class), so image ``i`` does not depend
    on ``n``: a larger ``n`` extends the same sequence.

    Raises:
        MedganError: a domain translator; a class that is not one of the two; more images than
            the source class has (the same source would give the same image twice).
    """
    check_sampling_args(n=n, seed=seed)
    if tr.mode != "class":
        raise MedganError(
            "this translator maps one dataset onto another; medgan augment needs a class translator "
            "(use medgan translate for domain translation)",
            tr.checkpoint_path,
        )
    if target_class not in (tr.source_class, tr.target_class):
        raise MedganError(
            f"this translator makes '{tr.domains[0]}' and '{tr.domains[1]}' only, not "
            f"'{tr.class_names[target_class]}'",
            tr.checkpoint_path,
        )
    src = tr.source_class if target_class == tr.target_class else tr.target_class
    assert src is not None
    pool = np.flatnonzero(ds.labels["train"] == src)
    if n > len(pool):
        raise MedganError(
            f"{n} '{tr.class_names[target_class]}' images asked for, but there are only {len(pool)} "
            f"'{tr.class_names[src]}' training images to translate (a translator is deterministic: one "
            "source gives one image)"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, target_class]))
    picked = pool[rng.permutation(len(pool))[:n]]
    info = ds.info
    record = {"kind": "dataset", "dataset": info.name, "sha256": info.sha256, "split": "train", "seed": seed}
    return Sources(
        ds.channel_first("train")[picked],
        np.full(n, src, np.int64),
        list(info.class_names),
        [f"{info.name}:train:{i}" for i in picked],
        np.arange(n, dtype=np.int64),
        record,
    )


def augment_parts(
    tr: LoadedTranslator, ds: PreparedDataset, plan: ClassPlan, seed: int = 0
) -> list[tuple[Sources, int]]:
    """What ``medgan augment`` asks of a class translator: per class of ``plan``, the sources and the domain.

    ``plan`` is the augment plan (:func:`medgan.cli.augment.parse_plan`); ``all`` means the
    translator's two classes, and ``balance`` / ``ratio`` read ``ds``'s train split.

    Returns:
        ``[(sources, domain), ...]``, one entry per class that gets images, for :func:`write_translated`.

    Raises:
        MedganError: as :func:`augment_sources`; nothing to write.
    """
    from dataclasses import replace

    from medgan.data.dataset import class_counts

    if tr.mode != "class":
        raise MedganError(
            "this translator maps one dataset onto another; medgan augment needs a class translator "
            "(use medgan translate for domain translation)",
            tr.checkpoint_path,
        )
    assert tr.source_class is not None and tr.target_class is not None
    if plan.classes is None:
        plan = replace(plan, classes=(tr.source_class, tr.target_class))
    real = class_counts(ds.labels["train"], len(tr.class_names)) if plan.needs_real_counts else None
    counts = plan.counts(len(tr.class_names), real)
    if not counts:
        raise MedganError("nothing to write: every class already has the target count")
    return [
        (augment_sources(tr, ds, c, k, seed), 0 if c == tr.source_class else 1) for c, k in counts.items()
    ]


def translated_pool(
    tr: LoadedTranslator, ds: PreparedDataset, counts: Sequence[int], seed: int = 0, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` translated images of every class ``c``, as the benchmark's synthetic pool.

    Image ``i`` of class ``c`` is the translation of :func:`augment_sources`' ``i``-th draw from
    the other class's train split, so a larger count extends the same pool.

    Returns:
        uint8 images ``(N, C, *spatial)`` and int64 labels ``(N,)``, class by class.

    Raises:
        MedganError: as :func:`augment_sources` (a class the translator does not make, or more
            images than the other class has).
    """
    images, labels = [], []
    for c, n in enumerate(counts):
        if n <= 0:
            continue
        src = augment_sources(tr, ds, c, int(n), seed)
        to = 0 if c == tr.source_class else 1
        images += list(iter_translated(tr, src.images, to, batch_size))
        labels.append(np.full(int(n), c, np.int64))
    shape = (tr.channels, *tr.size)
    return (
        np.concatenate(images) if images else np.zeros((0, *shape), np.uint8),
        np.concatenate(labels) if labels else np.zeros(0, np.int64),
    )


# Section. Translation and the output folder.


@torch.inference_mode()
def iter_translated(
    tr: LoadedTranslator, images: np.ndarray, to: int, batch_size: int = 256
) -> Iterator[np.ndarray]:
    """Yield uint8 batches ``(b, C, *spatial)``: ``images`` (uint8 ``(N, C, *spatial)``) translated into domain ``to``.

    The translator runs on blocks of :func:`~medgan.synth.sampling.forward_block` images whatever
    ``batch_size`` is, so the bytes do not depend on it.
    """
    check_sampling_args(batch_size=batch_size)
    if to not in (0, 1):
        raise ValueError(f"domain must be 0 or 1, got {to}")
    fb = forward_block(tr.size)
    pending: list[np.ndarray] = []
    held = 0
    for start in range(0, len(images), fb):
        chunk = images[start : start + fb]
        keep = len(chunk)
        x = to_model_input(torch.from_numpy(np.ascontiguousarray(chunk))).to(tr.device)  # (k, C, *spatial)
        if keep < fb:  # pad the last block: the same forward shape every time
            x = torch.cat([x, x.new_full((fb - keep, *x.shape[1:]), -1.0)])
        pending.append(to_uint8(tr.G(x, to).float()).cpu().numpy()[:keep])
        held += keep
        last = start + fb >= len(images)
        while held >= batch_size or (held and last):
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            out, rest = joined[:batch_size], joined[batch_size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
            yield out


def write_translated(
    tr: LoadedTranslator,
    parts: Sequence[tuple[Sources, int]],
    out: str | Path,
    *,
    fmt: str,
    seed: int = 0,
    batch_size: int = 256,
    overwrite: bool = False,
    arguments: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Translate every ``(sources, domain)`` of ``parts`` and write them to ``out``, with manifest and provenance.

    The folder is written as every export is (:func:`medgan.synth.write.write_batches`: atomic, free
    space checked first); the manifest gains a ``source`` column and the provenance a ``translation``
    record per part and ``source_ids`` (in manifest order).

    Args:
        tr: from :func:`load_translator`.
        parts: ``(sources, domain)`` pairs: sources from :func:`input_sources` (one part) or
            :func:`augment_parts`, and the domain to translate them into
            (:meth:`LoadedTranslator.domain_index`).
        out: the output folder.
        fmt: ``png``, ``npz``, ``nifti`` or ``dicom``.
        seed: recorded in the file names and the manifest (augment's draw).
        batch_size: images per batch (does not change the output).
        overwrite: replace a non-empty ``out``.
        arguments: the command's arguments, for the provenance.
        extra: more provenance fields.
        on_batch: called with the size of every batch written.

    Returns:
        The number of images written.

    Raises:
        MedganError: a format that cannot hold these images; nothing to translate; a failed write.
    """
    check_format(fmt, tr)
    total = sum(len(src.images) for src, _ in parts)
    if total == 0:
        raise MedganError("nothing to translate")
    labelled = []
    for src, to in parts:
        if tr.mode == "class":  # outputs are images of the target class
            labelled.append((list(tr.class_names), np.full(len(src.images), tr.domain_class(to), np.int64)))
        else:  # outputs keep their source's class
            labelled.append((list(src.class_names), src.labels))
    names = labelled[0][0]
    if any(n != names for n, _ in labelled):
        raise ValueError("the parts of one export must share their class names")
    all_labels = np.concatenate([lab for _, lab in labelled])
    counts = {names[c]: int(k) for c, k in enumerate(np.bincount(all_labels, minlength=len(names))) if k}
    record: dict[str, Any] = {
        "counts": counts,
        "total": total,
        "format": fmt,
        "checkpoint_path": tr.checkpoint_path,
        "family": tr.family,
        "device": str(tr.device),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "forward_block": forward_block(tr.size),
        "translation": [
            {
                "mode": tr.mode,
                "from": tr.domains[1 - to],
                "to": tr.domains[to],
                "images": len(src.images),
                "inputs": src.record,
            }
            for src, to in parts
        ],
        "source_ids": [i for src, _ in parts for i in src.ids],
        **(extra or {}),
    }

    def batches() -> Iterator[Batch]:
        for (src, to), (_, labels) in zip(parts, labelled, strict=True):
            start = 0
            for batch in iter_translated(tr, src.images, to, batch_size):
                end = start + len(batch)
                yield batch, labels[start:end], seed, src.indices[start:end], src.ids[start:end]
                start = end

    return write_batches(
        out,
        batches(),
        fmt=fmt,
        total=total,
        class_names=names,
        maker=tr,
        overwrite=overwrite,
        arguments=arguments,
        record=record,
        on_batch=on_batch,
    )
