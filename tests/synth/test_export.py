"""Tests for medgan.synth.export and medgan.synth.writers: batch checks and the PNG / npz / NIfTI / DICOM writers."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import UID, generate_uid

from medgan.data.dataset import load_dataset, to_channels_last
from medgan.data.io import read_image
from medgan.errors import MedganError
from medgan.synth.export import SampleWriter, write_samples
from medgan.synth.writers import FORMATS, WRITERS
from medgan.synth.writers.dicom import MF_GRAYSCALE_BYTE_SC_STORAGE, SC_IMAGE_STORAGE
from tests.synth.helpers import NAMES, SHA, SLUGS, _images, _write


def _monai_loader(reader: str):
    from monai.transforms import LoadImage

    with warnings.catch_warnings():  # building it warns that an optional GPU codec is missing
        warnings.simplefilter("ignore")
        return LoadImage(reader=reader, image_only=True)


@pytest.fixture(scope="module")
def monai_dicom():
    """MONAI's DICOM loader (``PydicomReader``), built once."""
    return _monai_loader("PydicomReader")


# Names, formats and errors.


def test_formats_and_errors(tmp_path: Path) -> None:
    assert FORMATS == ("png", "npz", "nifti", "dicom")
    assert set(WRITERS) == set(FORMATS)  # one writer per format
    vol = _images((1, 1, 4, 5, 6))
    with pytest.raises(MedganError, match=r"PNG is 2D only; use --format nifti, dicom or npz for volumes"):
        _write(tmp_path / "a", vol, [0], "png")
    with pytest.raises(MedganError, match=r"unknown format 'jpeg' \(allowed: png, npz, nifti, dicom\)"):
        _write(tmp_path / "b", _images((1, 1, 4, 4)), [0], "jpeg")
    with pytest.raises(MedganError, match="NIfTI holds grey images only"):
        _write(tmp_path / "c", _images((1, 3, 4, 4)), [0], "nifti")


