"""The export of synthetic samples: :class:`SampleWriter` checks every batch and hands it to one format writer.

Every writer takes uint8 arrays, channel first — ``(N, C, H, W)`` images (C = 1 or 3) or
``(N, 1, D, H, W)`` volumes — with integer labels ``(N,)``, the class names, and per sample the
seed and sample index. It writes into a folder that the caller builds with
:func:`medgan.utils.atomic_dir` and renames at the end. Nothing is read from any training file:
DICOM headers are built from scratch out of the arguments, so no patient value can leak.

The formats are :mod:`medgan.synth.writers` (one module each, with the folder layout);
``manifest.csv`` and ``provenance.json`` are :mod:`medgan.synth.manifest`.

Example:
    >>> with atomic_dir("synthetic/") as tmp, SampleWriter(tmp, fmt="png", class_names=names,
    ...         spatial_dims=2, checkpoint_sha256=sha, dataset_name="breastmnist") as writer:
    ...     for images, labels, seeds, indices in batches:   # (B, C, H, W) uint8
    ...         writer.write(images, labels, seeds=seeds, indices=indices)
    ...     write_manifest(tmp, writer.manifest)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from medgan.synth.manifest import ManifestRow
from medgan.synth.writers import WRITERS, ExportFormat, ExportInfo, check_holds

__all__ = ["SampleWriter", "write_samples"]


class SampleWriter:
    """Write synthetic samples batch by batch in one format.

    One writer is one export: its DICOM files share one fresh Study (each sample is its own
    Series), and npz collects the batches and writes ``dataset.npz`` on :meth:`close` (an npz
    cannot be appended to). Use it as a context manager, or call :meth:`close` yourself.

    Args:
        out_dir: the (temporary) output folder.
        fmt: ``png`` (2D), ``npz``, ``nifti`` or ``dicom``.
        class_names: names by label index.
        spatial_dims: 2 (images) or 3 (volumes).
        checkpoint_sha256: hex sha256 of the generator checkpoint; marks every file.
        dataset_name: name of the training dataset (for the npz sidecar and DICOM descriptions).
        spacing: pixel / voxel spacing in mm in array order (``[H, W]`` or ``[D, H, W]``);
            default 1 mm isotropic. Used by NIfTI, DICOM and the npz sidecar.
        modality: the DICOM Modality; ``OT`` (other) unless the dataset's modality is known.

    Raises:
        MedganError: for an unknown format, PNG with volumes, or NIfTI with RGB images.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        fmt: ExportFormat,
        class_names: Sequence[str],
        spatial_dims: int,
        checkpoint_sha256: str,
        dataset_name: str,
        spacing: Sequence[float] | None = None,
        modality: str = "OT",
    ) -> None:
        check_holds(fmt, spatial_dims)
        self.info = ExportInfo.checked(class_names, spatial_dims, checkpoint_sha256, dataset_name, spacing, modality)
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.class_names = list(self.info.class_names)
        self.spatial_dims = spatial_dims
        self.manifest: list[ManifestRow] = []
        self.closed = False
        self._channels: int | None = None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._writer = WRITERS[fmt](self.out_dir, self.info)

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()

    def write(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int],
        *,
        seeds: np.ndarray | Sequence[int] | int,
        indices: np.ndarray | Sequence[int],
        sources: Sequence[str] | None = None,
    ) -> list[str]:
        """Write one batch.

        Args:
            images: uint8 ``(B, C, H, W)`` or ``(B, 1, D, H, W)``.
            labels: class indices ``(B,)``.
            seeds: the seed of each sample ``(B,)``, or one seed for the batch.
            indices: the sample index of each sample ``(B,)``; names the files, so keep it unique.
            sources: for translated images, the image each was made from (the manifest's ``source``).

        Returns:
            per sample, the path (relative to ``out_dir``) that holds it: its file, or
            ``dataset.npz`` (written on :meth:`close`).
        """
        if self.closed:
            raise ValueError("this SampleWriter is closed")
        images, labels, seeds_, indices_ = self._check_batch(images, labels, seeds, indices)
        if sources is not None and len(sources) != len(images):
            raise ValueError(f"sources must have one entry per image ({len(images)}), got {len(sources)}")
        files = self._writer.write_batch(images, labels, seeds_, indices_)
        self.manifest.extend(
            ManifestRow(f, self.class_names[lab], int(lab), int(s), int(i), "" if sources is None else str(src))
            for f, lab, s, i, src in zip(files, labels, seeds_, indices_, sources or [""] * len(files), strict=True)
        )
        return files

    def close(self) -> list[str]:
        """Finish the export; for npz, write ``dataset.npz`` and ``dataset.json`` now.

        Returns:
            the files written by this call (relative to ``out_dir``); empty except for npz.
        """
        if self.closed:
            return []
        self.closed = True
        return self._writer.close()

    # Checks.

    def _check_batch(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int],
        seeds: np.ndarray | Sequence[int] | int,
        indices: np.ndarray | Sequence[int],
    ) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {images.dtype}")
        if images.ndim != 2 + self.spatial_dims:
            raise ValueError(f"images must be (N, C, *spatial) with {self.spatial_dims} spatial dims, got {images.shape}")
        channels = images.shape[1]
        if channels not in ((1, 3) if self.spatial_dims == 2 else (1,)):
            raise ValueError(f"images have {channels} channels; expected 1 or 3 (2D) or 1 (3D)")
        if self._channels is not None and channels != self._channels:
            raise ValueError(f"batch has {channels} channels, earlier batches had {self._channels}")
        check_holds(self.fmt, self.spatial_dims, channels)
        self._channels = channels
        n = len(images)
        labels_ = np.asarray(labels, dtype=np.int64).reshape(-1)
        seeds_ = np.asarray(seeds, dtype=np.int64)
        if seeds_.ndim == 0:  # one seed for the whole batch
            seeds_ = np.full(n, seeds_)
        indices_ = np.asarray(indices, dtype=np.int64).reshape(-1)
        for name, arr in (("labels", labels_), ("seeds", seeds_), ("indices", indices_)):
            if arr.shape != (n,):
                raise ValueError(f"{name} must have one entry per image ({n}), got shape {arr.shape}")
        if n and (labels_.min() < 0 or labels_.max() >= len(self.class_names)):
            raise ValueError(f"labels must lie in 0..{len(self.class_names) - 1}")
        if n and indices_.min() < 0:
            raise ValueError("sample indices must be >= 0")
        return images, labels_, seeds_.tolist(), indices_.tolist()


