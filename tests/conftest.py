"""Shared fixtures: seeded RNGs, an isolated MEDGAN_HOME, one torch thread, the real MedMNIST files when present,
and the toy-dataset builders (four on purpose: each makes the pixels its own tests depend on)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n auto` runs one worker per core: each keeps to one thread (set before torch is
    # imported; subprocesses inherit it), or the workers' OpenMP threads contend for the cores and
    # small convolutions run many times slower.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

from medgan.data.dataset import DatasetInfo, PreparedDataset, load_dataset, save_prepared

REPO = Path(__file__).resolve().parents[1]


def _medmnist_dir() -> Path | None:
    """The folder of real MedMNIST files: MEDGAN_MIRROR's first entry, else ../shared/data/medmnist."""
    for cand in [*os.environ.get("MEDGAN_MIRROR", "").split(os.pathsep), str(REPO.parent / "shared/data/medmnist")]:
        if cand and Path(cand, "breastmnist.npz").is_file():
            return Path(cand)
    return None


MEDMNIST_DIR = _medmnist_dir()


@pytest.fixture
def medmnist_dir() -> Path:
    """The real MedMNIST folder; the test is skipped when it is absent."""
    if MEDMNIST_DIR is None:
        pytest.skip("real MedMNIST files not present (../shared/data/medmnist)")
    return MEDMNIST_DIR


def real_npz(name: str) -> Path:
    """Path of one real MedMNIST file, or skip the calling test."""
    if MEDMNIST_DIR is None or not (MEDMNIST_DIR / name).is_file():
        pytest.skip(f"real MedMNIST file {name} not present")
    return MEDMNIST_DIR / name


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medgan_home")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, session_home: Path) -> None:
    """Seed every RNG and keep the cache out of the user's home; the mirror is left as CI set it."""
    monkeypatch.setenv("MEDGAN_HOME", str(session_home))
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread, then restore the count.

    The test machines share two cores, and OpenMP threads contending for them make small
    convolutions orders of magnitude slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a whole test module: ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    with one_torch_thread():
        yield


# Toy-dataset builders, built in the test and never committed. They are deliberately not merged:
# each makes different pixels, and the tests that use each one depend on them.


