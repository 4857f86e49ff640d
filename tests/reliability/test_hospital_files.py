"""Real hospital files through the real CLI (#15): non-finite voxels, compressed DICOM, patients under two
classes, tiny or one-class datasets. Every bad input: exit 2, one ``error:`` line, no traceback, nothing
partial. The DICOM validators and the identifier audit have their own files beside this one."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.data.dataset import DatasetInfo, load_dataset, save_prepared
from medgan.data.io import check_finite, read_image
from medgan.errors import MedganError
from tests.conftest import make_banded_toy
from tests.data.helpers import CT, read_sources

runner = CliRunner()


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def assert_one_line_error(args: list[str | Path], message: str, out: Path | None = None) -> str:
    """Exit 2, exactly one line of output, ``error: ...`` holding ``message``, no traceback, and
    nothing left at ``out`` nor any temporary sibling of it."""
    code, output = cli(*args)
    assert code == 2, output
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert message in lines[0], output
    assert "Traceback" not in output
    if out is not None:
        assert not out.exists(), list(out.iterdir())
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    return lines[0]


def _testdata(name: str) -> Path:
    """One of pydicom's own test files, or a clean skip when this pydicom does not ship it (fetching
    it would need the network)."""
    try:
        path = get_testdata_file(name, download=False)
    except Exception:  # pydicom raises on a name it does not know
        path = None
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not installed here")
    return Path(path)


# Non-finite voxels.


def _nifti_tree(root: Path, bad: dict[int, float] | None = None) -> Path:
    """``root/src/{a,b}/vN.nii.gz``: 5 volumes per class; volume 0 of class a gets ``bad`` values at
    flat indices."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / "src" / c).mkdir(parents=True)
        for i in range(5):
            v = rng.normal(size=(6, 7, 8)).astype(np.float32)
            if c == "a" and i == 0 and bad:
                v.reshape(-1)[list(bad)] = list(bad.values())
            nib.save(nib.Nifti1Image(v, np.diag([1.0, 1.0, 2.0, 1.0])), root / "src" / c / f"v{i}.nii.gz")
    return root / "src"


def test_nifti_with_nan_voxels_is_refused_naming_the_file_and_the_count(tmp_path: Path) -> None:
    src = _nifti_tree(tmp_path, {3: np.nan, 10: np.nan, 20: np.inf})
    out = tmp_path / "prepared"
    line = assert_one_line_error(
        ["preprocess", src, "--out", out, "--size", 8, "--no-progress"],
        "has 3 non-finite values (2 NaN, 1 +inf) of 336",
        out,
    )
    assert "a/v0.nii.gz" in line and "--nan-to" in line


def test_nan_to_opts_in_and_the_volume_is_not_zeroed(tmp_path: Path) -> None:
    src = _nifti_tree(tmp_path, {3: np.nan})
    out = tmp_path / "prepared"
    code, output = cli(
        "preprocess",
        src,
        "--out",
        out,
        "--size",
        8,
        "--no-progress",
        "--nan-to",
        0,
        "--test-frac",
        0.2,
        "--val-frac",
        0.2,
    )
    assert code == 0, output
    ds = load_dataset(out)
    assert ds.info.preprocessing["nan_to"] == 0.0
    rows = read_sources(out)
    split, index = next((r["split"], int(r["index"])) for r in rows if r["source"] == "a/v0.nii.gz")
    vol = ds.images[split][index]
    assert vol.std() > 10  # the old behaviour: NaN scaled the whole volume to zeros


def test_nan_to_must_be_finite(tmp_path: Path) -> None:
    src = _nifti_tree(tmp_path)
    out = tmp_path / "prepared"
    assert_one_line_error(
        ["preprocess", src, "--out", out, "--nan-to", "nan", "--no-progress"],
        "--nan-to must be a finite number",
        out,
    )


def test_dicom_whose_rescale_gives_nan_is_refused(tmp_path: Path) -> None:
    for c in ("a", "b"):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(4):
            ds = pydicom.dcmread(CT)
            ds.PatientID = f"{c}{i}"
            if c == "b" and i == 2:
                with warnings.catch_warnings():  # pydicom warns that 'inf' is no valid DS, and writes it
                    warnings.simplefilter("ignore")
                    ds.RescaleIntercept = "inf"  # a header value that makes every pixel non-finite
            ds.save_as(tmp_path / "src" / c / f"{i}.dcm")
    out = tmp_path / "prepared"
    line = assert_one_line_error(
        ["preprocess", tmp_path / "src", "--out", out, "--size", 8, "--no-progress"],
        "has 16384 non-finite values (16384 +inf) of 16384",
        out,
    )
    assert "b/2.dcm" in line


