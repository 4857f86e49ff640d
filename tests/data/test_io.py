"""Readers on real files shipped with pydicom and nibabel, and on files the tests write."""

from __future__ import annotations

import copy
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path as NIB_DATA
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medgan.data.io import image_kind, read_dicom, read_dicom_series, read_image, read_nifti, read_picture
from medgan.errors import MedganError


def shipped(name: str) -> Path:
    """A file that ships inside pydicom (no download)."""
    path = get_testdata_file(name, download=False)
    assert path is not None, name
    return Path(path)


CT = shipped("CT_small.dcm")
MR = shipped("MR_small.dcm")
ANATOMICAL = Path(NIB_DATA) / "anatomical.nii"


def write_series(folder: Path, n: int, *, patient: str = "P1", step: float = 2.5, seed: int = 0) -> list[float]:
    """Write ``n`` copies of CT_small as one series, shuffled on disk.

    Slice ``k`` sits ``k * step`` mm along the normal, has InstanceNumber ``n - k`` (so sorting by
    instance would reverse it) and RescaleIntercept ``-1024 + 10 k`` (so its values say which it is).
    Returns the z positions in slice order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(CT)
    x0, y0, z0 = (float(v) for v in base.ImagePositionPatient)
    names = np.random.default_rng(seed).permutation(n)
    zs = []
    for k in range(n):
        ds = copy.deepcopy(base)
        ds.ImagePositionPatient = [x0, y0, z0 + k * step]
        ds.InstanceNumber = n - k
        ds.RescaleIntercept = -1024 + 10 * k
        ds.PatientID = patient
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(folder / f"IM{names[k]:03d}.dcm")
        zs.append(z0 + k * step)
    return zs


# DICOM files.


def test_ct_rescale_to_hu_and_spacing() -> None:
    ds = pydicom.dcmread(CT)
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    img = read_image(CT)
    assert img.array.dtype == np.float32 and img.array.shape == (128, 128)
    np.testing.assert_array_equal(img.array, expected.astype(np.float32))
    assert float(ds.RescaleIntercept) == -1024.0 and img.array.min() == ds.pixel_array.min() - 1024
    assert img.spacing == pytest.approx((0.661468, 0.661468))
    assert img.affine is None and not img.rgb and img.spatial_dims == 2
    assert img.meta["modality"] == "CT" and img.meta["patient_id"] == "1CT1"


def test_mr_without_rescale_keeps_stored_values() -> None:
    ds = pydicom.dcmread(MR)
    img = read_dicom(MR)
    np.testing.assert_array_equal(img.array, ds.pixel_array.astype(np.float32))
    assert img.spacing == pytest.approx((0.3125, 0.3125))
    assert img.meta["modality"] == "MR"


def test_multiframe_keeps_frames_with_frame_spacing() -> None:
    path = shipped("rtdose.dcm")
    img = read_image(path)
    assert img.array.shape == (15, 10, 10) and img.spatial_dims == 3
    assert img.spacing == pytest.approx((5.0, 10.0, 10.0))  # GridFrameOffsetVector step, PixelSpacing
    assert img.meta["frames"] == 15
    np.testing.assert_array_equal(img.array, pydicom.dcmread(path).pixel_array.astype(np.float32))
    with pytest.raises(MedganError, match=r"is a 3D image .*expected 2D"):
        read_image(path, expect_dims=2)


def test_monochrome1_is_inverted_within_the_stored_range(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT)
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    raw = ds.pixel_array.astype(np.float64)
    assert ds.BitsStored == 16 and ds.PixelRepresentation == 1  # signed: lo + hi = -1
    img = read_image(path)
    np.testing.assert_array_equal(img.array, ((-1.0 - raw) * 1.0 - 1024.0).astype(np.float32))
    normal = read_image(CT).array
    assert np.unravel_index(img.array.argmin(), raw.shape) == np.unravel_index(normal.argmax(), raw.shape)


def test_rgb_dicom() -> None:
    img = read_image(shipped("SC_rgb_small_odd.dcm"))
    assert img.rgb and img.array.shape == (3, 3, 3) and img.spatial_dims == 2


def test_dicom_found_by_magic_without_suffix(tmp_path: Path) -> None:
    path = tmp_path / "IM0001"
    path.write_bytes(CT.read_bytes())
    assert image_kind(path) == "dicom"
    assert read_image(path).array.shape == (128, 128)


def test_truncated_dicom_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MedganError, match=r"MR_truncated\.dcm: cannot read its pixel data; truncated or corrupt"):
        read_image(shipped("MR_truncated.dcm"))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(CT.read_bytes()[:30000])
    with pytest.raises(MedganError, match=r"cut\.dcm: .*truncated"):
        read_image(cut)
    header_only = tmp_path / "header.dcm"
    header_only.write_bytes(CT.read_bytes()[:1000])
    with pytest.raises(MedganError, match=r"header\.dcm: .*no pixel data"):
        read_image(header_only)


def test_corrupt_dicom(tmp_path: Path) -> None:
    path = tmp_path / "junk.dcm"
    path.write_bytes(np.random.default_rng(0).bytes(400))
    with pytest.raises(MedganError, match=r"junk\.dcm: not a DICOM file"):
        read_image(path)


def test_dicom_without_pixel_data(tmp_path: Path) -> None:
    with pytest.raises(MedganError, match=r"rtplan\.dcm: DICOM file has no pixel data \(object type: RTPLAN\)"):
        read_image(shipped("rtplan.dcm"))
    ds = pydicom.dcmread(CT)
    del ds.PixelData
    path = tmp_path / "nopixels.dcm"
    ds.save_as(path)
    with pytest.raises(MedganError, match=r"nopixels\.dcm: .*no pixel data"):
        read_image(path)


def test_malformed_header_value(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT)
    del ds.RescaleSlope
    ds.add_new(0x00281053, "LO", "abc")  # RescaleSlope that is not a number
    ds.save_as(tmp_path / "slope.dcm")
    with pytest.raises(MedganError, match=r"slope\.dcm: invalid DICOM header value"):
        read_image(tmp_path / "slope.dcm")


# DICOM series.


def test_series_sorted_by_position_not_by_name_or_instance(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    zs = write_series(folder, 5)
    raw = pydicom.dcmread(CT).pixel_array.astype(np.float32)
    img = read_image(folder)
    assert img.array.shape == (5, 128, 128) and img.meta["format"] == "dicom-series"
    for k in range(5):  # slice k carries intercept -1024 + 10 k
        np.testing.assert_array_equal(img.array[k], raw - 1024 + 10 * k)
    assert img.spacing == pytest.approx((2.5, 0.661468, 0.661468))
    # The affine maps voxel (d, 0, 0) to slice d's position, in RAS (x and y negated from LPS).
    x0, y0, _ = (float(v) for v in pydicom.dcmread(CT).ImagePositionPatient)
    for d in (0, 4):
        np.testing.assert_allclose(img.affine @ [d, 0, 0, 1], [-x0, -y0, zs[d], 1], atol=1e-4)
    # Moving one row down goes posterior (y decreases in RAS), one column right goes left (x decreases).
    np.testing.assert_allclose(img.affine[:3, 1], [0, -0.661468, 0], atol=1e-6)
    np.testing.assert_allclose(img.affine[:3, 2], [-0.661468, 0, 0], atol=1e-6)
    names = sorted(p.name for p in folder.iterdir())
    assert img.meta["files"] != names and len(img.meta["files"]) == 5


def test_series_with_mixed_shapes(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_series(folder, 3)
    ds = pydicom.dcmread(folder / "IM000.dcm")
    small = ds.pixel_array[::2, ::2].copy()
    ds.PixelData = small.tobytes()
    ds.Rows, ds.Columns = small.shape
    ds.save_as(folder / "IM000.dcm")
    with pytest.raises(MedganError, match=r"mixed: series mixes slice shapes: .*64x64"):
        read_image(folder)


def test_series_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(MedganError, match=r"empty: folder has no DICOM files"):
        read_dicom_series(empty)
    dup = tmp_path / "dup"
    write_series(dup, 3, step=0.0)
    with pytest.raises(MedganError, match=r"two slices at the same position"):
        read_image(dup)
    write_series(tmp_path / "ok", 2)
    with pytest.raises(MedganError, match=r"ok: is a 3D image .*expected 2D"):
        read_image(tmp_path / "ok", expect_dims=2)


# NIfTI.


def test_nifti_array_affine_and_spacing() -> None:
    img = read_image(ANATOMICAL, expect_dims=3)
    ref = nib.load(ANATOMICAL)
    assert img.array.shape == (33, 41, 25) and img.array.dtype == np.float32
    np.testing.assert_array_equal(img.array, ref.get_fdata(dtype=np.float32))
    np.testing.assert_array_equal(img.affine, ref.affine)
    assert img.spacing == (2.0, 2.0, 2.0) and img.meta["axcodes"] == "LAS"


def test_nifti_4d_refused_when_3d_expected(tmp_path: Path) -> None:
    path = Path(NIB_DATA) / "functional.nii"
    with pytest.raises(MedganError, match=r"functional\.nii: is a 4D image \(shape 17x21x3x20\); expected 3D"):
        read_nifti(path, expect_dims=3)
    assert read_nifti(path).array.shape == (17, 21, 3, 20)
    # A trailing axis of length 1 is not a fourth dimension.
    vol = nib.Nifti1Image(np.zeros((4, 5, 6, 1), dtype=np.float32), np.eye(4))
    nib.save(vol, tmp_path / "single.nii.gz")
    assert read_image(tmp_path / "single.nii.gz", expect_dims=3).array.shape == (4, 5, 6)


def test_corrupt_nifti(tmp_path: Path) -> None:
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(MedganError, match=r"bad\.nii\.gz: not a readable NIfTI file"):
        read_image(path)


# PNG / JPEG.


def test_grey_and_rgb_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (12, 20), dtype=np.uint8)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    PILImage.fromarray(grey).save(tmp_path / "g.png")
    PILImage.fromarray(rgb).save(tmp_path / "c.png")
    g, c = read_image(tmp_path / "g.png"), read_image(tmp_path / "c.png")
    assert g.array.shape == (12, 20) and not g.rgb and g.spacing is None
    np.testing.assert_array_equal(g.array, grey.astype(np.float32))
    assert c.array.shape == (12, 20, 3) and c.rgb and c.spatial_dims == 2
    np.testing.assert_array_equal(c.array, rgb.astype(np.float32))


def test_16bit_png_and_jpeg(tmp_path: Path) -> None:
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    PILImage.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(read_picture(tmp_path / "deep.png").array, deep.astype(np.float32))
    PILImage.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(tmp_path / "x.jpg")
    jpg = read_image(tmp_path / "x.jpg")
    assert jpg.rgb and jpg.meta["format"] == "jpeg" and abs(float(jpg.array.mean()) - 128) < 2


def test_unreadable_png(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    with pytest.raises(MedganError, match=r"junk\.png: not a readable image"):
        read_image(junk)
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "ok.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes((tmp_path / "ok.png").read_bytes()[:200])
    with pytest.raises(MedganError, match=r"cut\.png: not a readable image"):
        read_image(cut)


def test_dispatch_errors(tmp_path: Path) -> None:
    with pytest.raises(MedganError, match="no such file or folder"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MedganError, match=r"notes\.txt: unknown image type"):
        read_image(tmp_path / "notes.txt")
