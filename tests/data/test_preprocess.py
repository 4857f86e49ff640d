"""``preprocess`` end to end (PNG tree, CSV of NIfTI volumes, DICOM series), the transforms and the splits."""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.data.dataset import load_dataset
from medgan.data.io import Image, read_image
from medgan.data.preprocess import PreprocessOptions, prepare_image, preprocess
from medgan.errors import MedganError
from tests.data.helpers import CT, make_nifti_csv, make_png_tree, read_sources, write_series

# End to end.


def test_png_tree_end_to_end(tmp_path: Path) -> None:
    written = make_png_tree(tmp_path / "src", per_class=10)
    out = tmp_path / "prepared"
    info = preprocess(tmp_path / "src", out, PreprocessOptions(size=16, fit="crop", seed=3))
    ds = load_dataset(out)
    assert ds.info.class_names == ["benign", "malignant"] and ds.info.channels == 1 and ds.info.spatial_dims == 2
    assert info.counts == {"train": [7, 7], "val": [1, 1], "test": [2, 2]} == ds.info.counts
    assert ds.images["train"].shape == (14, 16, 16) and ds.images["train"].dtype == np.uint8
    assert ds.info.preprocessing["size"] == 16 and ds.info.preprocessing["seed"] == 3
    assert ds.info.preprocessing["labels_from"] == "folders"
    assert ds.info.source == str((tmp_path / "src").resolve()) and ds.info.spacing is None
    # Every image comes back bit-exact (already 0..255 and 16x16), under its folder's label.
    rows = read_sources(out)
    assert len(rows) == 20 and {r["source"] for r in rows} == set(written)
    for r in rows:
        np.testing.assert_array_equal(ds.images[r["split"]][int(r["index"])], written[r["source"]])
        assert ds.labels[r["split"]][int(r["index"])] == int(r["label"])
        assert r["class"] == r["source"].split("/")[0]
    # Same seed, same split; nothing left beside the output.
    again = preprocess(tmp_path / "src", tmp_path / "again", PreprocessOptions(size=16, fit="crop", seed=3))
    assert again.sha256 == info.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "prepared", "src"]


def test_png_rgb_channels(tmp_path: Path) -> None:
    written = make_png_tree(tmp_path / "src", per_class=4, rgb_in="malignant")
    opts = PreprocessOptions(size=16, fit="crop", val_frac=0.25, test_frac=0.25)
    info = preprocess(tmp_path / "src", tmp_path / "auto", opts)
    assert info.channels == 3  # one RGB input makes the dataset RGB
    ds = load_dataset(tmp_path / "auto")
    assert ds.images["train"].shape[1:] == (16, 16, 3)
    for r in read_sources(tmp_path / "auto"):
        img = ds.images[r["split"]][int(r["index"])]
        src = written[r["source"]]
        if src.ndim == 2:  # grey replicated into three equal channels
            np.testing.assert_array_equal(img, np.repeat(src[..., None], 3, axis=-1))
        else:  # RGB kept, rescaled by its own min and max
            lo, hi = float(src.min()), float(src.max())
            np.testing.assert_allclose(img, np.rint((src - lo) / (hi - lo) * 255), atol=1)
    grey = preprocess(tmp_path / "src", tmp_path / "grey", dataclasses.replace(opts, channels=1))
    assert grey.channels == 1 and load_dataset(tmp_path / "grey").images["train"].ndim == 3


def test_csv_of_nifti_volumes_sliced_without_patient_leak(tmp_path: Path) -> None:
    manifest = make_nifti_csv(tmp_path / "data")
    out = tmp_path / "slices"
    opts = PreprocessOptions(size=16, slices="axial", n_slices=3, seed=7)
    info = preprocess(manifest, out, opts)
    ds = load_dataset(out)
    # 4 patients per class: 2 train, 1 val, 1 test; 2 volumes each, 3 slices per volume.
    assert info.counts == {"train": [12, 12], "val": [6, 6], "test": [6, 6]}
    assert ds.images["train"].shape == (24, 16, 16) and ds.images["test"].shape == (12, 16, 16)
    assert ds.info.class_names == ["healthy", "tumour"] and ds.info.spatial_dims == 2
    rows = read_sources(out)
    splits_of_patient = defaultdict(set)
    for r in rows:
        splits_of_patient[r["patient_id"]].add(r["split"])
    assert len(splits_of_patient) == 8
    assert all(len(s) == 1 for s in splits_of_patient.values()), splits_of_patient
    # The three central axial slices (of 8) of every volume, all in the volume's split.
    by_volume = defaultdict(list)
    for r in rows:
        by_volume[r["source"]].append((r["split"], int(r["slice"])))
    assert all(sorted(k for _, k in v) == [2, 3, 4] and len({s for s, _ in v}) == 1 for v in by_volume.values())
    # In-plane spacing (A, R) = 1.5 mm scaled by 12/16 and 10/16.
    assert info.spacing == pytest.approx([1.125, 0.9375])
    assert info.preprocessing["split_by"] == "stratified by label, grouped by patient"
    assert info.preprocessing["patients"] == 8 and info.preprocessing["labels_from"] == "csv"


