"""The prepared-dataset format, checked on the real MedMNIST files (when present) and on small npz files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from medgan.data.dataset import DatasetInfo, class_slugs, describe_images, load_dataset, save_prepared
from medgan.errors import MedganError
from medgan.utils import file_sha256
from tests.conftest import real_npz

# Facts from /work/shared/data/README.md: shape of train_images, split sizes, train images per class.
REAL = {
    "breastmnist.npz": ((546, 28, 28), (546, 78, 156), [147, 399]),
    "breastmnist_64.npz": ((546, 64, 64), (546, 78, 156), [147, 399]),
    "pneumoniamnist.npz": ((4708, 28, 28), (4708, 524, 624), [1214, 3494]),
    "adrenalmnist3d.npz": ((1188, 28, 28, 28), (1188, 98, 298), [929, 259]),
    "adrenalmnist3d_64.npz": ((1188, 64, 64, 64), (1188, 98, 298), [929, 259]),
}
CLASS_NAMES = {
    "breastmnist": ["malignant", "normal, benign"],
    "pneumoniamnist": ["normal", "pneumonia"],
    "adrenalmnist3d": ["normal", "hyperplasia"],
}


def _npy_headers(npz: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an npz, read from the .npy headers (no decompression)."""
    out = {}
    with zipfile.ZipFile(npz) as zf:
        for member in zf.infolist():
            with zf.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(fh)
            out[member.filename.removesuffix(".npy")] = (shape, dtype)
    return out


