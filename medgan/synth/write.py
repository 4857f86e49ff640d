"""From a loaded generator and a per-class plan to a finished output folder: samples, manifest, provenance.

The folder is built in a temporary sibling and renamed at the end (:func:`medgan.utils.atomic_dir`),
so a crash or a full disk never leaves half an export behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medgan.errors import MedganError
from medgan.synth.export import SampleWriter
from medgan.synth.manifest import write_manifest, write_provenance
from medgan.synth.sampling import LATENT_BLOCK, LoadedGenerator, forward_block, iter_samples
from medgan.synth.writers import FORMATS, cannot_hold, estimate_bytes
from medgan.utils import atomic_dir, check_free_space, check_memory, check_stop

__all__ = ["Batch", "check_format", "write_batches", "write_synthetic"]

Batch = tuple[np.ndarray, "np.ndarray | Sequence[int]", int, "np.ndarray | Sequence[int]", "Sequence[str] | None"]
"""One batch of an export: uint8 images ``(B, C, *spatial)``, their labels, the seed, the sample
indices (they name the files), and for translated images the image each was made from."""


class _Makes(Protocol):
    """What :func:`check_format` reads of a loaded model: the shape of what it makes."""

    spatial_dims: int
    channels: int


class _Maker(_Makes, Protocol):
    """What :func:`write_batches` reads of a loaded generator or translator: geometry and provenance."""

    size: list[int]
    spacing: list[float] | None
    checkpoint_sha256: str
    dataset: dict[str, Any]
    config: dict[str, Any]


def check_format(fmt: str, gen: _Makes | None = None) -> None:
    """Refuse a ``--format`` that is unknown or that cannot hold this generator's (or translator's) samples.

    The rule is :func:`medgan.synth.writers.cannot_hold`; this words it for the command line.

    Raises:
        MedganError: an unknown format; PNG for volumes; NIfTI for RGB images.
    """
    reason = cannot_hold(fmt, None if gen is None else gen.spatial_dims, None if gen is None else gen.channels)
    if reason == "unknown":
        raise MedganError(f"unknown --format '{fmt}' (allowed: {', '.join(FORMATS)})")
    if reason == "volumes":
        raise MedganError("PNG is 2D only and this checkpoint makes volumes; use --format nifti, dicom or npz")
    if reason == "rgb":
        raise MedganError("NIfTI holds grey images only and this checkpoint makes RGB; use --format png, npz or dicom")


def write_synthetic(
    gen: LoadedGenerator,
    counts: dict[int, int],
    out: str | Path,
    *,
    fmt: str,
    seed: int = 0,
    batch_size: int = 256,
    truncation: float | None = None,
    overwrite: bool = False,
    arguments: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write ``counts[c]`` samples of every class ``c`` to ``out`` with ``manifest.csv`` and ``provenance.json``.

    Args:
        gen: from :func:`medgan.synth.sampling.load_generator`.
        counts: ``{class index: samples}`` (e.g. :meth:`medgan.synth.plan.ClassPlan.counts`); for an
            unconditional generator ``{0: n}``.
        out: the output folder (built atomically).
        fmt: ``png``, ``npz``, ``nifti`` or ``dicom``.
        seed, batch_size, truncation: as :func:`medgan.synth.sampling.iter_samples`.
        overwrite: replace a non-empty ``out``.
        arguments: the command's arguments, recorded in the provenance.
        extra: more provenance fields (they override the defaults recorded here).
        on_batch: called with the size of every batch written (a progress bar).

    Returns:
        The number of samples written.

    Raises:
        MedganError: a format that cannot hold these samples; nothing to write; not enough free space
            for the estimated output (checked first); a write that fails (the partial output is removed;
            a replaced ``out`` keeps its old content).
    """
    import torch  # already loaded with the generator; only read for the provenance

    check_format(fmt, gen)
    total = sum(counts.values())
    if total == 0:
        raise MedganError("nothing to write: every class already has the target count")
    conditional = gen.num_classes > 0
    names = gen.class_names if conditional else ["sample"]
    record: dict[str, Any] = {
        "counts": {names[c]: k for c, k in counts.items()}, "total": total, "format": fmt,
        "checkpoint_path": gen.checkpoint_path, "family": gen.family, "device": str(gen.device),
        "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "latent_block": LATENT_BLOCK, "forward_block": forward_block(gen.size), **(extra or {}),
    }

    def batches() -> Iterator[Batch]:
        for c, k in counts.items():
            start = 0
            for batch in iter_samples(gen, c if conditional else None, k, seed=seed, batch_size=batch_size,
                                      truncation=truncation):
                yield batch, [c] * len(batch), seed, range(start, start + len(batch)), None
                start += len(batch)

    return write_batches(out, batches(), fmt=fmt, total=total, class_names=names, maker=gen, overwrite=overwrite,
                         arguments=arguments, record=record, on_batch=on_batch)


