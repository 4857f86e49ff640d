"""Readers for medical images: a DICOM file or series, NIfTI, PNG / JPEG.

Every reader returns an :class:`Image`: a float32 array, its spacing in mm (when known), an affine
(for volumes whose geometry is known) and a little metadata. Anything wrong with the input raises
:class:`~medgan.errors.MedganError` naming the file and the problem, never a raw traceback.

Axis conventions (the same ones :mod:`medgan.data.preprocess` relies on):

- DICOM: ``(H, W)`` rows by columns; a multi-frame file ``(frames, H, W)``; a series folder
  ``(D, H, W)`` with slices ordered along the slice normal. Colour images add a trailing axis of 3.
- NIfTI: nibabel's voxel order ``(i, j, k)``; ``affine`` maps voxel indices to RAS+ mm.
- PNG / JPEG: ``(H, W)`` grey or ``(H, W, 3)`` RGB.

``spacing`` always follows the array's spatial axes; ``affine`` (4x4, voxel index to RAS+ mm) is
given for NIfTI and DICOM series, ``None`` otherwise.

pydicom, nibabel and Pillow are used directly rather than MONAI's ``LoadImage`` readers: MONAI's
readers reorder the axes (``reverse_indexing``) and pass decoder exceptions through unchanged,
while medgan needs rows-by-columns arrays, MONOCHROME1 handled and one-line errors per file.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medgan.errors import MedganError

__all__ = [
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "PICTURE_SUFFIXES",
    "Image",
    "ImageKind",
    "check_finite",
    "image_kind",
    "is_dicom_file",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "read_nifti",
    "read_picture",
]

ImageKind = Literal["dicom", "nifti", "picture"]

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

# DICOM is LPS+, NIfTI and MONAI are RAS+: flip x and y.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Image:
    """One image or volume in memory.

    Args:
        array: float32 pixel or voxel values (see the module docstring for the axis order).
        spacing: mm per pixel / voxel along each spatial axis of ``array``; ``None`` when unknown.
        affine: 4x4 voxel-index to RAS+ mm matrix for volumes with known geometry, else ``None``.
        meta: ``format``, ``path`` and, where the file has them, ``modality``, ``patient_id``,
            ``photometric``, ``files`` (a series' slice files in order).
        rgb: whether the last axis of ``array`` holds three colour channels.
    """

    array: np.ndarray
    spacing: tuple[float, ...] | None
    affine: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    rgb: bool = False

    @property
    def spatial_dims(self) -> int:
        """2 for an image, 3 for a volume (the colour axis is not counted)."""
        return self.array.ndim - (1 if self.rgb else 0)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[: self.spatial_dims])


# Non-finite values.


def check_finite(array: np.ndarray, path: str | Path | None, nan_to: float | None = None, *, what: str = "",
                 fix: str = "fix the file, or pass --nan-to VALUE to replace them") -> np.ndarray:
    """The one rule for NaN and infinite pixel values in the inputs: refuse them, or replace them on request.

    A NaN voxel silently turns a whole image into zeros further down (min-max scaling of NaN is NaN,
    NaN cast to uint8 is 0), so non-finite values are an error unless the user opts in with
    ``--nan-to VALUE``, which replaces every NaN, +inf and -inf by ``VALUE``. Integer arrays are
    always finite and returned as they are.

    Args:
        array: pixel or voxel values.
        path: the file, named in the error.
        nan_to: the value for non-finite entries; ``None`` refuses them.
        what: names the array inside the file (``"train_images "``), for the message.
        fix: what the user can do, the message's last clause.

    Returns:
        ``array`` itself when it is finite, else a copy with the non-finite entries replaced.

    Raises:
        MedganError: non-finite values and ``nan_to`` is ``None`` (the message gives the counts), or a
            ``nan_to`` that is not finite itself.

    Example:
        >>> check_finite(np.array([1.0, np.nan]), "scan.nii", nan_to=0.0)
        array([1., 0.])
    """
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.complexfloating):
        return array
    bad = ~np.isfinite(array)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return array
    if nan_to is not None:
        if not np.isfinite(nan_to):
            raise MedganError(f"--nan-to must be a finite number, got {nan_to}")
        out = array.copy()
        out[bad] = nan_to
        return out
    n_nan = int(np.isnan(array).sum())
    parts = [f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (int(np.isposinf(array).sum()), "+inf"),
                                           (int(np.isneginf(array).sum()), "-inf")) if n]
    raise MedganError(
        f"{what}has {n_bad} non-finite value{'s' if n_bad != 1 else ''} ({', '.join(parts)}) of {array.size}; {fix}",
        path,
    )


# Dispatch.


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` starts with the DICOM preamble and the ``DICM`` marker."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def image_kind(path: Path) -> ImageKind | None:
    """The reader for a file, from its suffix or (for DICOM without a suffix) its magic bytes."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(PICTURE_SUFFIXES):
        return "picture"
    if name.endswith(DICOM_SUFFIXES) or is_dicom_file(path):
        return "dicom"
    return None


def _check_dims(image: Image, expect_dims: int | Sequence[int] | None, path: Path) -> Image:
    if expect_dims is None:
        return image
    allowed = (expect_dims,) if isinstance(expect_dims, int) else tuple(expect_dims)
    if image.spatial_dims not in allowed:
        shape = "x".join(map(str, image.array.shape))
        want = " or ".join(f"{d}D" for d in allowed)
        raise MedganError(f"is a {image.spatial_dims}D image (shape {shape}); expected {want}", path)
    return image


def read_image(path: str | Path, expect_dims: int | Sequence[int] | None = None, nan_to: float | None = None) -> Image:
    """Read a DICOM file, a DICOM series folder, a NIfTI file or a PNG / JPEG.

    The reader is chosen by the path: a folder is a DICOM series; ``.nii`` / ``.nii.gz`` NIfTI;
    ``.png`` / ``.jpg`` / ``.jpeg`` / ``.bmp`` Pillow; ``.dcm`` or a file with the DICOM magic
    bytes pydicom.

    Args:
        path: the file or folder.
        expect_dims: the allowed number of spatial dimensions (``3``, or ``(2, 3)``); ``None``
            accepts any.
        nan_to: the value for NaN / infinite pixels (after rescaling); ``None`` refuses them
            (:func:`check_finite`).

    Raises:
        MedganError: when the path is missing, of an unknown type, unreadable, has non-finite
            values, or has the wrong number of dimensions.

    Example:
        >>> img = read_image("scan/CT_0001.dcm")
        >>> img.array.shape, img.spacing
        ((512, 512), (0.7, 0.7))
    """
    p = Path(path)
    if not p.exists():
        raise MedganError("no such file or folder", p)
    if p.is_dir():
        return read_dicom_series(p, expect_dims=expect_dims, nan_to=nan_to)
    kind = image_kind(p)
    if kind == "nifti":
        return read_nifti(p, expect_dims=expect_dims, nan_to=nan_to)
    if kind == "picture":
        return _check_dims(read_picture(p, nan_to=nan_to), expect_dims, p)
    if kind == "dicom":
        return read_dicom(p, expect_dims=expect_dims, nan_to=nan_to)
    raise MedganError("unknown image type (expected DICOM, NIfTI, PNG or JPEG)", p)


# DICOM.


def _dcmread(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        raise MedganError("not a DICOM file (no 'DICM' marker after the preamble)", path) from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MedganError(f"corrupt DICOM file ({_short(exc)})", path) from None


@contextmanager
def _header_errors(path: Path) -> Iterator[None]:
    """Malformed header values (``RescaleSlope = "1A"``) surface as ValueError / TypeError deep in
    pydicom or numpy; report them as one line naming the file."""
    try:
        yield
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise MedganError(f"invalid DICOM header value ({_short(exc)})", path) from None


def _short(exc: BaseException) -> str:
    """The first clause of an exception message, for one-line errors."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text.split(" - ")[0]


def _lookup(ds: Any, keyword: str, sequences: Sequence[str] = ()) -> Any:
    """An attribute at the top level, else in the shared functional groups of an enhanced object."""
    value = ds.get(keyword)
    if value not in (None, ""):
        return value
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        for seq in sequences:
            items = shared[0].get(seq)
            if items and items[0].get(keyword) not in (None, ""):
                return items[0].get(keyword)
    return None


def _pixel_spacing(ds: Any) -> tuple[float, float] | None:
    ps = _lookup(ds, "PixelSpacing", ["PixelMeasuresSequence"]) or ds.get("ImagerPixelSpacing")
    if ps is None or len(ps) < 2:
        return None
    return float(ps[0]), float(ps[1])


def _slice_spacing(ds: Any) -> float | None:
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = _lookup(ds, key, ["PixelMeasuresSequence"])
        if value not in (None, "") and float(value) > 0:
            return float(value)
    offsets = ds.get("GridFrameOffsetVector")  # RT dose grids give frame positions instead
    if offsets is not None and len(offsets) > 1:
        step = float(np.median(np.abs(np.diff(np.asarray(offsets, dtype=np.float64)))))
        if step > 0:
            return step
    return None


# The pip packages that decode each family of compressed transfer syntaxes (pylibjpeg plugins; all
# of them are dependencies of medgan, so a missing one means a broken or partial install).
_LIBJPEG = "pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pylibjpeg pylibjpeg-openjpeg"
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": _LIBJPEG,  # JPEG Baseline (8-bit)
    "1.2.840.10008.1.2.4.51": _LIBJPEG,  # JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.57": _LIBJPEG,  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": _LIBJPEG,  # JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.80": _LIBJPEG,  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": _LIBJPEG,  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": _OPENJPEG,  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": _OPENJPEG,  # JPEG 2000
    "1.2.840.10008.1.2.4.201": _OPENJPEG,  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": _OPENJPEG,  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": _OPENJPEG,  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",  # RLE Lossless
}


def _transfer_syntax(ds: Any) -> Any:
    meta = getattr(ds, "file_meta", None)
    return meta.get("TransferSyntaxUID") if meta is not None else None


def _syntax_words(ts: Any) -> str:
    name = getattr(ts, "name", "") or ""
    return f"'{name}' ({ts})" if name and name != str(ts) else f"'{ts}'"


def _check_decoder(ds: Any, path: Path) -> None:
    """Refuse, in one line, a compressed transfer syntax that no installed decoder reads: the
    message names the syntax (name and UID) and the package to install."""
    from pydicom.pixels import get_decoder

    ts = _transfer_syntax(ds)
    if ts is None or not getattr(ts, "is_compressed", False):
        return
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise MedganError(
            f"its pixel data uses transfer syntax {_syntax_words(ts)}, which no DICOM decoder medgan knows "
            "reads; convert it to an uncompressed transfer syntax first (e.g. DCMTK's dcmdjpeg or gdcmconv --raw)",
            path,
        ) from None
    if decoder.is_available:
        return
    packages = _DECODER_PACKAGES.get(str(ts))
    hint = f"pip install {packages}" if packages else "install a pydicom decoder plugin for it"
    raise MedganError(
        f"no decoder installed for its transfer syntax {_syntax_words(ts)}; {hint} (medgan's dependencies "
        "include it: reinstall medgan)",
        path,
    )


def _decode_failure(ds: Any, exc: BaseException) -> str:
    """One line for pixel data that a decoder could not read: the transfer syntax, and every
    decoder's reason (pydicom lists them on the lines after its first)."""
    ts = _transfer_syntax(ds)
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    reasons = "; ".join(lines[1:]) if len(lines) > 1 else _short(exc)
    if ts is not None and getattr(ts, "is_compressed", False):
        return f"cannot decode its {_syntax_words(ts)} pixel data ({reasons}); is the file corrupt?"
    return f"cannot read its pixel data; truncated or corrupt? ({reasons})"


def _pixels(ds: Any, path: Path) -> tuple[np.ndarray, bool]:
    """Decoded pixel values: monochrome after the modality LUT (e.g. HU) and MONOCHROME1 inversion,
    colour as RGB. Returns ``(array, rgb)``."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        if "Rows" in ds:
            raise MedganError("has image attributes but no pixel data (truncated or corrupt file?)", path)
        sop = ds.get("SOPClassUID")
        kind = ds.get("Modality") or (sop.name if sop is not None else "unknown")
        raise MedganError(f"DICOM file has no pixel data (object type: {kind})", path)
    _check_decoder(ds, path)
    try:
        raw = ds.pixel_array
    except Exception as exc:  # decoders raise many types; the file is the problem, not medgan
        raise MedganError(_decode_failure(ds, exc), path) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        return np.asarray(apply_color_lut(raw, ds), dtype=np.float32), True
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420"):
        # pydicom converts YBR to RGB while decoding.
        return raw.astype(np.float32), True
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise MedganError(f"unsupported PhotometricInterpretation '{photometric}'", path)
    values = raw.astype(np.float64)
    if photometric == "MONOCHROME1":
        # Low values are displayed bright: mirror the stored values within the stored bit range
        # (independent of the image content, so every slice of a series is inverted alike).
        bits = int(ds.get("BitsStored", 16))
        signed = int(ds.get("PixelRepresentation", 0)) == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        values = (lo + hi) - values
    if ds.get("ModalityLUTSequence"):
        values = np.asarray(apply_modality_lut(values.astype(raw.dtype), ds), dtype=np.float64)
    else:
        slope = _lookup(ds, "RescaleSlope", ["PixelValueTransformationSequence"])
        intercept = _lookup(ds, "RescaleIntercept", ["PixelValueTransformationSequence"])
        if slope is not None:
            values = values * float(slope)
        if intercept is not None:
            values = values + float(intercept)
    return values.astype(np.float32), False


def _dicom_meta(ds: Any, path: Path, fmt: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": fmt, "path": str(path)}
    for key, name in (("Modality", "modality"), ("PatientID", "patient_id"),
                      ("PhotometricInterpretation", "photometric"), ("SeriesInstanceUID", "series_uid")):
        value = ds.get(key)
        if value not in (None, ""):
            meta[name] = str(value).strip()
    return meta


def read_dicom(path: str | Path, expect_dims: int | Sequence[int] | None = None, nan_to: float | None = None) -> Image:
    """Read one DICOM file.

    Monochrome pixel values go through RescaleSlope / RescaleIntercept (or the Modality LUT), so
    CT is in HU; MONOCHROME1 is inverted so that high values are bright. A multi-frame file keeps
    its frames: ``(frames, H, W)``.

    Args:
        path: the ``.dcm`` file.
        expect_dims: the allowed number of spatial dimensions, or ``None``.
        nan_to: the value for non-finite pixels after rescaling; ``None`` refuses them.

    Raises:
        MedganError: for a file that is not DICOM, is truncated or corrupt, has no pixel data,
            cannot be decoded (the message names the transfer syntax and the decoder to install),
            has non-finite values, or has the wrong number of dimensions.
    """
    p = Path(path)
    ds = _dcmread(p)
    with _header_errors(p):
        image = _dicom_image(ds, p)
    image.array = check_finite(image.array, p, nan_to)
    return _check_dims(image, expect_dims, p)


def _dicom_image(ds: Any, p: Path) -> Image:
    array, rgb = _pixels(ds, p)
    frames = array.shape[0] if array.ndim == (4 if rgb else 3) else 1
    pixel = _pixel_spacing(ds)
    spacing: tuple[float, ...] | None = pixel
    if pixel is not None and frames > 1:
        step = _slice_spacing(ds)
        spacing = (step, *pixel) if step is not None else None
    image = Image(array=array, spacing=spacing, affine=None, meta=_dicom_meta(ds, p, "dicom"), rgb=rgb)
    if frames > 1:
        image.meta["frames"] = frames
    return image


def _dicom_files(folder: Path) -> list[Path]:
    files = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.name.upper() != "DICOMDIR" and image_kind(f) == "dicom":
            files.append(f)
    return files


def read_dicom_series(folder: str | Path, expect_dims: int | Sequence[int] | None = None,
                      nan_to: float | None = None) -> Image:
    """Read a folder of single-frame DICOM slices as one volume ``(D, H, W)``.

    Slices are ordered by ImagePositionPatient projected on the slice normal (the cross product of
    the two ImageOrientationPatient direction cosines), falling back to InstanceNumber when the
    geometry is missing. Each slice is rescaled with its own slope and intercept. The slice
    spacing is the median step between positions; ``affine`` maps ``(d, h, w)`` to RAS+ mm.

    Args:
        folder: the series folder (only its DICOM files are read; sub-folders are ignored).
        expect_dims: the allowed number of spatial dimensions, or ``None``.
        nan_to: the value for non-finite pixels after rescaling; ``None`` refuses them (the
            error names the slice file).

    Raises:
        MedganError: for an empty folder, a folder holding more than one series, slices of
            different shapes, two slices at one position, or any unreadable slice.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MedganError("not a folder", folder)
    files = _dicom_files(folder)
    if not files:
        raise MedganError("folder has no DICOM files", folder)
    slices = [(f, _dcmread(f)) for f in files]
    with _header_errors(folder):
        image = _series_image(folder, slices, nan_to)
    return _check_dims(image, expect_dims, folder)


def _series_image(folder: Path, slices: list[tuple[Path, Any]], nan_to: float | None = None) -> Image:
    pixels = {}
    for f, ds in slices:
        array, rgb = _pixels(ds, f)
        pixels[f] = (check_finite(array, f, nan_to), rgb)

    # Consistency: one shape, one series, monochrome.
    first_file, first_ds = slices[0]
    shape0 = pixels[first_file][0].shape
    for f, _ds in slices[1:]:
        shape = pixels[f][0].shape
        if shape != shape0:
            raise MedganError(
                f"series mixes slice shapes: {'x'.join(map(str, shape0))} in {first_file.name}, "
                f"{'x'.join(map(str, shape))} in {f.name}",
                folder,
            )
    if len(shape0) != 2 or pixels[first_file][1]:
        raise MedganError(
            f"a series folder must hold single-frame grey slices; {first_file.name} has shape "
            f"{'x'.join(map(str, shape0))}",
            folder,
        )
    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for _f, ds in slices} - {""})
    if len(uids) > 1:
        raise MedganError(f"folder holds {len(uids)} series; put each series in its own folder", folder)

    # Order along the slice normal.
    iop = first_ds.get("ImageOrientationPatient")
    have_geometry = iop is not None and all(ds.get("ImagePositionPatient") is not None for _f, ds in slices)
    if have_geometry:
        row_cos = np.asarray(iop[:3], dtype=np.float64)
        col_cos = np.asarray(iop[3:], dtype=np.float64)
        normal = np.cross(row_cos, col_cos)
        positions = np.array([np.asarray(ds.ImagePositionPatient, dtype=np.float64) for _f, ds in slices])
        keys = positions @ normal
    else:
        keys = np.array([float(ds.get("InstanceNumber") or i) for i, (_f, ds) in enumerate(slices)])
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(slices) > 1:
        steps = np.diff(sorted_keys)
        dup = np.flatnonzero(np.isclose(steps, 0.0, atol=1e-4))
        if dup.size:
            a, b = slices[order[dup[0]]][0].name, slices[order[dup[0] + 1]][0].name
            what = "position" if have_geometry else "InstanceNumber"
            raise MedganError(f"two slices at the same {what} ({a}, {b}); is this more than one series?", folder)

    volume = np.stack([pixels[slices[i][0]][0] for i in order])  # (D, H, W)
    pixel = _pixel_spacing(first_ds)
    if have_geometry and len(slices) > 1:
        dz = float(np.median(np.diff(sorted_keys)))
    else:
        dz = _slice_spacing(first_ds) or 1.0
    spacing = (dz, *pixel) if pixel is not None else None

    affine = None
    if have_geometry and pixel is not None:
        # Voxel (d, h, w) -> LPS: origin + d * slice step + h * PixelSpacing[0] * column cosine
        # + w * PixelSpacing[1] * row cosine (rows advance along the column direction).
        origin = positions[order[0]]
        step = (positions[order[-1]] - origin) / (len(slices) - 1) if len(slices) > 1 else normal * dz
        lps = np.eye(4)
        lps[:3, 0] = step
        lps[:3, 1] = col_cos * pixel[0]
        lps[:3, 2] = row_cos * pixel[1]
        lps[:3, 3] = origin
        affine = _LPS_TO_RAS @ lps

    meta = _dicom_meta(first_ds, folder, "dicom-series")
    meta["files"] = [slices[i][0].name for i in order]
    return Image(array=volume.astype(np.float32), spacing=spacing, affine=affine, meta=meta)


