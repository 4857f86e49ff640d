"""Every ```python block of docs/api.md runs, in order, in one namespace, on a tiny BreastMNIST-like file.

The generator and DenseNet121 examples run in the default suite; the whole page, with the train / evaluate /
benchmark example (whose figures alone take tens of seconds of CPU), is marked slow
(tests/test_api.py covers those three functions in the default suite). The blocks refer to ``breastmnist.npz`` and ``runs/cgan_breastmnist`` in the working directory; the
fixture makes both (a 28² two-class file in the MedMNIST layout, and a GAN trained on it for two steps).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

DOC = REPO / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _breast_like_npz(path: Path, seed: int = 0) -> Path:
    """A MedMNIST-layout npz named like BreastMNIST (so its class names come from the registry): 28², 1 : 3."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 64), ("val", 16), ("test", 16)):
        labels = (np.arange(n) % 4 != 0).astype(np.uint8)  # malignant : normal/benign = 1 : 3
        images = rng.integers(0, 70, size=(n, 28, 28)).astype(np.uint8)
        for i, y in enumerate(labels):  # malignant bright on the left, normal/benign on the right
            images[i, :, :14] += 150 if y == 0 else 0
            images[i, :, 14:] += 150 if y == 1 else 0
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medgan.training.loop import train

    root = tmp_path_factory.mktemp("api_docs")
    data = _breast_like_npz(root / "breastmnist.npz")
    train(tiny_config(data, root / "runs" / "cgan_breastmnist", "steps=2"), progress=False)
    return root


def test_the_page_has_the_examples_it_promises() -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 3
    text = "\n".join(blocks)
    for needle in ("medgan.load_generator(", "medgan.SyntheticDataset(", "ConcatDataset", "DenseNet121",
                   "num_workers=2", "medgan.train(", "medgan.evaluate(", "medgan.benchmark("):
        assert needle in text, needle


def _run(blocks: list[str], namespace: dict[str, object]) -> None:
    for k, code in enumerate(blocks):
        exec(compile(code, f"docs/api.md block {k + 1}", "exec"), namespace)


def _is_long(block: str) -> bool:
    """The train / evaluate / benchmark example: tens of seconds of CPU, most of it their figures."""
    return any(call in block for call in ("medgan.train(", "medgan.evaluate(", "medgan.benchmark("))


def test_the_generator_and_densenet_examples_run(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {"__name__": "docs_api"}
    _run([b for b in BLOCK.findall(DOC.read_text()) if not _is_long(b)], namespace)
    # The DenseNet121 loop took its three steps on real + synthetic batches from two workers.
    assert namespace["step"] == 2 and np.isfinite(namespace["loss"].item())  # type: ignore[attr-defined]
    assert len(namespace["train_set"]) == 2 * 64  # type: ignore[arg-type]  # 64 real, ratio 1


@pytest.mark.slow
def test_every_python_block_of_docs_api_md_runs(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {"__name__": "docs_api"}
    _run(BLOCK.findall(DOC.read_text()), namespace)
    # What the blocks left behind: a trained classifier, a run, an evaluation, a benchmark report.
    assert namespace["step"] == 2 and np.isfinite(namespace["loss"].item())  # type: ignore[attr-defined]
    assert (workdir / "runs" / "quick" / "checkpoints").is_dir()
    assert (workdir / "eval_out" / "metrics.json").is_file()
    assert (workdir / "bench_out" / "report.md").is_file()
