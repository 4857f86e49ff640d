"""Raw medical images -> a prepared dataset (:mod:`medgan.data.dataset`), with grouped stratified splits.

The pipeline, per source (a file or a DICOM series folder):

1. read it (:func:`medgan.data.io.read_image`);
2. intensities to ``[0, 1]``: CT windowing ``ScaleIntensityRange(LOW, HIGH)`` in HU when a
   window is given, else per-image min-max ``ScaleIntensity``;
3. volumes: ``Orientation`` to RAS, then ``Spacing`` resampling when ``spacing`` is given, then
   the radiological ``(D, H, W)`` layout (slices inferior to superior, rows anterior to posterior,
   columns patient right to left); with ``slices`` set, the ``n_slices`` central slices along
   the chosen axis become 2D images;
4. ``Resize`` (``fit="resize"``: area averaging to shrink, linear to enlarge) or centre
   ``ResizeWithPadOrCrop`` (``fit="crop"``) to ``size`` (a square, or a cube for volumes), then
   ``uint8``;
5. channels: grey or RGB (``channels``; by default RGB only when some input is RGB).

Splits are stratified by label and grouped by patient: every slice of a volume, and every image
of a patient, lands in one split. A CSV manifest may fix the splits itself.

Finding the inputs is :mod:`medgan.data.sources`, the splits :mod:`medgan.data.splits`; this module
holds the per-image transforms and the command that joins them into a prepared dataset.

Example:
    >>> info = preprocess("scans/", "prepared/", PreprocessOptions(size=64, slices="axial"))
    >>> info.counts["train"]
    [40, 38]
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Orientation,
    Resize,
    ResizeWithPadOrCrop,
    ScaleIntensity,
    ScaleIntensityRange,
    Spacing,
)
from rich.console import Console
from rich.progress import track

from medgan.data.dataset import SPLITS, DatasetInfo, save_prepared
from medgan.data.io import Image, read_image
from medgan.data.pseudonym import Pseudonymiser
from medgan.data.sources import Source, class_names_of, find_sources
from medgan.data.splits import check_manifest_splits, split_sources
from medgan.errors import MedganError
from medgan.utils import atomic_dir, check_free_space, check_not_input, check_stop

__all__ = [
    "Fit",
    "PreparedImage",
    "PreprocessOptions",
    "SliceAxis",
    "prepare_image",
    "preprocess",
]

Fit = Literal["resize", "crop"]
SliceAxis = Literal["axial", "coronal", "sagittal"]
FITS: tuple[str, ...] = ("resize", "crop")
SLICE_AXES: tuple[str, ...] = ("axial", "coronal", "sagittal")
SOURCES_CSV = "sources.csv"

# One output of prepare_image: uint8 (C, *spatial), its spacing in mm (or None), its slice index.
PreparedImage = tuple[np.ndarray, tuple[float, ...] | None, int | None]


@dataclass
class PreprocessOptions:
    """Every parameter of ``medgan preprocess`` (recorded in the sidecar's ``preprocessing``).

    Args:
        size: output side in pixels: ``(size, size)`` images or ``(size, size, size)`` volumes.
        fit: ``"resize"`` scales to ``size`` (aspect ratio not kept); ``"crop"`` centre-crops or
            zero-pads (after intensity scaling) to ``size``.
        spacing: volumes only: resample to this spacing in mm, ``(x, y, z)`` in RAS order or one
            value for isotropic voxels; ``None`` keeps the native spacing.
        window: ``(low, high)`` CT window in HU (or the image's own units), clipped; ``None``
            scales each image by its own min and max.
        slices: take 2D slices from volumes along this axis; ``None`` keeps volumes 3D.
        n_slices: number of central slices per volume.
        channels: 1 (grey) or 3 (RGB); ``None``: 3 when any input is RGB, else 1.
        val_frac: fraction of the groups (patients, or images) per class for validation.
        test_frac: fraction of the groups per class for test.
        seed: seed of the split.
        nan_to: replace NaN and infinite input values by this value (after the file's own rescaling);
            ``None`` refuses a file that has any (:func:`medgan.data.io.check_finite`).
        pseudonymise: write keyed pseudonyms (:class:`medgan.data.pseudonym.Pseudonymiser`) instead of
            patient IDs and source paths into ``sources.csv``, and no source path into the sidecar.
    """

    size: int = 64
    fit: Fit = "resize"
    spacing: tuple[float, ...] | None = None
    window: tuple[float, float] | None = None
    slices: SliceAxis | None = None
    n_slices: int = 1
    channels: int | None = None
    val_frac: float = 0.1
    test_frac: float = 0.2
    seed: int = 0
    nan_to: float | None = None
    pseudonymise: bool = False

    def validate(self) -> None:
        """Raise :class:`MedganError` for a value out of range (the message names the option)."""
        if self.size < 2:
            raise MedganError(f"--size must be at least 2, got {self.size}")
        if self.fit not in FITS:
            raise MedganError(f"--fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.slices is not None and self.slices not in SLICE_AXES:
            raise MedganError(f"--slices must be one of {', '.join(SLICE_AXES)}, got {self.slices!r}")
        if self.n_slices < 1:
            raise MedganError(f"--n-slices must be at least 1, got {self.n_slices}")
        if self.channels not in (None, 1, 3):
            raise MedganError(f"--channels must be 1 or 3, got {self.channels}")
        if self.spacing is not None and (len(self.spacing) not in (1, 3) or min(self.spacing) <= 0):
            raise MedganError(f"--spacing needs one or three positive values in mm, got {self.spacing}")
        if self.window is not None and (len(self.window) != 2 or self.window[0] >= self.window[1]):
            raise MedganError(f"--window needs LOW,HIGH with LOW < HIGH, got {self.window}")
        for name, frac in (("--val-frac", self.val_frac), ("--test-frac", self.test_frac)):
            if not 0.0 <= frac < 1.0:
                raise MedganError(f"{name} must be in [0, 1), got {frac}")
        if self.nan_to is not None and not np.isfinite(self.nan_to):
            raise MedganError(f"--nan-to must be a finite number, got {self.nan_to}")
        if self.val_frac + self.test_frac >= 1.0:
            raise MedganError(f"--val-frac + --test-frac must be below 1, got {self.val_frac + self.test_frac:g}")


@dataclass
class _Prepared:
    """One output image: uint8 ``(C, *spatial)`` with C = 1 or 3, and its spacing when known."""

    array: np.ndarray
    spacing: tuple[float, ...] | None
    source: int
    slice_index: int | None


# Transforms.


def _dhw_affine(spacing: tuple[float, ...] | None) -> np.ndarray:
    """A RAS+ affine for a ``(D, H, W)`` array in the radiological layout (D -> superior,
    H -> posterior, W -> patient left), for volumes whose file gives no geometry."""
    sd, sh, sw = spacing if spacing is not None else (1.0, 1.0, 1.0)
    affine = np.zeros((4, 4))
    affine[0, 2], affine[1, 1], affine[2, 0], affine[3, 3] = -sw, -sh, sd, 1.0
    return affine


def _scale_intensity(t: torch.Tensor, window: tuple[float, float] | None) -> torch.Tensor:
    """To ``[0, 1]``: the window clipped (CT in HU), else the image's own min and max."""
    if window is not None:
        out = ScaleIntensityRange(a_min=window[0], a_max=window[1], b_min=0.0, b_max=1.0, clip=True)(t)
    else:
        out = ScaleIntensity(minv=0.0, maxv=1.0)(t)
    assert isinstance(out, torch.Tensor)
    return out


def _fit(t: torch.Tensor, size: int, fit: str, spacing: tuple[float, ...] | None) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Resize or centre crop/pad a ``(C, *spatial)`` tensor to ``size``; returns uint8 and the new spacing."""
    spatial = tuple(int(s) for s in t.shape[1:])
    target = (size,) * len(spatial)
    if fit == "resize":
        # Shrink by area averaging (a box filter: no aliasing), then enlarge linearly. MONAI's
        # Resize(anti_aliasing=True) smooths with zero padding, which darkens the borders.
        shrunk = tuple(min(n, size) for n in spatial)
        out = Resize(spatial_size=shrunk, mode="area")(t) if shrunk != spatial else t
        if shrunk != target:
            out = Resize(spatial_size=target, mode="bilinear" if len(spatial) == 2 else "trilinear")(out)
        if spacing is not None:
            spacing = tuple(sp * n / size for sp, n in zip(spacing, spatial, strict=True))
    else:
        out = ResizeWithPadOrCrop(spatial_size=target)(t)
    arr = np.asarray(torch.as_tensor(out).detach().cpu().numpy(), dtype=np.float32)
    u8 = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return u8, spacing


def _central(n: int, k: int) -> range:
    start = (n - k) // 2
    return range(start, start + k)


def prepare_image(image: Image, options: PreprocessOptions, path: Path | None = None) -> list[PreparedImage]:
    """Apply the pipeline to one image (see the module docstring).

    Args:
        image: as returned by :func:`medgan.data.io.read_image`.
        options: the preprocessing parameters.
        path: the source, for error messages.

    Returns:
        ``[(array, spacing, slice_index)]``: uint8 ``(C, *spatial)`` arrays (C is 1 or 3, as in
        the input), their spacing in mm when known, and the slice index for slices of a volume.

    Raises:
        MedganError: for RGB volumes, too few slices for ``n_slices``, or ``spacing`` on a volume
            without known spacing.
    """
    where = path if path is not None else image.meta.get("path")
    dims = image.spatial_dims
    if dims == 2:
        arr = np.moveaxis(image.array, -1, 0) if image.rgb else image.array[None]  # (C, H, W)
        t = _scale_intensity(torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32), options.window)
        u8, sp = _fit(t, options.size, options.fit, image.spacing)
        return [(u8, sp, None)]
    if dims != 3:
        raise MedganError(f"is a {dims}D image; medgan prepares 2D images and 3D volumes", where)
    if image.rgb:
        raise MedganError("RGB volumes are not supported; give grey volumes or 2D RGB images", where)
    if options.spacing is not None and image.affine is None and image.spacing is None:
        raise MedganError("--spacing needs the voxel spacing, which this file does not give", where)

    affine = image.affine if image.affine is not None else _dhw_affine(image.spacing)
    vol: torch.Tensor = MetaTensor(torch.as_tensor(image.array[None], dtype=torch.float32),
                                   affine=torch.as_tensor(affine))
    vol = _scale_intensity(vol, options.window)  # (1, X, Y, Z) in the file's voxel order
    vol = Orientation(axcodes="RAS", labels=None)(vol)  # (1, R, A, S)
    if options.spacing is not None:
        pixdim = options.spacing * 3 if len(options.spacing) == 1 else options.spacing
        vol = Spacing(pixdim=pixdim, mode="bilinear", padding_mode="border")(vol)
    assert isinstance(vol, MetaTensor)
    ras_spacing = [float(v) for v in np.linalg.norm(np.asarray(vol.affine)[:3, :3], axis=0)]
    known = image.affine is not None or image.spacing is not None
    # (1, R, A, S) -> (1, S, P, L): D inferior->superior, H anterior->posterior, W right->left.
    dhw = vol.as_tensor().permute(0, 3, 2, 1).flip(2, 3)
    dhw_spacing = (ras_spacing[2], ras_spacing[1], ras_spacing[0])

    if options.slices is None:
        u8, sp = _fit(dhw, options.size, options.fit, dhw_spacing if known else None)
        return [(u8, sp, None)]
    axis = SLICE_AXES.index(options.slices) + 1  # 1: D (axial), 2: H (coronal), 3: W (sagittal)
    n = int(dhw.shape[axis])
    if options.n_slices > n:
        raise MedganError(f"has {n} {options.slices} slices, fewer than --n-slices {options.n_slices}", where)
    in_plane = tuple(s for i, s in enumerate(dhw_spacing) if i != axis - 1)
    out: list[PreparedImage] = []
    for k in _central(n, options.n_slices):
        sl = dhw.select(axis, k)  # (1, H, W)
        if options.slices != "axial":
            sl = sl.flip(1)  # coronal and sagittal: superior at the top
        u8, sp = _fit(sl.contiguous(), options.size, options.fit, in_plane if known else None)
        out.append((u8, sp, k))
    return out


# The command.


def _to_channels(images: list[np.ndarray], channels: int) -> list[np.ndarray]:
    """uint8 ``(C, *spatial)`` with C in {1, 3} -> C = ``channels`` (ITU-R 601 luma for grey)."""
    out = []
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    for a in images:
        if a.shape[0] == channels:
            out.append(a)
        elif channels == 3:
            out.append(np.repeat(a, 3, axis=0))
        else:
            grey = np.tensordot(weights, a.astype(np.float32), axes=(0, 0))
            out.append(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[None])
    return out


def _common_spacing(spacings: Sequence[tuple[float, ...] | None]) -> list[float] | None:
    if not spacings or any(s is None for s in spacings):
        return None
    first = np.asarray(spacings[0])
    if all(np.allclose(np.asarray(s), first, rtol=1e-3, atol=1e-6) for s in spacings):
        return [round(float(v), 6) for v in first]
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _read_all(sources: Sequence[Source], opts: PreprocessOptions, progress: bool) -> tuple[list[_Prepared], list[str | None]]:
    """Read and transform one source at a time (full-resolution volumes are not kept); also
    return each source's patient: the manifest's, else the DICOM PatientID, else ``None``."""
    prepared: list[_Prepared] = []
    patients: list[str | None] = []
    steps = track(sources, description="Reading images", console=Console(stderr=True),
                  disable=not progress, transient=True)
    for i, s in enumerate(steps):
        check_stop()  # a Ctrl-C swallowed inside a reader's destructor still stops the run
        image = read_image(s.path, expect_dims=(2, 3), nan_to=opts.nan_to)
        patients.append(s.patient_id or image.meta.get("patient_id"))
        prepared.extend(_Prepared(arr, sp, i, k) for arr, sp, k in prepare_image(image, opts, s.path))
    return prepared, patients


def _estimate_bytes(sources: Sequence[Source], opts: PreprocessOptions) -> int:
    """Roughly the size of the prepared dataset, erring large: uncompressed uint8 images plus sources.csv.

    A folder (a DICOM series) or a NIfTI file counts as a volume unless ``--slices`` is given.
    """
    total = 0
    for s in sources:
        nifti = s.path.name.lower().endswith((".nii", ".nii.gz"))
        volume = opts.slices is None and (s.path.is_dir() or nifti)
        images = opts.n_slices if opts.slices is not None else 1
        channels = opts.channels or (1 if volume else 3)
        total += images * (opts.size ** (3 if volume else 2) * channels + 256)
    return total


def _spatial_dims(prepared: Sequence[_Prepared], sources: Sequence[Source]) -> int:
    """2 or 3, the same for every output image; mixing them is an error."""
    first: dict[int, Path] = {}
    for p in prepared:
        first.setdefault(p.array.ndim - 1, sources[p.source].path)
    if len(first) > 1:
        raise MedganError(
            f"inputs mix 2D images ({first[2]}) and 3D volumes ({first[3]}); "
            "pass --slices to take 2D slices from the volumes"
        )
    return next(iter(first))


def preprocess(
    src: str | Path | None,
    out: str | Path,
    options: PreprocessOptions | None = None,
    *,
    csv_path: str | Path | None = None,
    overwrite: bool = False,
    name: str | None = None,
    progress: bool = False,
    pseudonym_key: str | Path | None = None,
) -> DatasetInfo:
    """Build a prepared dataset in ``out`` from raw DICOM / NIfTI / PNG / JPEG files.

    Args:
        src: a folder with one sub-folder per class, or a CSV manifest (see :func:`find_sources`).
        out: the output folder; written atomically (nothing is left behind on failure).
        options: the preprocessing parameters (defaults: 64 pixels, min-max, 70/10/20 split).
        csv_path: a CSV manifest; labels (and splits, if it has a ``split`` column) come from it.
        overwrite: replace a non-empty ``out``.
        name: the dataset's name in the sidecar; by default the name of ``out``.
        progress: show a Rich progress bar on stderr while reading.
        pseudonym_key: with ``options.pseudonymise``, a secret key file (created if missing) that
            keeps pseudonyms stable across runs; it may not lie in ``out``. ``None``: a random key,
            forgotten after the run.

    Returns:
        The sidecar written to ``out/dataset.json`` (with the counts per split and class).
        ``out`` also holds ``sources.csv``: per image its split, index in the split, label, source
        file and patient, and for slices the slice index along the chosen axis of the volume in
        the radiological ``(D, H, W)`` layout. Unless ``options.pseudonymise``, the source files
        (relative paths), the patient IDs and (in the sidecar's ``source``) the absolute path of the
        source folder are written as they are: see docs/data.md, "Identifiers".

    Raises:
        MedganError: for any bad input: see :func:`find_sources`, :func:`read_manifest`,
            :func:`medgan.data.io.read_image`, :func:`split_sources`; or ``out`` not empty.

    Example:
        >>> preprocess("scans/", "prepared/", PreprocessOptions(size=28), overwrite=True).counts
        {'train': [30, 25], 'val': [4, 4], 'test': [9, 7]}
    """
    opts = options or PreprocessOptions()
    opts.validate()
    out = Path(out)
    manifest: Path | None
    if csv_path is not None:
        manifest = Path(csv_path)
        root = Path(src) if src is not None else Path(csv_path).parent
    elif src is not None and Path(src).suffix.lower() == ".csv":
        manifest = Path(src)
        root = manifest.parent
    else:
        manifest = None
        root = Path(src) if src is not None else Path(".")
    # The source folder is read recursively, so --out may not lie inside it either.
    scanned = root if manifest is None else None
    check_not_input(out, {"the CSV manifest": manifest}, folders={"the source folder": scanned})
    pseudonyms: Pseudonymiser | None = None
    if opts.pseudonymise:
        if pseudonym_key is not None and Path(pseudonym_key).resolve().is_relative_to(out.resolve()):
            raise MedganError("--pseudonym-key must not lie in --out: the key would travel with the data",
                              pseudonym_key)
        pseudonyms = Pseudonymiser.from_key_file(pseudonym_key) if pseudonym_key else Pseudonymiser()
    elif pseudonym_key is not None:
        raise MedganError("--pseudonym-key is only used with --pseudonymise")

    with atomic_dir(out, overwrite) as tmp:
        sources = find_sources(src, csv_path)
        check_not_input(out, {f"source {i + 1} of {len(sources)}": s.path for i, s in enumerate(sources)})
        check_free_space(out, _estimate_bytes(sources, opts), f"a prepared dataset of {len(sources)} sources")
        class_names = class_names_of(sources)
        labels = [class_names.index(s.label) for s in sources]
        prepared, patients = _read_all(sources, opts, progress)
        spatial_dims = _spatial_dims(prepared, sources)

        # Splits, at the level of sources, grouped by patient (else each source is its own group).
        by_patient = any(p for p in patients)
        groups = [f"patient:{p}" if p else f"source:{i}" for i, p in enumerate(patients)]
        if all(s.split is not None for s in sources):
            split_of = [str(s.split) for s in sources]
            check_manifest_splits(split_of, groups, manifest)
            split_by = "manifest"
        else:
            split_of = split_sources(labels, groups, class_names, opts.val_frac, opts.test_frac, opts.seed,
                                     grouped_by_patient=by_patient)
            split_by = "stratified by label, grouped by patient" if by_patient else "stratified by label"

        # Channels: RGB only when asked, or (by default) when some input is RGB.
        any_rgb = any(p.array.shape[0] == 3 for p in prepared)
        channels = opts.channels if opts.channels is not None else (3 if any_rgb else 1)
        if spatial_dims == 3 and channels != 1:
            raise MedganError("volumes are grey: --channels 3 needs 2D images (or --slices)")
        arrays = _to_channels([p.array for p in prepared], channels)

        # Arrays in the npz layout: (N, H, W), (N, H, W, 3) or (N, D, H, W); and sources.csv rows.
        shape = (opts.size,) * spatial_dims
        images: dict[str, np.ndarray] = {}
        split_labels: dict[str, np.ndarray] = {}
        rows: list[list[str]] = []
        for split in SPLITS:
            idx = [j for j, p in enumerate(prepared) if split_of[p.source] == split]
            stack = [arrays[j][0] if channels == 1 else np.moveaxis(arrays[j], 0, -1) for j in idx]
            empty_shape = (0, *shape, 3) if channels == 3 else (0, *shape)
            images[split] = np.stack(stack) if stack else np.zeros(empty_shape, dtype=np.uint8)
            split_labels[split] = np.array([labels[prepared[j].source] for j in idx], dtype=np.int64)
            for n, j in enumerate(idx):
                p, s = prepared[j], sources[prepared[j].source]
                where, patient = _relative(s.path, root), patients[p.source] or ""
                if pseudonyms is not None:  # the split above used the real IDs: the same split either way
                    where, patient = pseudonyms.source(where), pseudonyms.patient(patient) if patient else ""
                rows.append([split, str(n), str(labels[p.source]), s.label, where,
                             "" if p.slice_index is None else str(p.slice_index), patient])

        params = asdict(opts)
        params.update(
            channels=channels,
            spacing=list(opts.spacing) if opts.spacing is not None else None,
            window=list(opts.window) if opts.window is not None else None,
            labels_from="csv" if manifest is not None else "folders",
            split_by=split_by,
            sources=len(sources),
            patients=len({g for g in groups if g.startswith("patient:")}),
        )
        info = DatasetInfo(
            name=name or out.name,
            class_names=list(class_names),
            channels=channels,
            spatial_dims=spatial_dims,
            size=list(shape),
            source="pseudonymised" if pseudonyms is not None else str((manifest or root).resolve()),
            sha256="",
            preprocessing=params,
            spacing=_common_spacing([p.spacing for p in prepared]),
        )
        info = save_prepared(tmp, images, split_labels, info)
        with open(tmp / SOURCES_CSV, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["split", "index", "label", "class", "source", "slice", "patient_id"])
            writer.writerows(rows)
    return info
