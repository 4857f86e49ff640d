"""What every format writer shares: the formats, what each can hold, the export's fixed facts, the base class.

A format writer (:mod:`.png`, :mod:`.npz`, :mod:`.nifti`, :mod:`.dicom`) receives batches that
:class:`medgan.synth.export.SampleWriter` has already checked: uint8, channel first, labels in
range. File formats write one sample per file under ``<slug>/``, named
``<slug>_<seed>_<index:06d>``; the base class owns that naming and refuses a name written twice.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from medgan.data.dataset import class_slugs
from medgan.errors import MedganError

__all__ = [
    "FORMATS", "ExportFormat", "ExportInfo", "FormatWriter", "PerFileWriter", "Refusal", "cannot_hold", "check_holds",
    "estimate_bytes", "medgan_version",
]

ExportFormat = Literal["png", "npz", "nifti", "dicom"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)

_SHA_HEX = re.compile(r"^[0-9a-f]{12,64}$")


Refusal = Literal["unknown", "volumes", "rgb"]


def cannot_hold(fmt: str, spatial_dims: int | None = None, channels: int | None = None) -> Refusal | None:
    """The one rule of what each format holds: ``None`` when ``fmt`` can hold the samples, else why not.

    ``"unknown"``: not one of :data:`FORMATS`; ``"volumes"``: PNG for 3D samples; ``"rgb"``: NIfTI for
    RGB images. With ``spatial_dims`` left out only the name is checked. Callers word the refusal:
    :func:`check_holds` for arrays, :func:`medgan.synth.write.check_format` for ``--format``.

    Raises:
        ValueError: ``spatial_dims`` other than 2 or 3.
    """
    if fmt not in FORMATS:
        return "unknown"
    if spatial_dims is None:
        return None
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if fmt == "png" and spatial_dims == 3:
        return "volumes"
    if fmt == "nifti" and spatial_dims == 2 and channels == 3:
        return "rgb"
    return None


def check_holds(fmt: str, spatial_dims: int, channels: int | None = None) -> None:
    """Refuse a format that is unknown or cannot hold ``spatial_dims``-D samples of ``channels`` channels.

    Raises:
        MedganError: an unknown format; PNG for volumes; NIfTI for RGB images.
        ValueError: ``spatial_dims`` other than 2 or 3.
    """
    reason = cannot_hold(fmt, spatial_dims, channels)
    if reason == "unknown":
        raise MedganError(f"unknown format '{fmt}' (allowed: {', '.join(FORMATS)})")
    if reason == "volumes":
        raise MedganError("PNG is 2D only; use --format nifti, dicom or npz for volumes")
    if reason == "rgb":
        raise MedganError("NIfTI holds grey images only; use --format png, dicom or npz for RGB")


_BLOCK = 4096  # a file or folder takes whole blocks of the file system
_OVERHEAD = {"png": 1024, "nifti": 1024, "dicom": 4096, "npz": 0}  # headers, poor compression, per file
_MANIFEST_ROW = 256  # one manifest.csv line


def estimate_bytes(fmt: str, n: int, spatial_dims: int, size: Sequence[int], channels: int) -> int:
    """Roughly how many bytes an export of ``n`` samples takes on disk, erring on the large side.

    Uncompressed uint8 pixels plus each format's header, rounded up to file-system blocks per file
    (one file per sample; a 3D DICOM file adds a little per frame), plus the manifest.
    :func:`medgan.utils.check_free_space` compares it with the free space before anything is written.

    Example:
        >>> estimate_bytes("png", 1000, 2, [28, 28], 1)
        4360192
    """
    pixels = int(np.prod(size)) * channels
    blocks = lambda nbytes: -(-nbytes // _BLOCK) * _BLOCK  # noqa: E731
    if fmt == "npz":
        per_sample = pixels
    elif fmt == "dicom" and spatial_dims == 3:
        per_sample = blocks(pixels + _OVERHEAD["dicom"] + 128 * int(size[0]))  # one multi-frame file
    else:
        per_sample = blocks(pixels + _OVERHEAD.get(fmt, _BLOCK))
    return n * (per_sample + _MANIFEST_ROW) + 2 * _BLOCK


def medgan_version() -> str:
    """medgan's version, read when a file is written (``medgan`` imports this package lazily)."""
    from medgan.version import __version__

    return __version__


