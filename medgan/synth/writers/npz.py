"""npz: the whole export as one prepared dataset (train split only), written when the export closes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medgan.errors import MedganError
from medgan.synth.writers.base import ExportInfo, FormatWriter, medgan_version

__all__ = ["NpzWriter"]


class NpzWriter(FormatWriter):
    """``dataset.npz`` + ``dataset.json``: batches are collected, since an npz cannot be appended to."""

    def __init__(self, out_dir: Path, info: ExportInfo) -> None:
        super().__init__(out_dir, info)
        self._images: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def write_batch(self, images: np.ndarray, labels: np.ndarray, seeds: list[int], indices: list[int]) -> list[str]:
        self._images.append(images.copy())  # the caller may reuse its batch buffer
        self._labels.append(labels)
        return ["dataset.npz"] * len(images)

    def close(self) -> list[str]:
        from medgan.data.dataset import DatasetInfo, save_prepared, to_channels_last

        if not self._images:
            raise MedganError("no samples to write", self.out_dir)
        info = self.info
        channels = int(self._images[0].shape[1])
        train = to_channels_last(np.concatenate(self._images))  # npz layout: (N, *spatial[, 3])
        labels = np.concatenate(self._labels)
        empty = np.zeros((0, *train.shape[1:]), dtype=np.uint8)
        sidecar = DatasetInfo(
            name=f"{info.dataset_name}_synthetic",
            class_names=list(info.class_names),
            channels=channels,
            spatial_dims=info.spatial_dims,
            size=list(train.shape[1:1 + info.spatial_dims]),
            source=f"synthetic:{info.checkpoint_sha256[:12]}",
            sha256="",
            preprocessing={
                "synthetic": True,
                "generator": f"medgan {medgan_version()}",
                "checkpoint_sha256": info.checkpoint_sha256,
                "trained_on": info.dataset_name,
            },
            spacing=list(info.spacing),
        )
        save_prepared(
            self.out_dir,
            {"train": train, "val": empty, "test": empty},
            {"train": labels, "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)},
            sidecar,
        )
        self._images.clear()
        self._labels.clear()
        return ["dataset.npz", "dataset.json"]