def test_writer_rejects_bad_batches(tmp_path: Path) -> None:
    kw = dict(fmt="png", class_names=NAMES, spatial_dims=2, checkpoint_sha256=SHA, dataset_name="x")
    with SampleWriter(tmp_path / "w", **kw) as w:  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="uint8"):
            w.write(np.zeros((1, 1, 4, 4), np.float32), [0], seeds=0, indices=[0])
        with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
            w.write(_images((1, 1, 4, 4)), [2], seeds=0, indices=[0])
        with pytest.raises(ValueError, match="indices must have one entry per image"):
            w.write(_images((2, 1, 4, 4)), [0, 1], seeds=0, indices=[0])
        with pytest.raises(ValueError, match="channels"):
            w.write(_images((1, 2, 4, 4)), [0], seeds=0, indices=[0])
        w.write(_images((1, 1, 4, 4)), [0], seeds=0, indices=[0])
        with pytest.raises(ValueError, match="already written"):
            w.write(_images((1, 1, 4, 4)), [0], seeds=0, indices=[0])
    with pytest.raises(ValueError, match="closed"):
        w.write(_images((1, 1, 4, 4)), [0], seeds=0, indices=[1])
    with pytest.raises(ValueError, match="hex digest"):
        SampleWriter(tmp_path / "v", **{**kw, "checkpoint_sha256": "not-a-hash"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spacing must be 2 positive numbers"):
        SampleWriter(tmp_path / "v", **kw, spacing=[1.0, 0.0])  # type: ignore[arg-type]


# PNG.


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_png_round_trips_exactly(tmp_path: Path, channels: int, mode: str) -> None:
    images = _images((5, channels, 6, 9))  # (N, C, H, W)
    labels = [0, 1, 1, 0, 1]
    files = _write(tmp_path, images, labels, "png")
    assert files == [f"{SLUGS[lab]}/{SLUGS[lab]}_7_{i:06d}.png" for i, lab in enumerate(labels)]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == sorted(files)
    for f, img in zip(files, images, strict=True):
        with Image.open(tmp_path / f) as im:
            assert im.mode == mode
            assert im.size == (9, 6)  # (W, H)
            back = np.asarray(im)
            assert "SYNTHETIC" in im.info["Description"] and SHA in im.info["Description"]
        expected = img[0] if channels == 1 else img.transpose(1, 2, 0)
        np.testing.assert_array_equal(back, expected)


# npz.


@pytest.mark.parametrize("shape", [(7, 1, 8, 8), (7, 3, 8, 8), (7, 1, 4, 6, 5)])
def test_npz_is_a_prepared_dataset(tmp_path: Path, shape: tuple[int, ...]) -> None:
    images = _images(shape)
    labels = np.array([0, 1, 1, 0, 1, 1, 1])
    dims = len(shape) - 2
    spacing = [2.0, 0.5, 0.5][-dims:]
    # Streamed in two batches: the npz is written on close.
    with SampleWriter(tmp_path, fmt="npz", class_names=NAMES, spatial_dims=dims, spacing=spacing,
                      checkpoint_sha256=SHA, dataset_name="breastmnist") as w:
        first = w.write(images[:4], labels[:4], seeds=1, indices=range(4))
        w.write(images[4:], labels[4:], seeds=1, indices=range(4, 7))
        assert not (tmp_path / "dataset.npz").exists()
    assert first == ["dataset.npz"] * 4
    assert [r.sample_index for r in w.manifest] == list(range(7))

    with np.load(tmp_path / "dataset.npz") as z:
        assert sorted(z.files) == sorted(f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels"))
        assert z["train_images"].dtype == np.uint8
        np.testing.assert_array_equal(z["train_images"], to_channels_last(images))
        assert z["train_labels"].shape == (7, 1) and z["train_labels"].dtype == np.uint8
        np.testing.assert_array_equal(z["train_labels"][:, 0], labels)
        assert z["val_images"].shape == (0, *z["train_images"].shape[1:])
        assert z["test_labels"].shape == (0, 1)

    for path in (tmp_path, tmp_path / "dataset.npz"):
        ds = load_dataset(path)
        assert ds.info.class_names == NAMES
        assert ds.info.channels == shape[1] and ds.info.spatial_dims == dims
        assert ds.info.size == list(shape[2:])
        assert ds.info.source == f"synthetic:{SHA[:12]}"
        assert ds.info.preprocessing["synthetic"] is True
        assert ds.info.preprocessing["checkpoint_sha256"] == SHA
        assert ds.info.spacing == spacing
        assert ds.info.counts["train"] == [2, 5] and ds.info.counts["val"] == [0, 0]
        np.testing.assert_array_equal(ds.channel_first("train"), images)
        np.testing.assert_array_equal(ds.labels["train"], labels)


# NIfTI.


def test_nifti_round_trips_with_spacing(tmp_path: Path) -> None:
    vol = _images((2, 1, 4, 6, 5))  # (N, 1, D, H, W)
    spacing = [2.5, 0.5, 0.75]  # (sz, sy, sx), array order
    files = _write(tmp_path, vol, [1, 0], "nifti", spacing=spacing)
    assert files == ["malignant_tumour/malignant_tumour_7_000000.nii.gz", "benign/benign_7_000001.nii.gz"]
    for f, v in zip(files, vol, strict=True):
        img = nib.load(tmp_path / f)
        assert img.shape == (5, 6, 4)  # (W, H, D): i along x, j along y, k along the slices
        assert img.get_data_dtype() == np.uint8
        np.testing.assert_allclose(img.header.get_zooms(), spacing[::-1])
        np.testing.assert_allclose(img.affine, np.diag([-0.75, -0.5, 2.5, 1.0]))
        np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), v[0])
        assert b"medgan synthetic" in img.header["descrip"].item()
        assert (int(img.header["qform_code"]), int(img.header["sform_code"])) == (2, 2)


def _functional_group_affine(ds: pydicom.Dataset) -> np.ndarray:
    """RAS affine of voxel (w, h, d) from a multi-frame file's functional groups (the NIfTI (i, j, k) order)."""
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    sy, sx = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    pos = np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
                    for f in ds.PerFrameFunctionalGroupsSequence])
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = iop[:3] * sx, iop[3:] * sy  # along a row (w), down a column (h)
    lps[:3, 2] = (pos[-1] - pos[0]) / (len(pos) - 1)  # frame to frame (d)
    lps[:3, 3] = pos[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_nifti_and_dicom_agree(tmp_path: Path) -> None:
    # One volume as NIfTI and as DICOM: the same voxels at the same patient positions.
    vol = _images((1, 1, 3, 6, 5))
    spacing = [2.5, 0.5, 0.75]
    nii = _write(tmp_path / "n", vol, [0], "nifti", spacing=spacing)[0]
    dcm = _write(tmp_path / "d", vol, [0], "dicom", spacing=spacing)[0]
    a = _monai_loader("NibabelReader")(str(tmp_path / "n" / nii))  # (W, H, D)
    ds = pydicom.dcmread(tmp_path / "d" / dcm)
    np.testing.assert_array_equal(np.asarray(a), ds.pixel_array.transpose(2, 1, 0))
    np.testing.assert_allclose(np.asarray(a.affine), _functional_group_affine(ds))


# DICOM.


def test_dicom_2d_grey(tmp_path: Path, monai_dicom) -> None:
    images = _images((3, 1, 6, 5))
    files = _write(tmp_path, images, [0, 1, 0], "dicom", spacing=[0.5, 0.25])
    assert files == ["benign/benign_7_000000.dcm", "malignant_tumour/malignant_tumour_7_000001.dcm",
                     "benign/benign_7_000002.dcm"]
    dss = [pydicom.dcmread(tmp_path / f) for f in files]
    for ds, img in zip(dss, images, strict=True):
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == SC_IMAGE_STORAGE
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert UID(ds.file_meta.ImplementationClassUID).is_valid
        assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (8, 8, 7, 0)
        assert [float(x) for x in ds.PixelSpacing] == [0.5, 0.25]
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "FrameOfReferenceUID"):
            assert keyword not in ds  # not part of the Secondary Capture Image IOD
        assert ds.Laterality == "" and ds.PatientOrientation == ""  # type 2C: present, unknown
        np.testing.assert_array_equal(ds.pixel_array, img[0])
    # One Study for the export; each image its own Series.
    assert len({ds.StudyInstanceUID for ds in dss}) == 1
    assert len({ds.SeriesInstanceUID for ds in dss}) == 3
    assert [ds.SeriesNumber for ds in dss] == [1, 2, 3]
    assert monai_dicom(str(tmp_path / files[0])).shape == (5, 6)  # MONAI: (W, H)


