"""Shared fixtures: seeded RNGs, an isolated MEDGAN_HOME, one torch thread, and the real MedMNIST files when present."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

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