@dataclass(frozen=True)
class ExportInfo:
    """The facts of one export that every file records: classes, geometry, and where the samples came from.

    Attributes:
        class_names: names by label index; ``slugs`` are their file-safe forms.
        spatial_dims: 2 (images) or 3 (volumes).
        checkpoint_sha256: lower-case hex sha256 of the generator checkpoint.
        dataset_name: the training dataset's name.
        spacing: mm in array order (``[H, W]`` or ``[D, H, W]``).
        modality: the DICOM Modality.
    """

    class_names: tuple[str, ...]
    spatial_dims: int
    checkpoint_sha256: str
    dataset_name: str
    spacing: tuple[float, ...]
    modality: str = "OT"

    @classmethod
    def checked(cls, class_names: Sequence[str], spatial_dims: int, checkpoint_sha256: str, dataset_name: str,
                spacing: Sequence[float] | None = None, modality: str = "OT") -> ExportInfo:
        """Build one from user arguments: the sha256 must be hex, the spacing positive (default 1 mm).

        Raises:
            ValueError: a sha256 that is not a hex digest, or a bad spacing.
        """
        sha = str(checkpoint_sha256).lower()
        if not _SHA_HEX.match(sha):
            raise ValueError(f"checkpoint_sha256 must be a hex digest, got {checkpoint_sha256!r}")
        spacing_ = [1.0] * spatial_dims if spacing is None else [float(s) for s in spacing]
        if len(spacing_) != spatial_dims or not all(np.isfinite(s) and s > 0 for s in spacing_):
            raise ValueError(f"spacing must be {spatial_dims} positive numbers, got {spacing_}")
        return cls(tuple(str(c) for c in class_names), spatial_dims, sha, dataset_name, tuple(spacing_), modality)

    @property
    def slugs(self) -> list[str]:
        return class_slugs(list(self.class_names))

    def marking(self, label: int) -> str:
        """The text that marks a file as synthetic (PNG Description, DICOM ImageComments)."""
        return (
            f"SYNTHETIC image generated by medgan {medgan_version()}; not a patient image. "
            f"Checkpoint sha256 {self.checkpoint_sha256}; class {label} '{self.class_names[label]}'; "
            f"trained on {self.dataset_name}."
        )


class FormatWriter(ABC):
    """One export in one format, batch by batch.

    Per-file formats subclass :class:`PerFileWriter`; a format that collects samples and writes
    them at the end (npz) implements :meth:`write_batch` and :meth:`close` itself.

    Args:
        out_dir: the (temporary) output folder; it exists.
        info: the export's fixed facts.
    """

    def __init__(self, out_dir: Path, info: ExportInfo) -> None:
        self.out_dir = out_dir
        self.info = info

    @abstractmethod
    def write_batch(self, images: np.ndarray, labels: np.ndarray, seeds: list[int], indices: list[int]) -> list[str]:
        """Write checked samples ``(B, C, *spatial)``; return per sample the path (relative to ``out_dir``) holding it."""

    def close(self) -> list[str]:
        """Finish the export; return the files written now (relative to ``out_dir``)."""
        return []


class PerFileWriter(FormatWriter):
    """A format that writes one file (or folder) per sample, named ``<slug>/<slug>_<seed>_<index>``.

    Subclasses implement :meth:`write_sample`.
    """

    def __init__(self, out_dir: Path, info: ExportInfo) -> None:
        super().__init__(out_dir, info)
        self._slugs = info.slugs
        self._made: set[str] = set()  # class folders created so far
        self._names: set[str] = set()  # files written so far, without suffix

    def write_batch(self, images: np.ndarray, labels: np.ndarray, seeds: list[int], indices: list[int]) -> list[str]:
        files = []
        for img, lab, seed, idx in zip(images, labels, seeds, indices, strict=True):
            slug = self._slugs[lab]
            rel = f"{slug}/{slug}_{seed}_{idx:06d}"
            if rel in self._names:
                raise ValueError(f"sample {idx} (seed {seed}, class {slug}) was already written")
            self._names.add(rel)
            if slug not in self._made:
                (self.out_dir / slug).mkdir(exist_ok=True)
                self._made.add(slug)
            files.append(self.write_sample(img, int(lab), int(idx), rel))
        return files

    @abstractmethod
    def write_sample(self, img: np.ndarray, label: int, index: int, rel: str) -> str:
        """Write one sample ``(C, *spatial)`` at ``rel`` plus the format's suffix; return that path."""