def test_dicom_2d_rgb(tmp_path: Path, monai_dicom) -> None:
    images = _images((2, 3, 6, 5))
    files = _write(tmp_path, images, [1, 1], "dicom")
    for f, img in zip(files, images, strict=True):
        ds = pydicom.dcmread(tmp_path / f)
        assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3
        assert ds.PlanarConfiguration == 0
        np.testing.assert_array_equal(ds.pixel_array, img.transpose(1, 2, 0))
    assert monai_dicom(str(tmp_path / files[0])).shape == (5, 6, 3)


def test_unicode_class_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.RAISE)
    names = ["Läsion\\links", "肿瘤 " + "x" * 80]
    kw = dict(class_names=names, seeds=0, indices=[0, 1], spatial_dims=2, checkpoint_sha256=SHA, dataset_name="d")
    files = write_samples(tmp_path / "d", _images((2, 1, 4, 4)), [0, 1], fmt="dicom", **kw)  # type: ignore[arg-type]
    assert files == ["l_sion_links/l_sion_links_0_000000.dcm", "x" * 80 + "/" + "x" * 80 + "_0_000001.dcm"]
    first, second = (pydicom.dcmread(tmp_path / "d" / f) for f in files)
    assert first.SeriesDescription == "medgan synthetic: Läsion links #0"  # no backslash in an LO value
    assert len(second.SeriesDescription) == 64 and second.SeriesDescription.startswith("medgan synthetic: 肿瘤")
    assert "'Läsion\\links'" in first.ImageComments
    files = write_samples(tmp_path / "p", _images((2, 1, 4, 4)), [0, 1], fmt="png", **kw)  # type: ignore[arg-type]
    with Image.open(tmp_path / "p" / files[1]) as im:
        assert "肿瘤" in im.info["Description"]


