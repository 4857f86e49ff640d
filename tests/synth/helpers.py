"""Shared by the export tests: a fake checkpoint hash, class names, random images, one-call export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medgan.synth.export import write_samples

SHA = "3f" * 32
NAMES = ["benign", "Malignant tumour"]
SLUGS = ["benign", "malignant_tumour"]


def _images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _write(out: Path, images: np.ndarray, labels: list[int], fmt: str, spacing: list[float] | None = None,
           seed: int = 7) -> list[str]:
    return write_samples(
        out, images, labels, fmt=fmt, class_names=NAMES, seeds=seed, indices=np.arange(len(images)),  # type: ignore[arg-type]
        spatial_dims=images.ndim - 2, spacing=spacing, checkpoint_sha256=SHA, dataset_name="breastmnist",
    )
