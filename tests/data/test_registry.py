"""The built-in MedMNIST registry: well-formed entries, MD5s that match the real files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medgan.data.registry import REGISTRY, ZENODO, get_spec
from medgan.errors import MedganError
from medgan.utils import file_md5

FLAGS_2D = [
    "pathmnist", "chestmnist", "dermamnist", "octmnist", "pneumoniamnist", "retinamnist", "breastmnist",
    "bloodmnist", "tissuemnist", "organamnist", "organcmnist", "organsmnist",
]
FLAGS_3D = [
    "organmnist3d", "nodulemnist3d", "adrenalmnist3d", "fracturemnist3d", "vesselmnist3d", "synapsemnist3d",
]
MD5 = re.compile(r"^[0-9a-f]{32}$")


def test_registry_holds_every_medmnist_v2_dataset() -> None:
    assert sorted(REGISTRY) == sorted(FLAGS_2D + FLAGS_3D)


@pytest.mark.parametrize("name", FLAGS_2D + FLAGS_3D)
def test_entry_is_well_formed(name: str) -> None:
    spec = REGISTRY[name]
    assert spec.name == name
    assert spec.spatial_dims == (3 if name in FLAGS_3D else 2)
    assert spec.channels in (1, 3)
    assert spec.num_classes == len(spec.label_names) >= 2
    assert all(label.strip() for label in spec.label_names)
    assert len(set(spec.label_names)) == spec.num_classes
    assert spec.sizes == ((28, 64) if spec.spatial_dims == 3 else (28, 64, 128, 224))
    assert all(MD5.match(h) for h in spec.md5.values())
    assert set(spec.n_samples) == {"train", "val", "test"}
    assert all(n > 0 for n in spec.n_samples.values())
    assert spec.source and spec.license.startswith("CC BY")
    assert spec.url(28) == f"{ZENODO}/{name}.npz?download=1"
    assert spec.url(64) == f"{ZENODO}/{name}_64.npz?download=1"
    assert spec.filename(28) == f"{name}.npz" and spec.filename(64) == f"{name}_64.npz"


def test_md5s_are_unique_across_files() -> None:
    hashes = [h for spec in REGISTRY.values() for h in spec.md5.values()]
    assert len(hashes) == len(set(hashes)) == 12 * 4 + 6 * 2


def test_task_types() -> None:
    assert get_spec("chestmnist").multi_label and get_spec("chestmnist").task == "multi-label, binary-class"
    assert [n for n, s in REGISTRY.items() if s.multi_label] == ["chestmnist"]
    assert get_spec("retinamnist").task == "ordinal-regression"
    assert get_spec("breastmnist").task == "binary-class"


def test_known_facts() -> None:
    derma = get_spec("dermamnist")
    assert derma.label_names[4] == "melanoma"
    assert derma.channels == 3 and derma.license == "CC BY-NC 4.0"
    assert derma.md5[28] == "0744692d530f8e62ec473284d019b0c7"
    assert derma.n_samples == {"train": 7007, "val": 1003, "test": 2005}
    assert get_spec("breastmnist").label_names == ("malignant", "normal, benign")
    assert get_spec("pneumoniamnist").label_names == ("normal", "pneumonia")
    assert get_spec("adrenalmnist3d").label_names == ("normal", "hyperplasia")
    # OrganMNIST3D numbers the organs differently from the 2D organ sets.
    assert get_spec("organmnist3d").label_names[0] == "liver"
    assert get_spec("organamnist").label_names[0] == "bladder"


def _md5sums(folder: Path) -> dict[str, str]:
    lines = (folder / "MD5SUMS").read_text().splitlines()
    return {fname: h for h, fname in (line.split() for line in lines if line.strip())}


def test_registry_md5s_match_the_local_md5sums(medmnist_dir: Path) -> None:
    sums = _md5sums(medmnist_dir)
    assert len(sums) == 5
    for fname, md5 in sums.items():
        m = re.match(r"^([a-z0-9]+?)(?:_(\d+))?\.npz$", fname)
        assert m is not None
        spec = get_spec(m.group(1))
        size = int(m.group(2) or 28)
        assert spec.filename(size) == fname
        assert spec.md5[size] == md5, fname


def test_local_files_are_byte_identical_to_the_release(medmnist_dir: Path) -> None:
    for fname, md5 in _md5sums(medmnist_dir).items():
        assert file_md5(medmnist_dir / fname) == md5, fname


def test_get_spec_is_case_insensitive_and_lists_known_names() -> None:
    assert get_spec(" BreastMNIST ").name == "breastmnist"
    with pytest.raises(MedganError, match=r"unknown dataset 'kneemnist' \(known: adrenalmnist3d, .*vesselmnist3d\)"):
        get_spec("kneemnist")


def test_check_size_lists_available_sizes() -> None:
    assert get_spec("breastmnist").check_size(224) == 224
    with pytest.raises(MedganError, match=r"adrenalmnist3d has no size 128 \(available: 28, 64\)"):
        get_spec("adrenalmnist3d").check_size(128)
