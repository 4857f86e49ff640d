"""`medgan augment` through Typer's CliRunner: files, manifest, provenance, balancing, formats, errors."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from medgan.cli.augment import parse_plan
from medgan.cli.main import app
from medgan.data.dataset import load_dataset
from medgan.errors import MedganError
from medgan.training.checkpoint import find_checkpoint
from medgan.training.loop import train
from medgan.utils import file_sha256
from tests.conftest import BREAST_LIKE_NAMES as NAMES
from tests.conftest import BREAST_LIKE_TRAIN_COUNTS as TRAIN_COUNTS
from tests.conftest import make_banded_toy, make_breast_like_toy, real_npz
from tests.training.helpers import tiny_config

FINAL_LINE = re.compile(r"^wrote (\d+) samples \((.+)\) as (\w+) to (.+) in \d+\.\d\d s \(\d+ images/s\)$")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two-step training runs: a 2D BreastMNIST-like model and a 3D 8³ one, plus their datasets."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("augment_toy")
    data2d = make_breast_like_toy(root, "breasttoy", seed=0)
    other = make_breast_like_toy(root, "othertoy", seed=1)  # same names and shape, other pixels
    data3d = make_banded_toy(root, size=8, spatial_dims=3)
    run2d = train(tiny_config(data2d, root / "run2d", "steps=2"), progress=False).run_dir
    run3d = train(tiny_config(data3d, root / "run3d", "steps=2"), progress=False).run_dir
    return {"data2d": data2d, "other": other, "data3d": data3d, "run2d": run2d, "run3d": run3d}


def _augment(*args: object) -> tuple[int, str, str]:
    """Run ``medgan augment ARGS`` (no progress bar, CPU); return exit code, stdout, stderr."""
    result = CliRunner().invoke(app, ["augment", "--device", "cpu", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _ok(*args: object) -> str:
    code, out, err = _augment("--no-progress", *args)
    assert code == 0, err
    return out


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _files(out: Path) -> dict[str, bytes]:
    """Every file of an output folder but provenance.json (which holds a timestamp), by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "provenance.json"}


# PNG and npz, manifest, provenance and the final line.