@pytest.mark.parametrize("fname", sorted(REAL))
def test_real_file_layout(fname: str) -> None:
    path = real_npz(fname)
    train_shape, splits, train_per_class = REAL[fname]
    headers = _npy_headers(path)
    assert sorted(headers) == sorted(f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels"))
    assert headers["train_images"][0] == train_shape
    for split, n in zip(("train", "val", "test"), splits, strict=True):
        shape, dtype = headers[f"{split}_images"]
        assert shape == (n, *train_shape[1:]) and dtype == np.uint8
        assert headers[f"{split}_labels"] == ((n, 1), np.dtype(np.uint8))
    with np.load(path) as data:
        assert np.bincount(data["train_labels"].ravel()).tolist() == train_per_class


@pytest.mark.parametrize(
    "fname",
    ["breastmnist.npz", "breastmnist_64.npz", "pneumoniamnist.npz", "adrenalmnist3d.npz",
     pytest.param("adrenalmnist3d_64.npz", marks=pytest.mark.slow)],
)
def test_load_real_file_derives_sidecar_from_registry(fname: str) -> None:
    path = real_npz(fname)
    train_shape, splits, train_per_class = REAL[fname]
    flag = fname.split("_")[0].removesuffix(".npz")
    ds = load_dataset(path)
    info = ds.info
    assert info.name == fname.removesuffix(".npz")
    assert info.source == f"medmnist:{info.name}"
    assert info.class_names == CLASS_NAMES[flag]
    assert info.channels == 1
    assert info.spatial_dims == len(train_shape) - 1
    assert info.size == list(train_shape[1:])
    assert info.sha256 == file_sha256(path)
    assert info.counts["train"] == train_per_class
    assert [sum(info.counts[s]) for s in ("train", "val", "test")] == list(splits)
    assert ds.channel_first("train").shape == (train_shape[0], 1, *train_shape[1:])
    assert ds.labels["train"].dtype == np.int64 and ds.labels["train"].shape == (train_shape[0],)
    assert ds.class_index(CLASS_NAMES[flag][1].upper()) == 1


def test_load_by_name_uses_the_mirror(medmnist_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDGAN_MIRROR", str(medmnist_dir))
    assert load_dataset("breastmnist").path == medmnist_dir / "breastmnist.npz"
    ds64 = load_dataset("breastmnist_64")
    assert ds64.path == medmnist_dir / "breastmnist_64.npz" and ds64.info.size == [64, 64]
    assert load_dataset("BreastMNIST", size=64).path == ds64.path
    assert not (tmp_path / "home" / "medmnist").exists()  # nothing copied into the cache


def _write_npz(path: Path, n: int = 4, shape: tuple[int, ...] = (28, 28), classes: int = 2,
               drop: str | None = None, label_cols: int = 1) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        labels = (np.arange(n) % classes).astype(np.uint8)
        arrays[f"{split}_labels"] = np.tile(labels[:, None], (1, label_cols))
    if drop:
        del arrays[drop]
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_npz_missing_a_key_is_a_clear_error(tmp_path: Path) -> None:
    npz = _write_npz(tmp_path / "broken.npz", drop="val_labels")
    with pytest.raises(MedganError, match=r"broken.npz: npz is missing key\(s\) val_labels"):
        load_dataset(npz)


def test_not_an_npz(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"hello")
    with pytest.raises(MedganError, match=r"not a readable npz"):
        load_dataset(bad)


def test_unknown_dataset_name_lists_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    with pytest.raises(MedganError) as err:
        load_dataset("kneemnist")
    msg = str(err.value)
    assert msg.startswith("unknown dataset 'kneemnist' (known: adrenalmnist3d, bloodmnist, breastmnist,")
    assert "pneumoniamnist" in msg and "dermamnist" in msg


def test_missing_file_path(tmp_path: Path) -> None:
    with pytest.raises(MedganError, match=r"dataset file not found"):
        load_dataset(tmp_path / "nope.npz")


def test_rgb_official_name_gets_registry_sidecar(tmp_path: Path) -> None:
    # An npz named like the official DermaMNIST file: channels, class names and size come from the registry.
    npz = _write_npz(tmp_path / "dermamnist.npz", n=7, shape=(28, 28, 3), classes=7)
    ds = load_dataset(npz)
    assert ds.info.channels == 3 and ds.info.spatial_dims == 2 and ds.info.size == [28, 28]
    assert ds.info.class_names[4] == "melanoma" and ds.info.num_classes == 7
    assert ds.channel_first("train").shape == (7, 3, 28, 28)
    assert ds.info.counts["train"] == [1] * 7


def test_multi_label_file_is_refused(tmp_path: Path) -> None:
    npz = _write_npz(tmp_path / "chestmnist.npz", label_cols=14)
    with pytest.raises(MedganError, match=r"train_labels has shape \(4, 14\); medgan needs one label per image"):
        load_dataset(npz)


def test_unknown_file_gets_a_generic_sidecar(tmp_path: Path) -> None:
    ds = load_dataset(_write_npz(tmp_path / "mine.npz", n=6, shape=(8, 16, 16), classes=3))
    assert ds.info.class_names == ["0", "1", "2"]
    assert ds.info.channels == 1 and ds.info.spatial_dims == 3 and ds.info.size == [8, 16, 16]
    assert ds.info.counts["val"] == [2, 2, 2]


def test_prepared_folder_round_trip_and_tamper_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = {s: rng.integers(0, 256, size=(5, 32, 32), dtype=np.uint8) for s in ("train", "val", "test")}
    labels = {s: np.array([0, 1, 1, 0, 1]) for s in ("train", "val", "test")}
    info = DatasetInfo(name="us", class_names=["benign", "malignant"], channels=1, spatial_dims=2,
                       size=[32, 32], source="/data/us", sha256="")
    out = tmp_path / "prepared"
    save_prepared(out, images, labels, info)
    ds = load_dataset(out)
    assert ds.info.class_names == ["benign", "malignant"]
    assert ds.info.counts["train"] == [2, 3]
    np.testing.assert_array_equal(ds.images["val"], images["val"])
    sidecar = json.loads((out / "dataset.json").read_text())
    assert sidecar["sha256"] == file_sha256(out / "dataset.npz")

    sidecar["sha256"] = "0" * 64
    (out / "dataset.json").write_text(json.dumps(sidecar))
    with pytest.raises(MedganError, match=r"sha256 of dataset.npz does not match its sidecar"):
        load_dataset(out)


def test_class_slugs_are_file_safe_and_unique() -> None:
    # One rule for folders, file names and metric keys (it was written twice; the two gave "class2"
    # and "2" for a name with no letters; "class2" is kept: a bare number reads as a label index).
    assert class_slugs(["Normal, benign", "malignant", "?", "malignant"]) == [
        "normal_benign", "malignant", "class2", "malignant_3",
    ]
    assert class_slugs(["malignant", "normal, benign", "Normal Benign", "", "x/y"]) == [
        "malignant", "normal_benign", "normal_benign_2", "class3", "x_y",
    ]


def test_describe_images() -> None:
    assert describe_images((1, 28, 28)) == "2D, 1 channel, 28×28"
    assert describe_images([3, 4, 5, 6]) == "3D, 3 channels, 4×5×6"
