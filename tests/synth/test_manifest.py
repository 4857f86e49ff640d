"""Tests for medgan.synth.manifest: manifest.csv rows for every format, and provenance.json."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import medgan
from medgan.synth.export import SampleWriter
from medgan.synth.manifest import ManifestRow, manifest_rows, write_manifest, write_provenance
from tests.synth.helpers import NAMES, SHA, _images, _write


def test_manifest_rows_for_each_format(tmp_path: Path) -> None:
    images, labels = _images((3, 1, 4, 4)), [1, 0, 1]
    with SampleWriter(tmp_path / "png", fmt="png", class_names=NAMES, spatial_dims=2,
                      checkpoint_sha256=SHA, dataset_name="x") as w:
        w.write(images, labels, seeds=[5, 5, 6], indices=[10, 11, 12])
    path = write_manifest(tmp_path / "png", w.manifest)
    assert path == tmp_path / "png" / "manifest.csv"
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["file", "class_name", "class_index", "seed", "sample_index"],
        ["malignant_tumour/malignant_tumour_5_000010.png", "Malignant tumour", "1", "5", "10"],
        ["benign/benign_5_000011.png", "benign", "0", "5", "11"],
        ["malignant_tumour/malignant_tumour_6_000012.png", "Malignant tumour", "1", "6", "12"],
    ]
    for row in rows[1:]:
        assert (tmp_path / "png" / row[0]).is_file()

    files = _write(tmp_path / "npz", images, labels, "npz", seed=3)
    assert manifest_rows(files, labels, NAMES, 3, [0, 1, 2]) == [
        ManifestRow("dataset.npz", "Malignant tumour", 1, 3, 0),
        ManifestRow("dataset.npz", "benign", 0, 3, 1),
        ManifestRow("dataset.npz", "Malignant tumour", 1, 3, 2),
    ]
    files = _write(tmp_path / "dcm3", _images((1, 1, 2, 4, 4)), [0], "dicom")
    write_manifest(tmp_path / "dcm3", manifest_rows(files, [0], NAMES, 7, [0]))
    line = (tmp_path / "dcm3" / "manifest.csv").read_text().splitlines()[1]
    assert line == "benign/benign_7_000000.dcm,benign,0,7,0"
    assert (tmp_path / "dcm3" / "benign/benign_7_000000.dcm").is_file()  # one multi-frame file per volume


def test_provenance(tmp_path: Path) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    path = write_provenance(
        tmp_path, checkpoint_sha256=SHA, config={"lr": 0.0002, "data": "breastmnist"},
        dataset_sha256="ab" * 32, arguments={"n": 10, "out": tmp_path / "x", "format": "png"},
        extra={"counts": [4, 6]},
    )
    record = json.loads(path.read_text())
    assert path.name == "provenance.json"
    assert record["synthetic"] is True
    assert record["checkpoint_sha256"] == SHA
    assert record["dataset_sha256"] == "ab" * 32
    assert record["config"] == {"lr": 0.0002, "data": "breastmnist"}
    assert record["arguments"] == {"n": 10, "out": str(tmp_path / "x"), "format": "png"}
    assert record["medgan_version"] == medgan.__version__
    assert record["counts"] == [4, 6]
    created = datetime.fromisoformat(record["created_utc"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
    assert before <= created <= datetime.now(timezone.utc)