def test_check_finite_is_the_one_rule() -> None:
    ints = np.arange(4, dtype=np.uint16)
    assert check_finite(ints, "x") is ints  # integers are always finite
    clean = np.ones(3, np.float32)
    assert check_finite(clean, "x") is clean
    fixed = check_finite(np.array([1.0, np.nan, -np.inf]), "x", nan_to=-5.0)
    np.testing.assert_array_equal(fixed, [1.0, -5.0, -5.0])
    with pytest.raises(MedganError, match=r"^f\.nii: has 1 non-finite value \(1 -inf\) of 2;"):
        check_finite(np.array([0.0, -np.inf]), "f.nii")


def test_npz_with_float_nan_images_names_the_key_and_the_count(tmp_path: Path) -> None:
    images = np.zeros((4, 8, 8), np.float32)
    images[1, 2, 3] = np.nan
    arrays = {f"{s}_images": images for s in ("train", "val", "test")}
    arrays |= {f"{s}_labels": np.array([[0], [1], [0], [1]]) for s in ("train", "val", "test")}
    np.savez(tmp_path / "floats.npz", **arrays)
    assert_one_line_error(
        ["data", "info", tmp_path / "floats.npz"],
        "train_images has 1 non-finite value (1 NaN) of 256; medgan needs uint8 images",
    )


# Compressed DICOM.

LOSSLESS = ["MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"]


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_compressed_dicom_reads_exactly_like_the_uncompressed_file(name: str) -> None:
    reference = read_image(_testdata("MR_small.dcm")).array
    np.testing.assert_array_equal(read_image(_testdata(name)).array, reference)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("JPGExtended.dcm", (1024, 256)),  # JPEG Extended, 12-bit
        ("SC_rgb_jpeg_gdcm.dcm", (100, 100, 3)),  # JPEG Lossless, first-order prediction
        ("JPEGLSNearLossless_16.dcm", (50, 10)),  # JPEG-LS near-lossless, 16-bit
        ("JPEG2000.dcm", (1024, 256)),
    ],
)
def test_compressed_dicom_reads(name: str, shape: tuple[int, ...]) -> None:
    image = read_image(_testdata(name))
    assert image.array.shape == shape
    assert np.isfinite(image.array).all() and image.array.std() > 0


def test_preprocess_reads_a_jpeg_ls_archive(tmp_path: Path) -> None:
    jls = _testdata("MR_small_jpeg_ls_lossless.dcm")
    for c in ("a", "b"):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(4):
            ds = pydicom.dcmread(jls)
            ds.PatientID = f"{c}{i}"
            ds.save_as(tmp_path / "src" / c / f"{i}.dcm")
    out = tmp_path / "prepared"
    code, output = cli("preprocess", tmp_path / "src", "--out", out, "--size", 16, "--no-progress")
    assert code == 0, output
    assert load_dataset(out).images["train"].std() > 0


def test_missing_decoder_names_the_transfer_syntax_and_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    decoder = get_decoder(JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})  # as on a machine without pylibjpeg-libjpeg
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-libjpeg>=2.1")})
    (tmp_path / "src" / "a").mkdir(parents=True)
    shutil.copy(_testdata("MR_small_jpeg_ls_lossless.dcm"), tmp_path / "src" / "a" / "1.dcm")
    out = tmp_path / "prepared"
    line = assert_one_line_error(
        ["preprocess", tmp_path / "src", "--out", out, "--no-progress"],
        "no decoder installed for its transfer syntax 'JPEG-LS Lossless Image Compression' "
        "(1.2.840.10008.1.2.4.80); pip install pylibjpeg pylibjpeg-libjpeg",
        out,
    )
    assert "a/1.dcm" in line and "truncated or corrupt" not in line