def test_dicom_3d_multiframe(tmp_path: Path) -> None:
    vol = _images((2, 1, 4, 6, 5))  # (N, 1, D, H, W)
    spacing = [2.5, 0.5, 0.75]
    files = _write(tmp_path, vol, [0, 1], "dicom", spacing=spacing)
    assert files == ["benign/benign_7_000000.dcm", "malignant_tumour/malignant_tumour_7_000001.dcm"]
    dss = [pydicom.dcmread(tmp_path / f) for f in files]
    for f, ds, v in zip(files, dss, vol, strict=True):
        # One file per volume, a frame per slice, in volume order.
        assert ds.SOPClassUID == MF_GRAYSCALE_BYTE_SC_STORAGE == ds.file_meta.MediaStorageSOPClassUID
        assert ds.NumberOfFrames == 4 and (ds.Rows, ds.Columns) == (6, 5)
        np.testing.assert_array_equal(ds.pixel_array, v[0])
        # The geometry lives in the IOD's functional groups, not in attributes the IOD does not define.
        shared = ds.SharedFunctionalGroupsSequence[0]
        assert [float(x) for x in shared.PlaneOrientationSequence[0].ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        measures = shared.PixelMeasuresSequence[0]
        assert [float(x) for x in measures.PixelSpacing] == [0.5, 0.75]
        assert float(measures.SliceThickness) == float(measures.SpacingBetweenSlices) == 2.5
        positions = [[float(x) for x in f.PlanePositionSequence[0].ImagePositionPatient]
                     for f in ds.PerFrameFunctionalGroupsSequence]
        assert positions == [[0, 0, 2.5 * k] for k in range(4)]
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "PixelSpacing"):
            assert keyword not in ds
        assert UID(ds.FrameOfReferenceUID).is_valid
        # medgan's own reader gives the volume back with its spacing.
        image = read_image(tmp_path / f)
        np.testing.assert_array_equal(image.array, v[0])
        assert image.spacing == (2.5, 0.5, 0.75)
    assert len({ds.SeriesInstanceUID for ds in dss}) == 2
    assert len({ds.FrameOfReferenceUID for ds in dss}) == 2


# DICOM privacy: nothing from a training file may reach an exported file.


