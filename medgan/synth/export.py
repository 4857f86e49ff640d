"""Writers for synthetic samples (PNG, npz, NIfTI, DICOM) and the provenance files beside them.

Every writer takes uint8 arrays, channel first — ``(N, C, H, W)`` images (C = 1 or 3) or
``(N, 1, D, H, W)`` volumes — with integer labels ``(N,)``, the class names, and per sample the
seed and sample index. It writes into a folder that the caller builds with
:func:`medgan.utils.atomic_dir` and renames at the end. Nothing is read from any training file:
DICOM headers are built from scratch out of the arguments, so no patient value can leak.

Layout of an output folder (``<slug>`` is the class name made file-safe, see :func:`medgan.data.dataset.class_slugs`)::

    png    <slug>/<slug>_<seed>_<index:06d>.png
    nifti  <slug>/<slug>_<seed>_<index:06d>.nii.gz
    dicom  <slug>/<slug>_<seed>_<index:06d>.dcm            (2D: each image its own series)
           <slug>/<slug>_<seed>_<index:06d>/<k:04d>.dcm    (3D: one series per volume)
    npz    dataset.npz + dataset.json                       (a prepared dataset, train split only)
    all    manifest.csv, provenance.json                    (:func:`write_manifest`, :func:`write_provenance`)

Example:
    >>> with atomic_dir("synthetic/") as tmp, SampleWriter(tmp, fmt="png", class_names=names,
    ...         spatial_dims=2, checkpoint_sha256=sha, dataset_name="breastmnist") as writer:
    ...     for images, labels, seeds, indices in batches:   # (B, C, H, W) uint8
    ...         writer.write(images, labels, seeds=seeds, indices=indices)
    ...     write_manifest(tmp, writer.manifest)
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import numpy as np

from medgan.data.dataset import class_slugs
from medgan.errors import MedganError

__all__ = [
    "FORMATS",
    "ExportFormat",
    "ManifestRow",
    "SampleWriter",
    "manifest_rows",
    "nifti_array_affine",
    "write_manifest",
    "write_provenance",
    "write_samples",
]

ExportFormat = Literal["png", "npz", "nifti", "dicom"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)

MANIFEST_NAME = "manifest.csv"
PROVENANCE_NAME = "provenance.json"
MANIFEST_COLUMNS = ("file", "class_name", "class_index", "seed", "sample_index")

# DICOM constants: Secondary Capture Image Storage, written one frame per file.
SC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
_SHA_HEX = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class ManifestRow:
    """One line of ``manifest.csv``: where a sample is, its class, and how to regenerate it."""

    file: str
    class_name: str
    class_index: int
    seed: int
    sample_index: int


def _check_format(fmt: str, spatial_dims: int, channels: int | None = None) -> None:
    if fmt not in FORMATS:
        raise MedganError(f"unknown format '{fmt}' (allowed: {', '.join(FORMATS)})")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if fmt == "png" and spatial_dims == 3:
        raise MedganError("PNG is 2D only; use --format nifti, dicom or npz for volumes")
    if fmt == "nifti" and spatial_dims == 2 and channels == 3:
        raise MedganError("NIfTI holds grey images only; use --format png, dicom or npz for RGB")


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
        _check_format(fmt, spatial_dims)
        sha = str(checkpoint_sha256).lower()
        if not _SHA_HEX.match(sha):
            raise ValueError(f"checkpoint_sha256 must be a hex digest, got {checkpoint_sha256!r}")
        spacing = [1.0] * spatial_dims if spacing is None else [float(s) for s in spacing]
        if len(spacing) != spatial_dims or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing must be {spatial_dims} positive numbers, got {spacing}")
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.class_names = [str(c) for c in class_names]
        self.slugs = class_slugs(self.class_names)
        self.spatial_dims = spatial_dims
        self.checkpoint_sha256 = sha
        self.dataset_name = dataset_name
        self.spacing = spacing
        self.modality = modality
        self.manifest: list[ManifestRow] = []
        self.closed = False
        self._channels: int | None = None
        self._npz_images: list[np.ndarray] = []
        self._npz_labels: list[np.ndarray] = []
        self._dicom: _DicomContext | None = None
        self._made: set[str] = set()  # class folders created so far
        self._names: set[str] = set()  # files written so far, without suffix
        self.out_dir.mkdir(parents=True, exist_ok=True)

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
    ) -> list[str]:
        """Write one batch.

        Args:
            images: uint8 ``(B, C, H, W)`` or ``(B, 1, D, H, W)``.
            labels: class indices ``(B,)``.
            seeds: the seed of each sample ``(B,)``, or one seed for the batch.
            indices: the sample index of each sample ``(B,)``; names the files, so keep it unique.

        Returns:
            per sample, the path (relative to ``out_dir``) that holds it: its file, its series
            folder (3D DICOM), or ``dataset.npz`` (written on :meth:`close`).
        """
        if self.closed:
            raise ValueError("this SampleWriter is closed")
        images, labels, seeds_, indices_ = self._check_batch(images, labels, seeds, indices)
        if self.fmt == "npz":
            self._npz_images.append(images.copy())  # the caller may reuse its batch buffer
            self._npz_labels.append(labels)
            files = ["dataset.npz"] * len(images)
        else:
            write_one = {"png": self._write_png, "nifti": self._write_nifti, "dicom": self._write_dicom}[self.fmt]
            files = []
            for img, lab, seed, idx in zip(images, labels, seeds_, indices_, strict=True):
                slug = self.slugs[lab]
                rel = f"{slug}/{slug}_{seed}_{idx:06d}"
                if rel in self._names:
                    raise ValueError(f"sample {idx} (seed {seed}, class {slug}) was already written")
                self._names.add(rel)
                if slug not in self._made:
                    (self.out_dir / slug).mkdir(exist_ok=True)
                    self._made.add(slug)
                files.append(write_one(img, int(lab), int(idx), rel))
        self.manifest.extend(
            ManifestRow(f, self.class_names[lab], int(lab), int(s), int(i))
            for f, lab, s, i in zip(files, labels, seeds_, indices_, strict=True)
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
        if self.fmt != "npz":
            return []
        return self._write_npz()

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
        _check_format(self.fmt, self.spatial_dims, channels)
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

    # PNG.

    def _write_png(self, img: np.ndarray, label: int, index: int, rel: str) -> str:
        from PIL import Image, PngImagePlugin

        # (C, H, W) -> (H, W) grey or (H, W, 3) RGB; compress_level 1: fast, still lossless.
        arr = img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0))
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"medgan {_version()}")
        info.add_text("Description", self._marking(label))
        name = f"{rel}.png"
        # uint8 (H, W) becomes mode L, (H, W, 3) mode RGB.
        Image.fromarray(arr).save(self.out_dir / name, format="PNG", compress_level=1, pnginfo=info)
        return name

    # NIfTI.

    def _write_nifti(self, img: np.ndarray, label: int, index: int, rel: str) -> str:
        import nibabel as nib

        data, affine = nifti_array_affine(img[0], self.spacing)
        nii = nib.Nifti1Image(data, affine)
        nii.set_qform(affine, code=2)  # "aligned": the same geometry for readers that use the qform
        nii.header.set_xyzt_units("mm")
        nii.header["descrip"] = f"medgan synthetic; ckpt {self.checkpoint_sha256[:12]}"[:79]
        name = f"{rel}.nii.gz"
        nib.save(nii, self.out_dir / name)
        return name

    # DICOM.

    def _write_dicom(self, img: np.ndarray, label: int, index: int, rel: str) -> str:
        if self._dicom is None:
            self._dicom = _DicomContext(self)
        if self.spatial_dims == 2:
            # (C, H, W) -> one frame (1, H, W) grey or (1, H, W, 3) RGB, in a one-file series.
            frames = img if img.shape[0] == 1 else img.transpose(1, 2, 0)[None]
            self._dicom.write_series([self.out_dir / f"{rel}.dcm"], frames, label, index)
            return f"{rel}.dcm"
        # (1, D, H, W) -> a folder of D single-frame files, one series.
        series_dir = self.out_dir / rel
        series_dir.mkdir()
        paths = [series_dir / f"{k:04d}.dcm" for k in range(img.shape[1])]
        self._dicom.write_series(paths, img[0], label, index)
        return rel

    # npz.

    def _write_npz(self) -> list[str]:
        from medgan.data.dataset import DatasetInfo, save_prepared, to_channels_last

        if not self._npz_images:
            raise MedganError("no samples to write", self.out_dir)
        train = to_channels_last(np.concatenate(self._npz_images))  # npz layout: (N, *spatial[, 3])
        labels = np.concatenate(self._npz_labels)
        empty = np.zeros((0, *train.shape[1:]), dtype=np.uint8)
        info = DatasetInfo(
            name=f"{self.dataset_name}_synthetic",
            class_names=list(self.class_names),
            channels=int(self._channels or 1),
            spatial_dims=self.spatial_dims,
            size=list(train.shape[1:1 + self.spatial_dims]),
            source=f"synthetic:{self.checkpoint_sha256[:12]}",
            sha256="",
            preprocessing={
                "synthetic": True,
                "generator": f"medgan {_version()}",
                "checkpoint_sha256": self.checkpoint_sha256,
                "trained_on": self.dataset_name,
            },
            spacing=list(self.spacing),
        )
        save_prepared(
            self.out_dir,
            {"train": train, "val": empty, "test": empty},
            {"train": labels, "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)},
            info,
        )
        self._npz_images.clear()
        self._npz_labels.clear()
        return ["dataset.npz", "dataset.json"]

    def _marking(self, label: int) -> str:
        return (
            f"SYNTHETIC image generated by medgan {_version()}; not a patient image. "
            f"Checkpoint sha256 {self.checkpoint_sha256}; class {label} '{self.class_names[label]}'; "
            f"trained on {self.dataset_name}."
        )


def nifti_array_affine(volume: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The NIfTI data array and affine of a medgan volume ``(D, H, W)`` or image ``(H, W)``.

    Axis convention (the one DICOM export uses too): column ``w`` runs along patient x, row ``h``
    along y, slice ``d`` along z, with voxel ``(d, h, w)`` at LPS ``(w·sx, h·sy, d·sz)``. NIfTI
    stores ``(i, j, k) = (w, h, d)``, so the data is transposed to ``(W, H, D)`` and the RAS affine
    is ``diag(-sx, -sy, sz)``; viewers then show each ``(H, W)`` slice as an axial slice, and MONAI
    reads the same array and affine from the NIfTI as from the DICOM series. A 2D image becomes a
    one-slice volume ``(W, H, 1)``.

    Args:
        volume: uint8 ``(D, H, W)`` or ``(H, W)``.
        spacing: mm in array order, ``[sz, sy, sx]`` or ``[sy, sx]``.
    """
    if volume.ndim == 2:
        volume = volume[None]  # (1, H, W)
        spacing = [1.0, *spacing]
    sz, sy, sx = (float(s) for s in spacing)
    data = np.ascontiguousarray(volume.transpose(2, 1, 0))  # (W, H, D)
    affine = np.diag([-sx, -sy, sz, 1.0])
    return data, affine