def test_undecodable_compressed_dicom_names_the_syntax_and_every_decoder(tmp_path: Path) -> None:
    broken = tmp_path / "broken.dcm"
    ds = pydicom.dcmread(_testdata("MR_small_jpeg_ls_lossless.dcm"))
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    junk = np.random.default_rng(0).integers(0, 256, len(frame) - 2, dtype=np.uint8).tobytes()
    ds.PixelData = pydicom.encaps.encapsulate([frame[:2] + junk])  # a JPEG-LS stream garbled after its SOI
    ds.save_as(broken)
    with pytest.raises(MedganError) as err:
        read_image(broken)
    text = str(err.value)
    assert "\n" not in text
    assert (
        "cannot decode its 'JPEG-LS Lossless Image Compression' (1.2.840.10008.1.2.4.80) pixel data" in text
    )
    assert "pylibjpeg:" in text


# Patients under two class folders.


def test_patient_under_two_classes_is_named_with_both_classes(tmp_path: Path) -> None:
    # Class 'b' holds 3 patients, but two of them have more images under 'a': the old message said
    # "class 'b' has 1 patients".
    def put(cls: str, patient: str, k: int) -> None:
        (tmp_path / "src" / cls).mkdir(parents=True, exist_ok=True)
        ds = pydicom.dcmread(CT)
        ds.PatientID = patient
        ds.save_as(tmp_path / "src" / cls / f"{patient}_{k}.dcm")

    for p in ("P1", "P2", "P3", "P4", "P5"):
        for k in range(2):
            put("a", p, k)
    for p, k in (("P1", 9), ("P2", 9), ("Q7", 0)):
        put("b", p, k)
    out = tmp_path / "prepared"
    line = assert_one_line_error(
        ["preprocess", tmp_path / "src", "--out", out, "--size", 8, "--no-progress"],
        "class 'b' has 3 patients (images are grouped by patient ID); at least 3 are needed",
        out,
    )
    assert (
        "patient 'P1' is under both 'b' and 'a'" in line and "patient 'P2' is under both 'b' and 'a'" in line
    )
    assert "leaves 'b' 1" in line


# Few images, one class.


def _one_class_dataset(root: Path, declared: list[str], n: int = 12) -> Path:
    """A prepared dataset whose images all have label 0, with ``declared`` class names."""
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 16, 16), dtype=np.uint8) for s in ("train", "val", "test")}
    labels = {s: np.zeros(n, np.int64) for s in images}
    info = DatasetInfo(
        name="one", class_names=declared, channels=1, spatial_dims=2, size=[16, 16], source="test", sha256=""
    )
    save_prepared(root, images, labels, info)
    return root


TINY_TRAIN = {
    "steps": 1,
    "batch_size": 4,
    "log_every": 1,
    "sample_every": 1,
    "checkpoint_every": 100,
    "device": "cpu",
    "model": {"g_channels": 8, "d_channels": 8, "g_max_channels": 16, "d_max_channels": 16, "z_dim": 16},
}


def _train(tmp_path: Path, data: Path, **extra: object) -> tuple[int, str]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**TINY_TRAIN, "data": str(data), "out": str(tmp_path / "run"), **extra}))
    return cli("train", cfg, "--no-progress")


def test_train_warns_about_few_images_per_class(tmp_path: Path, one_thread: None) -> None:
    data = make_banded_toy(tmp_path, n=24)
    code, output = _train(tmp_path, data)
    assert code == 0, output
    warned = [ln for ln in output.splitlines() if ln.startswith("warning:")]
    assert warned and "fewer than 50 training images" in warned[0], output
    assert "Traceback" not in output


def test_train_warns_that_one_class_cannot_be_class_conditional(tmp_path: Path, one_thread: None) -> None:
    data = _one_class_dataset(tmp_path / "one", ["malignant"])
    code, output = _train(tmp_path, data)
    assert code == 0, output
    assert any(
        "one class" in ln and "model.conditional" in ln
        for ln in output.splitlines()
        if ln.startswith("warning:")
    ), output


def test_benchmark_on_one_class_is_refused(tmp_path: Path) -> None:
    # Two class names, but every image is of the first: no classifier can be compared on it.
    data = _one_class_dataset(tmp_path / "one", ["benign", "malignant"])
    cfg = tmp_path / "bench.yaml"
    train_cfg = Path(__file__).resolve().parents[2] / "configs" / "train" / "cgan_breastmnist.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"data": str(data), "target_class": "malignant", "gan": {"train_config": str(train_cfg)}}
        )
    )
    out = tmp_path / "bench"
    assert_one_line_error(
        ["benchmark", cfg, "--out", out, "--no-progress"],
        "the benchmark needs images of at least two classes in every split",
        out,
    )
