"""From a loaded generator and a per-class plan to a finished output folder: samples, manifest, provenance.

The folder is built in a temporary sibling and renamed at the end (:func:`medgan.utils.atomic_dir`),
so a crash or a full disk never leaves half an export behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from medgan.errors import MedganError
from medgan.synth.export import SampleWriter
from medgan.synth.manifest import write_manifest, write_provenance
from medgan.synth.sampling import LATENT_BLOCK, LoadedGenerator, forward_block, iter_samples
from medgan.synth.writers import FORMATS, cannot_hold, estimate_bytes
from medgan.utils import atomic_dir, check_free_space, check_memory, check_stop

__all__ = ["check_format", "write_synthetic"]


def check_format(fmt: str, gen: LoadedGenerator | None = None) -> None:
    """Refuse a ``--format`` that is unknown or that cannot hold this generator's samples.

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
    out = Path(out)
    # Section. Room for the output (and, for npz, memory: it collects every sample), before any work.
    check_free_space(out, estimate_bytes(fmt, total, gen.spatial_dims, gen.size, gen.channels),
                     f"{total} {fmt} samples")
    if fmt == "npz":
        check_memory(2 * estimate_bytes("npz", total, gen.spatial_dims, gen.size, gen.channels),
                     f"{total} npz samples (collected in memory before the npz is written)",
                     "write fewer samples, or use --format png, nifti or dicom")
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            with SampleWriter(tmp, fmt=fmt, class_names=names, spatial_dims=gen.spatial_dims,  # type: ignore[arg-type]
                              checkpoint_sha256=gen.checkpoint_sha256, dataset_name=str(gen.dataset.get("name")),
                              spacing=gen.spacing) as writer:
                for c, k in counts.items():
                    start = 0
                    for batch in iter_samples(gen, c if conditional else None, k, seed=seed,
                                              batch_size=batch_size, truncation=truncation):
                        writer.write(batch, [c] * len(batch), seeds=seed, indices=range(start, start + len(batch)))
                        start += len(batch)
                        if on_batch is not None:
                            on_batch(len(batch))
                        check_stop()  # a Ctrl-C that a library swallowed still stops the export
            write_manifest(tmp, writer.manifest)
            write_provenance(tmp, checkpoint_sha256=gen.checkpoint_sha256, config=gen.config,
                             dataset_sha256=gen.dataset.get("sha256"), arguments=arguments or {}, extra=record)
    except OSError as exc:
        # atomic_dir has removed the temporary folder; a replaced --out still holds its old content.
        raise MedganError(f"could not write the samples: {exc.strerror or exc}; the partial output was removed",
                          out) from None
    return total