def _version() -> str:
    from medgan import __version__

    return __version__


def _lo(text: str) -> str:
    """A value fit for a DICOM LO element: at most 64 characters, no backslash or control characters."""
    return re.sub(r"[\\\x00-\x1f]", " ", text)[:64]


class _DicomContext:
    """The UIDs and fixed header of one DICOM export: one Study, one Series per sample."""

    def __init__(self, writer: SampleWriter) -> None:
        from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

        self.w = writer
        self.generate_uid = generate_uid
        self.study_uid = generate_uid()
        # A fixed UID for "medgan <version>" under pydicom's root: the same for every file.
        self.implementation_uid = generate_uid(prefix=PYDICOM_ROOT_UID, entropy_srcs=["medgan", _version()])

    def _base(self, label: int, series_uid: str, series_number: int, series_description: str) -> Any:
        """A fresh dataset with every header element that is not per image."""
        from pydicom.dataset import Dataset

        w = self.w
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: class names may be any text
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.SOPClassUID = SC_IMAGE_STORAGE
        ds.Modality = w.modality
        ds.ConversionType = "SYN"  # synthetic image (defined term of the SC Equipment module)
        ds.SecondaryCaptureDeviceManufacturer = "medgan"
        ds.SecondaryCaptureDeviceManufacturerModelName = "medgan"
        ds.SecondaryCaptureDeviceSoftwareVersions = _version()
        # Patient: no person. Type 2 elements are present and empty; no dates or times anywhere.
        ds.PatientName = "SYNTHETIC"
        ds.PatientID = f"SYN-{w.checkpoint_sha256[:12]}"
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "SYNTHETIC: generated by medgan, no patient data"
        ds.BurnedInAnnotation = "NO"
        ds.ImageComments = w._marking(label)
        # Study and series.
        ds.StudyInstanceUID = self.study_uid
        ds.StudyDate = ""
        ds.StudyTime = ""
        ds.ReferringPhysicianName = ""
        ds.StudyID = ""
        ds.AccessionNumber = ""
        ds.StudyDescription = _lo(f"medgan synthetic {w.dataset_name}")
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = _lo(series_description)
        return ds

    def _save(self, ds: Any, path: Path, pixels: np.ndarray) -> None:
        from pydicom import dcmwrite
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian

        # Image Pixel module: 8-bit unsigned, grey or interleaved RGB.
        rgb = pixels.ndim == 3
        ds.SamplesPerPixel = 3 if rgb else 1
        ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
        if rgb:
            ds.PlanarConfiguration = 0  # R1G1B1 R2G2B2 ...
        ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
        ds["PixelData"].VR = "OB"

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = self.implementation_uid
        meta.ImplementationVersionName = _lo(f"MEDGAN_{_version()}")[:16]
        ds.file_meta = meta
        dcmwrite(path, ds, enforce_file_format=True)

    def write_series(self, paths: Sequence[Path], frames: np.ndarray, label: int, index: int) -> None:
        """One sample as its own series: ``frames`` is ``(D, H, W)``, ``(1, H, W)`` or ``(1, H, W, 3)``.

        Slice ``k`` lies at z = k·sz (ImagePositionPatient ``0\\0\\k·sz``), rows along y and columns
        along x (ImageOrientationPatient ``1\\0\\0\\0\\1\\0``), InstanceNumber k + 1; all slices
        share a fresh Frame of Reference.
        """
        w = self.w
        volume = w.spatial_dims == 3
        sy, sx = w.spacing[-2:]
        sz = w.spacing[0] if volume else 0.0
        series_uid = self.generate_uid()
        frame_of_reference = self.generate_uid()
        description = f"medgan synthetic: {w.class_names[label]} #{index}"
        for k, (path, frame) in enumerate(zip(paths, frames, strict=True)):
            ds = self._base(label, series_uid, index + 1, description)
            ds.SOPInstanceUID = self.generate_uid()
            ds.InstanceNumber = k + 1
            ds.FrameOfReferenceUID = frame_of_reference
            ds.PositionReferenceIndicator = ""
            ds.ImagePositionPatient = ["0", "0", f"{k * sz:g}"]
            ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
            ds.PixelSpacing = [f"{sy:g}", f"{sx:g}"]  # row spacing (y), column spacing (x)
            # A 2D image has no thickness: the type 2 element stays empty.
            ds.SliceThickness = f"{sz:g}" if volume else ""
            if volume:
                ds.SpacingBetweenSlices = f"{sz:g}"
            self._save(ds, path, frame)


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


