"""What sits beside the samples of an export: ``manifest.csv`` (one row per sample) and ``provenance.json``.

The manifest says where every sample is, its class, and how to regenerate it (seed and sample
index); the provenance says what made the samples, and when.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from medgan.errors import MedganError
from medgan.synth.writers.base import medgan_version
from medgan.utils import atomic_file, write_text_atomic

__all__ = [
    "MANIFEST_NAME",
    "PROVENANCE_NAME",
    "ManifestRow",
    "manifest_rows",
    "read_manifest",
    "write_manifest",
    "write_provenance",
]

MANIFEST_NAME = "manifest.csv"
PROVENANCE_NAME = "provenance.json"
MANIFEST_COLUMNS = ("file", "class_name", "class_index", "seed", "sample_index")


@dataclass(frozen=True)
class ManifestRow:
    """One line of ``manifest.csv``: where a sample is, its class, and how to regenerate it."""

    file: str
    class_name: str
    class_index: int
    seed: int
    sample_index: int
    source: str = ""
    """For a translated image, the image it was made from: ``<dataset>:<split>:<index>``, or the
    input file's path relative to the input folder (``medgan translate``, augment with a translator)."""


def manifest_rows(
    files: Sequence[str],
    labels: np.ndarray | Sequence[int],
    class_names: Sequence[str],
    seeds: np.ndarray | Sequence[int] | int,
    indices: np.ndarray | Sequence[int],
) -> list[ManifestRow]:
    """Manifest rows from what :func:`medgan.synth.export.write_samples` returned and the arrays it was given."""
    n = len(files)
    labels_ = np.asarray(labels, dtype=np.int64).reshape(-1)
    seeds_ = np.broadcast_to(np.asarray(seeds, dtype=np.int64), (n,))
    indices_ = np.asarray(indices, dtype=np.int64).reshape(-1)
    if not len(labels_) == len(indices_) == n:
        raise ValueError(f"{n} files but {len(labels_)} labels and {len(indices_)} indices")
    return [
        ManifestRow(f, str(class_names[int(lab)]), int(lab), int(s), int(i))
        for f, lab, s, i in zip(files, labels_, seeds_, indices_, strict=True)
    ]


def write_manifest(out_dir: str | Path, rows: Iterable[ManifestRow]) -> Path:
    """Write ``manifest.csv``: ``file,class_name,class_index,seed,sample_index``, one row per sample.

    For npz every row names ``dataset.npz``, in the order of ``train_images``.
    """
    path = Path(out_dir) / MANIFEST_NAME
    rows = list(rows)
    translated = any(r.source for r in rows)  # a translated export adds a source column
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow((*MANIFEST_COLUMNS, "source") if translated else MANIFEST_COLUMNS)
        out.writerows((r.file, r.class_name, r.class_index, r.seed, r.sample_index, *((r.source,) if translated else ()))
                      for r in rows)
    return path


def read_manifest(out_dir: str | Path) -> list[ManifestRow]:
    """The rows of an export's ``manifest.csv``, in file order.

    Raises:
        MedganError: no manifest, missing columns, or a row whose numbers are not integers.
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise MedganError(f"no {MANIFEST_NAME}: not a folder that medgan augment wrote", Path(out_dir))
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise MedganError(f"manifest lacks column(s) {', '.join(missing)}", path)
        for line, rec in enumerate(reader, start=2):
            try:
                numbers = int(rec["class_index"]), int(rec["seed"]), int(rec["sample_index"])
            except (TypeError, ValueError):
                raise MedganError(f"line {line}: class_index, seed and sample_index must be integers",
                                  path) from None
            rows.append(ManifestRow(rec["file"], rec["class_name"], *numbers, rec.get("source") or ""))
    return rows


def write_provenance(
    out_dir: str | Path,
    *,
    checkpoint_sha256: str,
    config: dict[str, Any],
    dataset_sha256: str | None,
    arguments: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``provenance.json``: what made these samples, and when.

    Args:
        out_dir: the output folder.
        checkpoint_sha256: hex sha256 of the checkpoint.
        config: the training config stored in the checkpoint, as given.
        dataset_sha256: sha256 of the training npz (None when unknown).
        arguments: the ``medgan augment`` arguments, as given (paths become strings).
        extra: anything else to record (counts per class, format, ...).
    """
    record = {
        "synthetic": True,
        "generator": "medgan",
        "medgan_version": medgan_version(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint_sha256": checkpoint_sha256,
        "dataset_sha256": dataset_sha256,
        "config": config,
        "arguments": arguments,
        **(extra or {}),
    }
    path = Path(out_dir) / PROVENANCE_NAME
    write_text_atomic(path, json.dumps(record, indent=2, default=str) + "\n")
    return path