def write_samples(
    out_dir: str | Path,
    images: np.ndarray,
    labels: np.ndarray | Sequence[int],
    *,
    fmt: ExportFormat,
    class_names: Sequence[str],
    seeds: np.ndarray | Sequence[int] | int,
    indices: np.ndarray | Sequence[int],
    spatial_dims: int,
    checkpoint_sha256: str,
    dataset_name: str,
    spacing: Sequence[float] | None = None,
    modality: str = "OT",
) -> list[str]:
    """Write all samples at once (a :class:`SampleWriter` used for one batch, then closed).

    To stream batches, or to keep one DICOM Study across batches, use :class:`SampleWriter`.

    Args: as :class:`SampleWriter` and :meth:`SampleWriter.write`.

    Returns:
        per sample, the path relative to ``out_dir`` that holds it (for :func:`manifest_rows`).

    Raises:
        MedganError: for an unknown format, PNG with volumes, or NIfTI with RGB images.
    """
    with SampleWriter(
        out_dir, fmt=fmt, class_names=class_names, spatial_dims=spatial_dims,
        checkpoint_sha256=checkpoint_sha256, dataset_name=dataset_name, spacing=spacing, modality=modality,
    ) as writer:
        return writer.write(images, labels, seeds=seeds, indices=indices)