def make_banded_toy(root: Path, *, size: int = 16, spatial_dims: int = 2, n: int = 48, channels: int = 1,
                    num_classes: int = 2, seed: int = 0) -> Path:
    """A prepared dataset whose classes differ visibly: class k is bright in the k-th band."""
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims + ((3,) if channels == 3 else ())
    images, labels = {}, {}
    for split, count in (("train", n), ("val", n // 4), ("test", n // 4)):
        lab = np.arange(count) % num_classes
        img = rng.integers(0, 60, size=(count, *shape)).astype(np.uint8)
        band = max(size // num_classes, 1)
        for i, k in enumerate(lab):
            img[i, ..., k * band : (k + 1) * band] = 220 if channels == 1 else img[i, ..., k * band : (k + 1) * band]
        images[split], labels[split] = img, lab
    info = DatasetInfo(name="toy", class_names=[f"class{k}" for k in range(num_classes)], channels=channels,
                       spatial_dims=spatial_dims, size=[size] * spatial_dims, source="test", sha256="")
    out = root / f"toy{spatial_dims}d_{size}"
    save_prepared(out, images, labels, info)
    return out


def _dark_bright_images(n: int, label: int, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    base = 70 if label == 0 else 180
    return np.clip(rng.normal(base, 25, size=(n, *size)), 0, 255).astype(np.uint8)


def make_dark_bright_toy(folder: Path, size: tuple[int, ...] = (8, 8), n: tuple[int, int, int] = (40, 12, 12),
                         seed: int = 0) -> PreparedDataset:
    """``folder/dataset.npz`` + ``dataset.json``: classes ``dark`` and ``bright`` (noise images) in every split."""
    rng = np.random.default_rng(seed)
    images, labels = {}, {}
    for split, count in zip(("train", "val", "test"), n, strict=True):
        half = count // 2
        images[split] = np.concatenate([_dark_bright_images(half, 0, size, rng),
                                        _dark_bright_images(count - half, 1, size, rng)])
        labels[split] = np.array([0] * half + [1] * (count - half))
    info = DatasetInfo(name="toy", class_names=["dark", "bright"], channels=1, spatial_dims=len(size),
                       size=list(size), source="test", sha256="")
    save_prepared(folder, images, labels, info)
    return load_dataset(folder)


_DISC_TOY_CACHE: dict[str, Path] = {}


def make_disc_toy(root: Path, *, size: int = 16, counts: tuple[int, int] = (12, 36), seed: int = 0,
                  bright: int = 210) -> Path:
    """An imbalanced two-class prepared dataset: ``lesion`` (a bright disc, the minority) and ``normal``.

    The class signal survives flips and small rotations, so the classical arm stays learnable.
    Splits: train ``counts``, val 8 + 8, test 10 + 10. Cached per session.
    """
    key = f"data:{root}:{size}:{counts}:{seed}:{bright}"
    if key in _DISC_TOY_CACHE:
        return _DISC_TOY_CACHE[key]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 4) ** 2
    images, labels = {}, {}
    for split, (n0, n1) in (("train", counts), ("val", (8, 8)), ("test", (10, 10))):
        lab = np.array([0] * n0 + [1] * n1)
        img = rng.integers(0, 70, size=(len(lab), size, size)).astype(np.uint8)
        img[lab == 0] = np.where(disc, bright, img[lab == 0])
        images[split], labels[split] = img, lab
    info = DatasetInfo(name="toy", class_names=["lesion", "normal"], channels=1, spatial_dims=2,
                       size=[size, size], source="test", sha256="")
    out = root / f"toy_{size}_{seed}_{bright}"
    save_prepared(out, images, labels, info)
    _DISC_TOY_CACHE[key] = out
    return out


BREAST_LIKE_NAMES = ["malignant", "normal, benign"]
BREAST_LIKE_TRAIN_COUNTS = [12, 36]  # the toy's training split, imbalanced like BreastMNIST


def make_breast_like_toy(root: Path, name: str, seed: int) -> Path:
    """A 2D 16² banded toy with BreastMNIST's class names and a 12 : 36 training split."""
    src = load_dataset(make_banded_toy(root / f"src_{name}", seed=seed))
    labels = dict(src.labels)
    labels["train"] = np.repeat([0, 1], BREAST_LIKE_TRAIN_COUNTS)
    info = DatasetInfo(name=name, class_names=BREAST_LIKE_NAMES, channels=1, spatial_dims=2, size=[16, 16],
                       source="test", sha256="")
    save_prepared(root / name, src.images, labels, info)
    return root / name


SQUARE_EDGES = {0: 3, 1: 6}  # mask toy: class "small" is a 3x3 square, class "large" a 6x6 one


def square_mask(edge: int, offset: int, size: int = 16, speckle: int = 0) -> np.ndarray:
    """A binary ``size``² mask: an ``edge``-sided square at ``(offset, offset)``, plus ``speckle`` isolated
    pixels two apart along the last row (one connected piece each)."""
    img = np.zeros((size, size), np.uint8)
    img[offset:offset + edge, offset:offset + edge] = 255
    for k in range(speckle):
        img[size - 1, 2 * k] = 255
    return img


def make_square_masks(folder: Path, counts: tuple[int, int] = (20, 20), size: int = 16) -> PreparedDataset:
    """A prepared two-class mask dataset (``small`` / ``large`` squares, ``counts`` per class in every split,
    at offsets cycling through 1..8), in ``folder``."""
    images, labels = {}, {}
    for split in ("train", "val", "test"):
        lab = np.repeat([0, 1], counts)
        images[split] = np.stack([square_mask(SQUARE_EDGES[int(k)], 1 + i % 8, size) for i, k in enumerate(lab)])
        labels[split] = lab
    info = DatasetInfo(name="squares", class_names=["small", "large"], channels=1, spatial_dims=2,
                       size=[size, size], source="test", sha256="")
    save_prepared(folder, images, labels, info)
    return load_dataset(folder)