def test_csv_split_column_is_used(tmp_path: Path) -> None:
    manifest = make_nifti_csv(tmp_path / "data", volumes_per_patient=1, split_col=True)
    out = tmp_path / "out"
    info = preprocess(None, out, PreprocessOptions(size=8, slices="coronal"), csv_path=manifest)
    assert info.counts == {"train": [2, 2], "val": [1, 1], "test": [1, 1]}
    assert info.preprocessing["split_by"] == "manifest"
    with open(manifest, newline="") as fh:
        wanted = {r["path"]: r["split"] for r in csv.DictReader(fh)}
    assert {r["source"]: r["split"] for r in read_sources(out)} == wanted


def test_csv_split_column_leaking_a_patient_is_refused(tmp_path: Path) -> None:
    manifest = make_nifti_csv(tmp_path / "data", split_col=True)
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",test"  # H00's second volume moved to test
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(MedganError, match="patient 'H00' is in both train and test"):
        preprocess(manifest, tmp_path / "out", PreprocessOptions(size=8, slices="axial"))
    assert not (tmp_path / "out").exists()


def test_dicom_series_folders_to_volumes(tmp_path: Path) -> None:
    src = tmp_path / "scans"
    # Class "a": four series of three patients (pa0 has two); class "b": three patients.
    for j, pid in enumerate(["pa0", "pa0", "pa1", "pa2"]):
        write_series(src / "a" / f"series{j}", 3, pid)
    for j in range(3):
        write_series(src / "b" / f"pb{j}" / "study" / "ct", 3, f"pb{j}")
    out = tmp_path / "vols"
    info = preprocess(src, out, PreprocessOptions(size=8, window=(-1000.0, 1000.0)))
    ds = load_dataset(out)
    assert ds.info.spatial_dims == 3 and ds.info.size == [8, 8, 8] and ds.info.channels == 1
    assert sum(len(v) for v in ds.images.values()) == 7
    assert ds.images["train"].shape[1:] == (8, 8, 8)
    assert [sum(info.counts[s][c] for s in info.counts) for c in (0, 1)] == [4, 3]
    rows = read_sources(out)
    assert {r["patient_id"] for r in rows} == {"pa0", "pa1", "pa2", "pb0", "pb1", "pb2"}
    assert len({r["split"] for r in rows if r["patient_id"] == "pa0"}) == 1
    # D: 3 slices 2.5 mm apart -> 8; H, W: 128 pixels of 0.661468 mm -> 8.
    assert info.spacing == pytest.approx([2.5 * 3 / 8, 0.661468 * 16, 0.661468 * 16], rel=1e-4)
    assert info.preprocessing["window"] == [-1000.0, 1000.0]


# Transforms.


def test_ct_window_in_hu() -> None:
    img = read_image(CT)
    (u8, spacing, k), = prepare_image(img, PreprocessOptions(size=128, fit="crop", window=(-200.0, 200.0)))
    expected = np.rint(np.clip((img.array + 200.0) / 400.0, 0, 1) * 255)
    assert u8.shape == (1, 128, 128) and k is None
    np.testing.assert_allclose(u8[0], expected, atol=1)
    assert spacing == pytest.approx((0.661468, 0.661468))


def test_resize_scales_spacing_and_minmax() -> None:
    img = Image(np.linspace(-5, 5, 40 * 20, dtype=np.float32).reshape(40, 20), spacing=(0.5, 1.0))
    (u8, spacing, _), = prepare_image(img, PreprocessOptions(size=10))
    # Area averaging of 4x2 blocks: block means of the min-max scaled ramp, borders not darkened.
    scaled = (img.array + 5) / 10 * 255
    expected = scaled.reshape(10, 4, 10, 2).mean(axis=(1, 3))
    assert u8.shape == (1, 10, 10)
    np.testing.assert_allclose(u8[0], np.rint(expected), atol=1)
    assert spacing == pytest.approx((2.0, 2.0))