def test_png_writes_n_images_manifest_and_provenance(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "synth"
    code, stdout, stderr = _augment("--checkpoint", toy["run2d"], "--class", "malignant", "--n", 50,
                                    "--format", "png", "--seed", 4, "--batch-size", 16, "--threads", 1, "--out", out)
    assert code == 0, stderr
    pngs = sorted(out.rglob("*.png"))
    assert [p.relative_to(out).as_posix() for p in pngs] == [f"malignant/malignant_4_{i:06d}.png" for i in range(50)]
    assert sorted(p.name for p in out.iterdir()) == ["malignant", "manifest.csv", "provenance.json"]
    for p in pngs[:5]:
        with Image.open(p) as im:
            assert (im.mode, im.size) == ("L", (16, 16))
            assert "SYNTHETIC" in im.info["Description"]
    rows = _manifest(out)
    assert [r["file"] for r in rows] == [p.relative_to(out).as_posix() for p in pngs]
    assert {(r["class_name"], r["class_index"], r["seed"]) for r in rows} == {("malignant", "0", "4")}
    assert [int(r["sample_index"]) for r in rows] == list(range(50))
    prov = json.loads((out / "provenance.json").read_text())
    ckpt = find_checkpoint(toy["run2d"])
    assert prov["synthetic"] is True and prov["checkpoint_sha256"] == file_sha256(ckpt)
    assert prov["dataset_sha256"] == load_dataset(toy["data2d"]).info.sha256
    assert prov["config"]["steps"] == 2 and prov["counts"] == {"malignant": 50} and prov["format"] == "png"
    assert prov["arguments"]["n"] == 50 and prov["arguments"]["seed"] == 4 and prov["arguments"]["class"] == "malignant"
    assert prov["torch_threads"] == 1 and prov["latent_block"] == 64 and prov["forward_block"] == 64
    # The progress bar goes to stderr; stdout ends with the summary: count and images/s.
    assert "augment" in stderr and "50/50" in stderr
    m = FINAL_LINE.match(stdout.strip().splitlines()[-1])
    assert m is not None, stdout
    assert m.group(1, 2, 3, 4) == ("50", "malignant: 50", "png", str(out))


def test_npz_is_a_prepared_dataset_that_data_info_reads(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "synth"
    stdout = _ok("--checkpoint", toy["run2d"], "--class", "all", "--n", 25, "--format", "npz", "--out", out)
    assert "wrote 50 samples (malignant: 25, normal, benign: 25) as npz" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "dataset.npz", "manifest.csv", "provenance.json"]
    result = CliRunner().invoke(app, ["data", "info", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["class_names"] == NAMES and info["size"] == [16, 16] and info["channels"] == 1
    assert info["counts"] == {"train": [25, 25], "val": [0, 0], "test": [0, 0]}
    assert info["source"].startswith("synthetic:")
    table = CliRunner().invoke(app, ["data", "info", str(out)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "normal, benign" in table.stdout
    ds = load_dataset(out)
    rows = _manifest(out)
    assert [int(r["class_index"]) for r in rows] == ds.labels["train"].tolist()
    assert {r["file"] for r in rows} == {"dataset.npz"}
    assert [int(r["sample_index"]) for r in rows] == [*range(25), *range(25)]


@pytest.mark.parametrize(("run", "fmt", "shape"), [("run2d", "png", (16, 16)), ("run2d", "npz", (16, 16)),
                                                   ("run3d", "nifti", (8, 8, 8))])
def test_same_seed_same_bytes_any_batch_size_other_seed_differs(toy: dict[str, Path], tmp_path: Path, run: str,
                                                                fmt: str, shape: tuple[int, ...]) -> None:
    n = 50 if fmt != "nifti" else 4

    def export(name: str, seed: int, batch_size: int) -> dict[str, bytes]:
        _ok("--checkpoint", toy[run], "--class", "all", "--n", n, "--format", fmt, "--seed", seed,
            "--batch-size", batch_size, "--out", tmp_path / name)
        return _files(tmp_path / name)

    def pixels(name: str) -> np.ndarray:
        """The samples in manifest order (the seed is in the file names, so compare content)."""
        if fmt == "npz":
            return load_dataset(tmp_path / name).images["train"]
        read = (lambda f: np.asarray(Image.open(f))) if fmt == "png" else (lambda f: np.asarray(nib.load(f).dataobj))
        return np.stack([read(tmp_path / name / r["file"]) for r in _manifest(tmp_path / name)])

    a = export("a", 5, 256)
    assert len(a) == (2 * n + 1 if fmt != "npz" else 3)  # one file per sample (or npz + json), manifest.csv
    assert export("b", 5, 256) == a
    assert export("c", 5, 3) == a  # the batch size changes nothing
    export("d", 6, 256)
    assert pixels("a").shape == pixels("d").shape == (2 * n, *shape)
    assert not np.array_equal(pixels("a"), pixels("d"))


# Balancing.


def test_balance_fills_the_minority_up_to_the_majority(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "synth"
    stdout = _ok("--checkpoint", toy["run2d"], "--balance", "--data", toy["data2d"], "--out", out)
    need = TRAIN_COUNTS[1] - TRAIN_COUNTS[0]
    assert f"wrote {need} samples (malignant: {need}) as png" in stdout
    rows = _manifest(out)
    assert len(rows) == need and {r["class_name"] for r in rows} == {"malignant"}
    assert len(list((out / "malignant").glob("*.png"))) == need and not (out / "normal_benign").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["counts"] == {"malignant": need}
    assert prov["balance_dataset_sha256"] == load_dataset(toy["data2d"]).info.sha256


def test_balance_to_a_count(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "synth"
    _ok("--checkpoint", toy["run2d"], "--balance-to", 40, "--data", toy["data2d"], "--format", "npz", "--out", out)
    counts = [40 - k for k in TRAIN_COUNTS]
    assert [sum(r["class_index"] == str(c) for r in _manifest(out)) for c in (0, 1)] == counts
    assert load_dataset(out).info.counts["train"] == counts
    # With --class, only that class is filled.
    only = tmp_path / "only"
    _ok("--checkpoint", toy["run2d"], "--balance-to", 40, "--class", "normal, benign", "--data", toy["data2d"],
        "--out", only)
    assert [r["class_name"] for r in _manifest(only)] == ["normal, benign"] * counts[1]
    assert len(list((only / "normal_benign").glob("*.png"))) == counts[1]


def test_a_gan_the_benchmark_trained_balances_its_dataset(toy: dict[str, Path], tmp_path: Path) -> None:
    # The benchmark trains its GAN on a train-only copy (another sha256, the full file's sha256 as
    # its source); the one "trained on this dataset" rule accepts it for the full dataset.
    from medgan.benchmark.arms import write_train_only

    torch.set_num_threads(1)
    copy = write_train_only(load_dataset(toy["data2d"]), tmp_path / "gan_data")
    run = train(tiny_config(copy, tmp_path / "gan", "steps=1"), progress=False).run_dir
    stdout = _ok("--checkpoint", run, "--balance", "--data", toy["data2d"], "--format", "npz", "--out", tmp_path / "s")
    need = TRAIN_COUNTS[1] - TRAIN_COUNTS[0]
    assert f"wrote {need} samples (malignant: {need}) as npz" in stdout


def test_balancing_against_another_dataset_is_refused(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "synth"
    code, _, err = _augment("--checkpoint", toy["run2d"], "--balance", "--data", toy["other"], "--out", out)
    assert code == 2
    assert "--data is not the dataset this checkpoint was trained on (checkpoint: breasttoy" in err
    assert "--data: othertoy" in err
    assert not out.exists()


# Volumes: NIfTI and DICOM.


def test_nifti_volumes_read_back_at_the_right_shape(toy: dict[str, Path], tmp_path: Path) -> None:
    _ok("--checkpoint", toy["run3d"], "--class", "class1", "--n", 3, "--format", "nifti", "--out", tmp_path / "nii")
    _ok("--checkpoint", toy["run3d"], "--class", "class1", "--n", 3, "--format", "npz", "--out", tmp_path / "npz")
    volumes = load_dataset(tmp_path / "npz").images["train"]  # (N, D, H, W)
    rows = _manifest(tmp_path / "nii")
    assert [r["file"] for r in rows] == [f"class1/class1_0_{i:06d}.nii.gz" for i in range(3)]
    for row, volume in zip(rows, volumes, strict=True):
        img = nib.load(tmp_path / "nii" / row["file"])
        assert img.shape == (8, 8, 8) and img.header.get_zooms() == (1.0, 1.0, 1.0)
        data = np.asarray(img.dataobj)
        assert data.dtype == np.uint8
        np.testing.assert_array_equal(data.transpose(2, 1, 0), volume)  # NIfTI (W, H, D) -> (D, H, W)


def test_dicom_volumes_read_back_as_multiframe_files_in_slice_order(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "dcm"
    _ok("--checkpoint", toy["run3d"], "--class", "1", "--n", 2, "--format", "dicom", "--out", out)
    _ok("--checkpoint", toy["run3d"], "--class", "1", "--n", 2, "--format", "npz", "--out", tmp_path / "npz")
    volumes = load_dataset(tmp_path / "npz").images["train"]
    rows = _manifest(out)
    assert [r["file"] for r in rows] == ["class1/class1_0_000000.dcm", "class1/class1_0_000001.dcm"]
    sha = file_sha256(find_checkpoint(toy["run3d"]))
    for row, volume in zip(rows, volumes, strict=True):
        d = pydicom.dcmread(out / row["file"])
        assert d.NumberOfFrames == 8
        # Frame k lies k slice steps along z: the frame order is the slice order.
        z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in d.PerFrameFunctionalGroupsSequence]
        assert z == sorted(z) and len(set(z)) == 8
        assert d.pixel_array.shape == (8, 8, 8)
        np.testing.assert_array_equal(d.pixel_array, volume)
        assert str(d.PatientName) == "SYNTHETIC"
        assert f"Checkpoint sha256 {sha}" in d.ImageComments and "SYNTHETIC" in d.ImageComments


# Errors: exit code 2 and one line that says what is wrong.


def _fails(*args: object, out: Path | None = None) -> str:
    code, stdout, stderr = _augment("--no-progress", *args, *(["--out", out] if out is not None else []))
    assert code == 2, (stdout, stderr)
    assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    return stderr


def test_unknown_class_lists_the_valid_names(toy: dict[str, Path], tmp_path: Path) -> None:
    err = _fails("--checkpoint", toy["run2d"], "--class", "benign", "--n", 5, out=tmp_path / "o")
    assert "unknown class 'benign' (valid: 0: malignant, 1: normal, benign)" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("n", [0, -1])
def test_n_must_be_positive(toy: dict[str, Path], tmp_path: Path, n: int) -> None:
    err = _fails("--checkpoint", toy["run2d"], "--class", "malignant", "--n", n, out=tmp_path / "o")
    assert f"--n must be a positive number of samples, got {n}" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", 5, "--balance"], "--n and --balance exclude each other"),
        (["--balance"], "--balance needs --data DATASET"),
        (["--n", 5, "--data", "x"], "--data is only used with --balance or --balance-to"),
        (["--n", 5], "give --class NAME|INDEX|all (classes: malignant, normal, benign)"),
        (["--n", 5, "--class", "all", "--format", "jpeg"], "unknown --format 'jpeg' (allowed: png, npz, nifti, dicom)"),
        (["--n", 5, "--class", "all", "--seed", -1], "--seed must be a non-negative integer, got -1"),
        (["--n", 5, "--class", "all", "--batch-size", 0], "--batch-size must be positive, got 0"),
        (["--n", 5, "--class", "all", "--truncation", 0], "--truncation must be a positive number, got 0.0"),
        (["--n", 5, "--class", "all", "--threads", -1], "--threads must be 0 (torch's default) or positive, got -1"),
    ],
)
def test_option_combinations_that_make_no_sense(toy: dict[str, Path], tmp_path: Path, args: list, message: str) -> None:
    assert message in _fails("--checkpoint", toy["run2d"], *args, out=tmp_path / "o")


def test_missing_checkpoint(tmp_path: Path) -> None:
    err = _fails("--checkpoint", tmp_path / "nope.pt", "--class", "all", "--n", 5, out=tmp_path / "o")
    assert f"{tmp_path / 'nope.pt'}: no such run folder or checkpoint" in err


def _copy_checkpoint(run: Path, dest: Path) -> Path:
    ckpt = find_checkpoint(run)
    dest.mkdir()
    shutil.copy(ckpt, dest / ckpt.name)
    shutil.copy(ckpt.with_name(ckpt.name + ".sha256"), dest / (ckpt.name + ".sha256"))
    return dest / ckpt.name


def test_corrupt_checkpoint(toy: dict[str, Path], tmp_path: Path) -> None:
    ckpt = _copy_checkpoint(toy["run2d"], tmp_path / "ckpt")
    ckpt.write_bytes(ckpt.read_bytes()[: 5000])  # truncated, with a sidecar that matches the damage
    ckpt.with_name(ckpt.name + ".sha256").write_text(f"{file_sha256(ckpt)}  {ckpt.name}\n")
    err = _fails("--checkpoint", ckpt, "--class", "all", "--n", 5, out=tmp_path / "o")
    assert "not a readable checkpoint" in err
    assert not (tmp_path / "o").exists()


def test_checkpoint_with_a_wrong_hash(toy: dict[str, Path], tmp_path: Path) -> None:
    ckpt = _copy_checkpoint(toy["run2d"], tmp_path / "ckpt")
    ckpt.with_name(ckpt.name + ".sha256").write_text(f"{'0' * 64}  {ckpt.name}\n")
    err = _fails("--checkpoint", ckpt, "--class", "all", "--n", 5, out=tmp_path / "o")
    assert "sha256 mismatch (sidecar 000000000000…" in err and "corrupt or altered checkpoint" in err


def test_png_of_a_volume_model_is_refused(toy: dict[str, Path], tmp_path: Path) -> None:
    err = _fails("--checkpoint", toy["run3d"], "--class", "all", "--n", 5, "--format", "png", out=tmp_path / "o")
    assert "PNG is 2D only and this checkpoint makes volumes; use --format nifti, dicom or npz" in err
    assert not (tmp_path / "o").exists()


def test_non_empty_out_is_refused_without_overwrite(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    err = _fails("--checkpoint", toy["run2d"], "--class", "all", "--n", 5, out=out)
    assert "folder exists and is not empty (pass --overwrite to replace it)" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
    # With --overwrite it is replaced.
    _ok("--checkpoint", toy["run2d"], "--class", "all", "--n", 5, "--out", out, "--overwrite")
    assert not (out / "keep.txt").exists() and len(_manifest(out)) == 10


@pytest.mark.parametrize("existing", [False, True])
def test_a_failing_disk_leaves_nothing_behind(toy: dict[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    parent = tmp_path / "disk"
    parent.mkdir()
    out = parent / "synth"
    if existing:  # an earlier export that --overwrite would replace
        out.mkdir()
        (out / "old.txt").write_text("earlier export")
    calls = {"n": 0}
    real_save = Image.Image.save

    def save(self: Image.Image, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] > 20:  # the disk fills up midway
            raise OSError(28, "No space left on device")
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    err = _fails("--checkpoint", toy["run2d"], "--class", "all", "--n", 25, "--batch-size", 8, "--overwrite",
                 out=out)
    assert calls["n"] == 21  # it failed midway, after 20 files were written
    assert f"error: {out}: could not write: No space left on device; the partial output was removed" in err
    if existing:
        assert [p.name for p in parent.iterdir()] == ["synth"]  # no temporary or .old folder beside it
        assert [p.name for p in out.iterdir()] == ["old.txt"] and (out / "old.txt").read_text() == "earlier export"
    else:
        assert list(parent.iterdir()) == []


def test_a_failing_disk_when_the_npz_is_written(toy: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import medgan.data.dataset

    def full(path: Path, arrays: dict) -> None:
        Path(path).write_bytes(b"PK partial")  # a half-written file, then the error
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(medgan.data.dataset, "savez_deterministic", full)
    parent = tmp_path / "disk"
    parent.mkdir()
    err = _fails("--checkpoint", toy["run2d"], "--class", "all", "--n", 20, "--format", "npz", out=parent / "synth")
    assert "could not write: No space left on device; the partial output was removed" in err
    assert list(parent.iterdir()) == []


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["augment", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example: medgan augment --checkpoint" in result.stdout


def test_parse_plan_for_unconditional_models() -> None:
    def plan(class_arg, n, balance=False, data=None):
        return parse_plan(class_arg=class_arg, n=n, class_names=NAMES, conditional=False, balance=balance,
                          balance_to=None, data=data)

    assert plan(None, 7).counts(1) == {0: 7}
    assert plan("all", 7).counts(1) == {0: 7}
    with pytest.raises(MedganError, match="this checkpoint is unconditional: it cannot make one class"):
        plan("malignant", 7)
    with pytest.raises(MedganError, match="--balance needs a class-conditional checkpoint"):
        plan(None, None, balance=True, data="x")


def test_balance_real_breastmnist(tmp_path: Path) -> None:
    npz = real_npz("breastmnist.npz")
    torch.set_num_threads(1)
    run = train(tiny_config(npz, tmp_path / "run", "steps=1"), progress=False).run_dir
    out = tmp_path / "synth"
    stdout = _ok("--checkpoint", run, "--balance", "--data", npz, "--format", "npz", "--out", out)
    assert "wrote 252 samples (malignant: 252) as npz" in stdout  # 399 normal, benign - 147 malignant
    synth = load_dataset(out)
    assert synth.info.class_names == ["malignant", "normal, benign"] and synth.info.counts["train"] == [252, 0]
    assert synth.images["train"].shape == (252, 28, 28)