def write_batches(
    out: str | Path,
    batches: Iterable[Batch],
    *,
    fmt: str,
    total: int,
    class_names: Sequence[str],
    maker: _Maker,
    overwrite: bool = False,
    arguments: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """The one way an export folder is written: room first, then the batches, ``manifest.csv`` and ``provenance.json``.

    :func:`write_synthetic` (noise-to-image samples) and
    :func:`medgan.synth.translate.write_translated` (translated images) both end here.

    Args:
        out: the output folder (built atomically).
        batches: :data:`Batch` tuples, ``total`` images in all.
        fmt: ``png``, ``npz``, ``nifti`` or ``dicom``.
        total: how many images ``batches`` holds (for the free-space estimate).
        class_names: names by label index.
        maker: the loaded generator or translator that made them: the images' geometry
            (``spatial_dims``, ``size``, ``channels``, ``spacing``), the checkpoint's sha256 that marks
            every file, its training config and dataset (name and sha256) for the provenance.
        overwrite: replace a non-empty ``out``.
        arguments: the command's arguments (provenance).
        record: more provenance fields.
        on_batch: called with the size of every batch written (a progress bar).

    Returns:
        ``total``.

    Raises:
        MedganError: not enough free space (or memory, for npz) for the estimate; a write that fails
            (the partial output is removed; a replaced ``out`` keeps its old content).
    """
    out = Path(out)
    spatial_dims, size, channels = maker.spatial_dims, maker.size, maker.channels
    checkpoint_sha256 = maker.checkpoint_sha256
    # Section. Room for the output (and, for npz, memory: it collects every sample), before any work.
    check_free_space(out, estimate_bytes(fmt, total, spatial_dims, size, channels), f"{total} {fmt} samples")
    if fmt == "npz":
        check_memory(2 * estimate_bytes("npz", total, spatial_dims, size, channels),
                     f"{total} npz samples (collected in memory before the npz is written)",
                     "write fewer samples, or use --format png, nifti or dicom")
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            with SampleWriter(tmp, fmt=fmt, class_names=class_names, spatial_dims=spatial_dims,  # type: ignore[arg-type]
                              checkpoint_sha256=checkpoint_sha256, dataset_name=str(maker.dataset.get("name")),
                              spacing=maker.spacing) as writer:
                for images, labels, seed, indices, sources in batches:
                    writer.write(images, labels, seeds=seed, indices=indices, sources=sources)
                    if on_batch is not None:
                        on_batch(len(images))
                    check_stop()  # a Ctrl-C that a library swallowed still stops the export
            write_manifest(tmp, writer.manifest)
            write_provenance(tmp, checkpoint_sha256=checkpoint_sha256, config=maker.config,
                             dataset_sha256=maker.dataset.get("sha256"),
                             arguments=arguments or {}, extra=record)
    except OSError as exc:
        # atomic_dir has removed the temporary folder; a replaced --out still holds its old content.
        raise MedganError(f"could not write the samples: {exc.strerror or exc}; the partial output was removed",
                          out) from None
    return total