def _marker_volume() -> Image:
    """A (4, 5, 6) LAS volume with one bright voxel at i=0 (right), j=4 (anterior), k=5 (superior)."""
    arr = np.zeros((4, 5, 6), dtype=np.float32)
    arr[0, 4, 5] = 1.0
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    return Image(arr, spacing=(2.0, 2.0, 2.0), affine=affine)


def test_volume_layout_is_radiological() -> None:
    (u8, spacing, _), = prepare_image(_marker_volume(), PreprocessOptions(size=6, fit="crop"))
    # (D, H, W) = (S 6, A 5 -> pad 0 before, R 4 -> pad 1 before): superior last, anterior first,
    # patient right first.
    assert u8.shape == (1, 6, 6, 6)
    assert list(zip(*np.nonzero(u8[0]), strict=True)) == [(5, 0, 1)] and u8.max() == 255
    assert spacing == (2.0, 2.0, 2.0)


@pytest.mark.parametrize(("axis", "where"), [("axial", (0, 1)), ("coronal", (0, 1)), ("sagittal", (0, 0))])
def test_slices_put_anterior_or_superior_at_the_top(axis: str, where: tuple[int, int]) -> None:
    vol = _marker_volume()
    n = {"axial": 6, "coronal": 5, "sagittal": 4}[axis]
    out = prepare_image(vol, PreprocessOptions(size=6, fit="crop", slices=axis, n_slices=n))
    assert [k for *_, k in out] == list(range(n))
    hits = [(k, tuple(map(int, np.argwhere(a[0])[0]))) for a, _, k in out if a.max() > 0]
    # The marker (most superior, anterior, right) is in the last axial slice and the first coronal
    # (anterior first) and sagittal (patient right first) ones; coronal and sagittal put superior on top.
    k_expected = {"axial": 5, "coronal": 0, "sagittal": 0}[axis]
    assert len(hits) == 1 and hits[0][0] == k_expected
    assert hits[0][1] == where


def test_spacing_resample_and_too_few_slices() -> None:
    img = Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), spacing=(1.0, 1.0, 1.0))
    (u8, spacing, _), = prepare_image(img, PreprocessOptions(size=4, fit="crop", spacing=(2.0,)))
    assert u8.shape == (1, 4, 4, 4) and spacing == pytest.approx((2.0, 2.0, 2.0))
    with pytest.raises(MedganError, match="has 8 axial slices, fewer than --n-slices 9"):
        prepare_image(img, PreprocessOptions(size=4, slices="axial", n_slices=9))
    with pytest.raises(MedganError, match="does not give"):
        prepare_image(Image(img.array, spacing=None), PreprocessOptions(size=4, spacing=(1.0,)))


def test_dicom_series_round_trip_through_orientation(tmp_path: Path) -> None:
    write_series(tmp_path / "s", 4, "p")
    img = read_image(tmp_path / "s")
    (u8, _, _), = prepare_image(img, PreprocessOptions(size=128, fit="crop", window=(-1024.0, 1500.0)))
    expected = np.rint(np.clip((img.array + 1024.0) / 2524.0, 0, 1) * 255)
    np.testing.assert_allclose(u8[0, 62:66], expected, atol=1)  # 4 slices padded to 128: 62 before
    assert u8[0, :62].max() == 0 and u8[0, 66:].max() == 0


def test_out_inside_source_and_options_are_refused(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=3)
    with pytest.raises(MedganError, match="--out must not be inside the source folder"):
        preprocess(tmp_path / "src", tmp_path / "src" / "prepared")
    with pytest.raises(MedganError, match="--val-frac \\+ --test-frac must be below 1"):
        preprocess(tmp_path / "src", tmp_path / "o", PreprocessOptions(val_frac=0.5, test_frac=0.5))
    with pytest.raises(MedganError, match="--window needs LOW,HIGH with LOW < HIGH"):
        PreprocessOptions(window=(5.0, 1.0)).validate()


def test_mixed_2d_and_3d_needs_slices(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=3)
    nib.save(nib.Nifti1Image(np.ones((6, 6, 6), np.float32), np.eye(4)), tmp_path / "src" / "benign" / "v.nii.gz")
    with pytest.raises(MedganError, match=r"inputs mix 2D images .* and 3D volumes .*pass --slices"):
        preprocess(tmp_path / "src", tmp_path / "out", PreprocessOptions(size=8))
    info = preprocess(tmp_path / "src", tmp_path / "out", PreprocessOptions(size=8, slices="axial", val_frac=0.25))
    assert sum(sum(v) for v in info.counts.values()) == 7