def manifest_rows(
    files: Sequence[str],
    labels: np.ndarray | Sequence[int],
    class_names: Sequence[str],
    seeds: np.ndarray | Sequence[int] | int,
    indices: np.ndarray | Sequence[int],
) -> list[ManifestRow]:
    """Manifest rows from what :func:`write_samples` returned and the arrays it was given."""
    n = len(files)
    labels_ = np.asarray(labels, dtype=np.int64).reshape(-1)
    seeds_ = np.broadcast_to(np.asarray(seeds, dtype=np.int64), (n,))
    indices_ = np.asarray(indices, dtype=np.int64).reshape(-1)
    if not len(labels_) == len(indices_) == n:
        raise ValueError(f"{n} files but {len(labels_)} labels and {len(indices_)} indices")
    return [
        ManifestRow(f, str(class_names[int(lab)]), int(lab), int(s), int(i))
        for f, lab, s, i in zip(files, labels_, seeds_, indices_, strict=True)
    ]


def write_manifest(out_dir: str | Path, rows: Iterable[ManifestRow]) -> Path:
    """Write ``manifest.csv``: ``file,class_name,class_index,seed,sample_index``, one row per sample.

    For npz every row names ``dataset.npz``, in the order of ``train_images``; for 3D DICOM a row
    names the series folder.
    """
    from medgan.utils import atomic_file

    path = Path(out_dir) / MANIFEST_NAME
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(MANIFEST_COLUMNS)
        out.writerows((r.file, r.class_name, r.class_index, r.seed, r.sample_index) for r in rows)
    return path


def write_provenance(
    out_dir: str | Path,
    *,
    checkpoint_sha256: str,
    config: dict[str, Any],
    dataset_sha256: str | None,
    arguments: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``provenance.json``: what made these samples, and when.

    Args:
        out_dir: the output folder.
        checkpoint_sha256: hex sha256 of the checkpoint.
        config: the training config stored in the checkpoint, as given.
        dataset_sha256: sha256 of the training npz (None when unknown).
        arguments: the ``medgan augment`` arguments, as given (paths become strings).
        extra: anything else to record (counts per class, format, ...).
    """
    from medgan.utils import write_text_atomic

    record = {
        "synthetic": True,
        "generator": "medgan",
        "medgan_version": _version(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint_sha256": checkpoint_sha256,
        "dataset_sha256": dataset_sha256,
        "config": config,
        "arguments": arguments,
        **(extra or {}),
    }
    path = Path(out_dir) / PROVENANCE_NAME
    write_text_atomic(path, json.dumps(record, indent=2, default=str) + "\n")
    return path