def _training_dicoms(folder: Path) -> list[Path]:
    """Three 'training' slices from pydicom's CT_small with distinctive identifying values."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(3):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.PatientName = "CANARY^PRIVACY"
        ds.PatientID = "CANARY-PID-4711"
        ds.PatientBirthDate = "19510203"
        ds.InstitutionName = "CANARY GENERAL HOSPITAL"
        ds.AccessionNumber = "ACC-CANARY-99"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        paths.append(folder / f"train_{k}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


# Value representations that can carry an identifying value: names, texts, dates, times, UIDs, AEs.
IDENTIFYING_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC", "DA", "TM", "DT", "UI", "AE"}


def _values(ds: pydicom.Dataset, vrs: set[str] | None = None) -> list[str]:
    """Every value of every element (file meta, data set, nested sequences) but the pixels, as text;
    only elements of the given VRs when ``vrs`` is set."""
    out: list[str] = []
    for elem in [*ds.file_meta.iterall(), *ds.iterall()]:
        if elem.keyword == "PixelData" or elem.VR == "SQ" or (vrs is not None and elem.VR not in vrs):
            continue
        values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        out += [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values]
    return out


def test_dicom_export_leaks_nothing_from_training_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every value written must also pass pydicom's checks of VR length and characters.
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.RAISE)
    train = [pydicom.dcmread(p) for p in _training_dicoms(tmp_path)]
    # Every identifying value of the training files, but the standard's own UIDs (transfer syntax, classes).
    forbidden = {v for ds in train for v in _values(ds, IDENTIFYING_VRS) if len(v) >= 4}
    forbidden -= {v for v in forbidden if v.startswith("1.2.840.10008.")}
    for value in ("CANARY^PRIVACY", "CANARY-PID-4711", "CANARY GENERAL HOSPITAL", "19510203",
                  train[0].StudyInstanceUID, train[0].FrameOfReferenceUID):
        assert value in forbidden
    train_uids = {v for ds in train for v in _values(ds, {"UI"})}

    # Synthetic samples that even reuse the training pixels: 2D images and one 3D volume.
    pixels = np.stack([ds.pixel_array for ds in train]).astype(np.float64)
    u8 = np.round(255 * (pixels - pixels.min()) / (pixels.max() - pixels.min())).astype(np.uint8)  # (3, H, W)
    files2d = _write(tmp_path / "out2d", u8[:, None], [0, 1, 1], "dicom")
    files3d = _write(tmp_path / "out3d", u8[None, None], [1], "dicom", spacing=[2.0, 0.7, 0.7])
    exported = [tmp_path / "out2d" / f for f in files2d] + [tmp_path / "out3d" / files3d[0]]
    assert len(exported) == 4

    study_uids, series_uids, sop_uids, frame_uids = set(), set(), set(), set()
    for path in exported:
        ds = pydicom.dcmread(path)
        texts = _values(ds)
        for value in forbidden:
            assert value not in texts, f"{path.name}: training value {value!r} in an element"
            assert not any(value in t for t in texts if len(value) >= 6), f"{path.name}: {value!r} inside a value"
        header = path.read_bytes()[: -len(ds.PixelData)]
        for value in forbidden:
            assert value.encode() not in header, f"{path.name}: training value {value!r} in the header bytes"

        # The synthetic marking.
        assert ds.PatientName == "SYNTHETIC"
        assert ds.PatientID == f"SYN-{SHA[:12]}"
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert ds.BurnedInAnnotation == "NO"
        assert ds.PatientIdentityRemoved == "YES"
        assert "medgan" in ds.DeidentificationMethod
        assert ds.ConversionType == "SYN"
        assert ds.Modality == "OT"
        assert SHA in ds.ImageComments and "SYNTHETIC" in ds.ImageComments
        cls = NAMES[int(path.parent.name != "benign" and "malignant" in path.as_posix())]
        assert f"'{cls}'" in ds.ImageComments and cls in ds.SeriesDescription
        for keyword in ("StudyDate", "StudyTime", "PatientBirthDate"):
            assert ds[keyword].value in ("", None)
        for keyword in ("InstitutionName", "SeriesDate", "AcquisitionDate", "InstanceCreationDate",
                        "Manufacturer", "StationName", "OtherPatientIDsSequence"):
            assert keyword not in ds
        # The one date: a multi-frame file's required Content Date, the day of the export.
        volume = "NumberOfFrames" in ds
        assert ("ContentDate" in ds) == volume
        if volume:
            assert ds.ContentDate == datetime.now(timezone.utc).strftime("%Y%m%d")

        uids = [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, *([ds.FrameOfReferenceUID] if volume else [])]
        assert all(UID(u).is_valid for u in uids)
        assert not set(uids) & train_uids
        study_uids.add(ds.StudyInstanceUID)
        series_uids.add(ds.SeriesInstanceUID)
        sop_uids.add(ds.SOPInstanceUID)
        if volume:
            frame_uids.add(ds.FrameOfReferenceUID)

    assert len(study_uids) == 2  # one per export
    assert len(series_uids) == 4  # three 2D images + one volume
    assert len(sop_uids) == 4  # every file
    assert len(frame_uids) == 1  # the volume's; a 2D Secondary Capture image has no Frame of Reference
    assert not (study_uids & series_uids) and not (series_uids & sop_uids) and not (frame_uids & series_uids)
