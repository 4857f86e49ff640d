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

Example:
    >>> info = preprocess("scans/", "prepared/", PreprocessOptions(size=64, slices="axial"))
    >>> info.counts["train"]
    [40, 38]
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter, defaultdict
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
from medgan.data.io import Image, image_kind, read_image
from medgan.errors import MedganError
from medgan.utils import atomic_dir

__all__ = [
    "Fit",
    "PreparedImage",
    "PreprocessOptions",
    "SliceAxis",
    "Source",
    "find_sources",
    "prepare_image",
    "preprocess",
    "read_manifest",
    "split_sources",
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
        if self.val_frac + self.test_frac >= 1.0:
            raise MedganError(f"--val-frac + --test-frac must be below 1, got {self.val_frac + self.test_frac:g}")


@dataclass(frozen=True)
class Source:
    """One input: a file, or a DICOM series folder.

    Args:
        path: the file or folder.
        label: the class name.
        split: the split fixed by a CSV manifest, or ``None`` to draw it.
        patient_id: the patient, for grouping; ``None`` lets the DICOM PatientID (if any) decide.
    """

    path: Path
    label: str
    split: str | None = None
    patient_id: str | None = None


@dataclass
class _Prepared:
    """One output image: uint8 ``(C, *spatial)`` with C = 1 or 3, and its spacing when known."""

    array: np.ndarray
    spacing: tuple[float, ...] | None
    source: int
    slice_index: int | None


# Finding the inputs.


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_folder_sources(folder: Path, label: str) -> list[Source]:
    """Images in one class folder: files directly in it are single images; below it, a folder
    with two or more DICOM files is one series, and any other image file a single image."""
    out: list[Source] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        kinds = {f: image_kind(here / f) for f in sorted(files) if not f.startswith(".") and f.upper() != "DICOMDIR"}
        dicoms = [f for f, k in kinds.items() if k == "dicom"]
        series = here != folder and len(dicoms) >= 2
        if series:
            out.append(Source(here, label))
        for f, k in kinds.items():
            if k is not None and not (series and k == "dicom"):
                out.append(Source(here / f, label))
    return out


def _natural_key(name: str) -> tuple[int, float | str]:
    try:
        return (0, float(name))
    except ValueError:
        return (1, name)


def read_manifest(csv_path: str | Path, root: str | Path | None = None) -> list[Source]:
    """Read a CSV manifest with columns ``path,label[,split][,patient_id]``.

    Args:
        csv_path: the CSV file.
        root: folder the relative paths start from; by default the CSV's own folder.

    Raises:
        MedganError: for a missing ``path`` or ``label`` column, an empty cell, an unknown split,
            or a path that does not exist (the message gives the line number).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MedganError("CSV manifest not found", csv_path)
    base = Path(root) if root is not None else csv_path.parent
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedganError(f"not a readable CSV ({exc})", csv_path) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise MedganError("CSV manifest is empty", csv_path)
    header = [h.strip().lower() for h in rows[0]]
    for needed in ("path", "label"):
        if needed not in header:
            raise MedganError(
                f"CSV manifest has no '{needed}' column (columns: {', '.join(header)}; "
                "expected path,label[,split][,patient_id])",
                csv_path,
            )
    col: dict[str, int] = {n: header.index(n) for n in ("path", "label", "split", "patient_id") if n in header}
    sources: list[Source] = []
    for line, row in enumerate(rows[1:], start=2):
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in col.items()}
        for needed in ("path", "label"):
            if not cells[needed]:
                raise MedganError(f"line {line}: empty '{needed}'", csv_path)
        split = cells.get("split") or None
        if "split" in col:
            split = (split or "").lower()
            if split not in SPLITS:
                raise MedganError(
                    f"line {line}: split '{cells.get('split', '')}' is not one of {', '.join(SPLITS)}", csv_path
                )
        path = Path(cells["path"]).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.exists():
            raise MedganError(f"line {line}: {cells['path']} does not exist (looked for {path})", csv_path)
        sources.append(Source(path, cells["label"], split, cells.get("patient_id") or None))
    if not sources:
        raise MedganError("CSV manifest has a header but no rows", csv_path)
    return sources


def find_sources(src: str | Path | None, csv_path: str | Path | None = None) -> list[Source]:
    """The inputs and their labels: from a CSV manifest, or from one folder per class.

    Args:
        src: a folder with one sub-folder per class (``SRC/<class>/...``, class names sorted),
            or a ``.csv`` manifest. With ``csv_path`` given, ``src`` (if any) is the folder the
            manifest's relative paths start from.
        csv_path: a CSV manifest (``path,label[,split][,patient_id]``).

    Raises:
        MedganError: for a missing or empty folder, a folder without class sub-folders, a class
            folder without images, or a bad manifest.
    """
    if csv_path is not None:
        return read_manifest(csv_path, root=src)
    if src is None:
        raise MedganError("give a source folder or a CSV manifest (--csv)")
    src = Path(src)
    if src.is_file() and src.suffix.lower() == ".csv":
        return read_manifest(src)
    if not src.exists():
        raise MedganError("no such file or folder", src)
    if not src.is_dir():
        raise MedganError("expected a folder of class folders, or a .csv manifest", src)
    entries = [p for p in src.iterdir() if _visible(p)]
    if not entries:
        raise MedganError("folder is empty", src)
    classes = sorted((p for p in entries if p.is_dir()), key=lambda p: p.name)
    if not classes:
        raise MedganError(
            "no class folders: put images in one folder per class (SRC/<class>/...), "
            "or pass a CSV manifest with --csv",
            src,
        )
    sources: list[Source] = []
    for folder in classes:
        found = _class_folder_sources(folder, folder.name)
        if not found:
            raise MedganError(
                "class folder has no images (looked for DICOM files or series, .nii/.nii.gz, .png/.jpg/.jpeg/.bmp)",
                folder,
            )
        sources.extend(found)
    return sources


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


# Splits.


def _needed(frac: float, n: int) -> int:
    return 0 if frac <= 0 else max(1, math.floor(frac * n + 0.5))


def split_sources(
    labels: Sequence[int],
    groups: Sequence[str],
    class_names: Sequence[str],
    val_frac: float = 0.1,
    test_frac: float = 0.2,
    seed: int = 0,
    grouped_by_patient: bool = False,
) -> list[str]:
    """Assign each source to ``train``, ``val`` or ``test``, stratified by label and grouped.

    Every group (a patient, or a source on its own) goes to exactly one split, so no patient is in
    two splits. Groups are stratified by their majority label: per class, ``round(frac * n)``
    groups (at least one when ``frac > 0``) go to test and to val, the rest to train. The draw
    depends only on ``seed`` and the group names, not on the order of the inputs.

    Args:
        labels: label index per source.
        groups: group key per source (sources of one patient share a key).
        class_names: names by label index, for messages.
        val_frac: fraction of each class's groups for validation.
        test_frac: fraction of each class's groups for test.
        seed: seed of the draw.
        grouped_by_patient: only changes the wording of errors ("patients" rather than "images").

    Raises:
        MedganError: when a class has too few groups to give every split at least one.
    """
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_class: dict[int, list[str]] = defaultdict(list)
    for g in sorted(members):
        votes = Counter(labels[i] for i in members[g])
        top = max(votes.values())
        by_class[min(c for c, v in votes.items() if v == top)].append(g)

    rng = np.random.default_rng(seed)
    unit = "patients (images are grouped by patient ID)" if grouped_by_patient else "images"
    need = 1 + (val_frac > 0) + (test_frac > 0)
    group_split: dict[str, str] = {}
    for c, name in enumerate(class_names):
        gs = by_class.get(c, [])
        n_test, n_val = _needed(test_frac, len(gs)), _needed(val_frac, len(gs))
        if len(gs) - n_test - n_val < 1:
            raise MedganError(
                f"class '{name}' has {len(gs)} {unit}; at least {need} are needed to give each split one "
                "(add data, or lower --val-frac / --test-frac)"
            )
        for rank, j in enumerate(rng.permutation(len(gs))):
            group_split[gs[j]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return [group_split[g] for g in groups]


def _check_manifest_splits(sources: Sequence[Source], groups: Sequence[str], csv_hint: Path | None) -> None:
    seen: dict[str, str] = {}
    for s, g in zip(sources, groups, strict=True):
        assert s.split is not None
        other = seen.setdefault(g, s.split)
        if other != s.split:
            who = g.split(":", 1)[1]
            raise MedganError(
                f"patient '{who}' is in both {other} and {s.split}; a patient's images must stay in one split",
                csv_hint,
            )


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
        image = read_image(s.path, expect_dims=(2, 3))
        patients.append(s.patient_id or image.meta.get("patient_id"))
        prepared.extend(_Prepared(arr, sp, i, k) for arr, sp, k in prepare_image(image, opts, s.path))
    return prepared, patients


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

    Returns:
        The sidecar written to ``out/dataset.json`` (with the counts per split and class).
        ``out`` also holds ``sources.csv``: per image its split, index in the split, label, source
        file and patient, and for slices the slice index along the chosen axis of the volume in
        the radiological ``(D, H, W)`` layout.

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
        if root.is_dir() and out.resolve().is_relative_to(root.resolve()):
            raise MedganError("--out must not be inside the source folder", out)

    with atomic_dir(out, overwrite) as tmp:
        sources = find_sources(src, csv_path)
        class_names = sorted({s.label for s in sources}, key=_natural_key)
        labels = [class_names.index(s.label) for s in sources]
        prepared, patients = _read_all(sources, opts, progress)
        spatial_dims = _spatial_dims(prepared, sources)

        # Splits, at the level of sources, grouped by patient (else each source is its own group).
        by_patient = any(p for p in patients)
        groups = [f"patient:{p}" if p else f"source:{i}" for i, p in enumerate(patients)]
        if all(s.split is not None for s in sources):
            _check_manifest_splits(sources, groups, manifest)
            split_of = [str(s.split) for s in sources]
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
                rows.append([split, str(n), str(labels[p.source]), s.label, _relative(s.path, root),
                             "" if p.slice_index is None else str(p.slice_index), patients[p.source] or ""])

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
            source=str((manifest or root).resolve()),
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