# NIfTI.


def read_nifti(path: str | Path, expect_dims: int | Sequence[int] | None = None, nan_to: float | None = None) -> Image:
    """Read a NIfTI file (``.nii`` or ``.nii.gz``) with nibabel.

    Values are scaled by the header's ``scl_slope`` / ``scl_inter``. Trailing axes of length 1
    beyond the third are dropped (``(X, Y, Z, 1)`` is a volume). Spacing is the header zooms.

    Args:
        path: the NIfTI file.
        expect_dims: the allowed number of spatial dimensions (``3`` refuses a 4D series), or
            ``None``.
        nan_to: the value for NaN / infinite voxels after scaling; ``None`` refuses them.

    Raises:
        MedganError: for a file nibabel cannot read, or the wrong number of dimensions.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    p = Path(path)
    try:
        img: Any = nib.load(p)  # a Nifti1Image / Nifti2Image (the stubs say FileBasedImage)
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise MedganError(f"not a readable NIfTI file ({_short(exc)})", p) from None
    data = check_finite(data, p, nan_to)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    zooms = tuple(float(z) for z in img.header.get_zooms()[: data.ndim])
    meta = {"format": "nifti", "path": str(p), "axcodes": "".join(nib.aff2axcodes(img.affine))}
    image = Image(array=data, spacing=zooms, affine=np.asarray(img.affine, dtype=np.float64), meta=meta)
    return _check_dims(image, expect_dims, p)


# PNG / JPEG.


def read_picture(path: str | Path, nan_to: float | None = None) -> Image:
    """Read a PNG, JPEG or BMP with Pillow: grey ``(H, W)`` or RGB ``(H, W, 3)``, float32.

    16-bit grey PNGs keep their range. Alpha is dropped; palette images become RGB. Float images
    (Pillow mode ``F``) go through :func:`check_finite` with ``nan_to``.

    Raises:
        MedganError: when Pillow cannot open or decode the file (corrupt or truncated), or it has
            non-finite values.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    p = Path(path)
    try:
        with PILImage.open(p) as im:
            im.load()
            mode = im.mode
            if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
                pic = im.convert("L") if mode in ("1", "LA") else im
                array = np.asarray(pic, dtype=np.float32)
                rgb = False
            else:
                array = np.asarray(im.convert("RGB"), dtype=np.float32)
                rgb = True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MedganError(f"not a readable image ({_short(exc)})", p) from None
    array = check_finite(array, p, nan_to)
    fmt = "jpeg" if p.suffix.lower() in (".jpg", ".jpeg") else p.suffix.lower().lstrip(".")
    return Image(array=array, spacing=None, affine=None, meta={"format": fmt, "path": str(p), "mode": mode}, rgb=rgb)
