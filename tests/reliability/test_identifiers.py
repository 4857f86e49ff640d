"""Identifiers outside the synthetic output (#15): plant a patient's ID, name and a folder name in the
source DICOMs, run ``preprocess --pseudonymise`` -> ``train`` -> ``augment`` (every format) through
the real CLI, and search every byte that medgan wrote, decompressed where a file is compressed, for
the planted strings."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import pydicom
import pytest
import yaml
from PIL import Image as PILImage
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.data.pseudonym import Pseudonymiser
from medgan.errors import MedganError
from tests.data.helpers import CT, read_sources

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()

# What a hospital export carries: an ID, a name (in several spellings), and a folder named after the patient.
PLANTED = ["MRN-4711", "HOSPNAME", "JANEDOE", "Doe^Jane", "doe_jane_ward7"]
FOLDER = "doe_jane_ward7 export"


def _cli(*args: str | Path) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def _plant(root: Path) -> Path:
    """``root/<FOLDER>/<class>/<name>.dcm``: 4 patients per class, 2 images each, every one carrying
    the planted identifiers in its header and its file name."""
    src = root / FOLDER
    for c, cls in enumerate(("benign", "malignant")):
        (src / cls).mkdir(parents=True)
        for p in range(4):
            for k in range(2):
                ds = pydicom.dcmread(CT)
                ds.PatientID = f"MRN-4711-{c}{p}"
                ds.PatientName = f"Doe^Jane{c}{p}"
                ds.OtherPatientNames = "JANEDOE"
                ds.InstitutionName = "HOSPNAME General"
                ds.save_as(src / cls / f"JANEDOE_{c}{p}_{k}.dcm")
    return src


def _texts(path: Path) -> list[bytes]:
    """The file's bytes, and the decompressed bytes of every member of a zip (npz, torch checkpoint),
    of a gzip (``.nii.gz``) and of the text chunks of a PNG."""
    raw = path.read_bytes()
    out = [raw]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            out += [zf.read(name) for name in zf.namelist()] + [name.encode() for name in zf.namelist()]
    if raw[:2] == b"\x1f\x8b":
        out.append(gzip.decompress(raw))
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        with PILImage.open(path) as im:
            out += [f"{k}={v}".encode() for k, v in getattr(im, "text", {}).items()]
    return out


def _leaks(folder: Path) -> list[str]:
    """``path: planted string`` for every planted string found in any file (or file name) under ``folder``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            found += [f"{name}: {s}" for s in PLANTED if s.lower().encode() in name.lower().encode()]
        for name in filenames:
            path = Path(dirpath) / name
            for blob in _texts(path):
                low = blob.lower()
                found += [f"{path.relative_to(folder)}: {s}" for s in PLANTED if s.lower().encode() in low]
    return sorted(set(found))


def _train_config(tmp_path: Path, data: Path) -> Path:
    cfg = {
        "data": str(data),
        "out": str(tmp_path / "run"),
        "steps": 2,
        "batch_size": 4,
        "log_every": 1,
        "sample_every": 2,
        "checkpoint_every": 100,
        "device": "cpu",
        "model": {"g_channels": 8, "d_channels": 8, "g_max_channels": 16, "d_max_channels": 16, "z_dim": 16},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_no_planted_identifier_reaches_anything_medgan_writes(tmp_path: Path) -> None:
    src = _plant(tmp_path)
    key = tmp_path / "secret" / "pseudonyms.key"
    prepared = tmp_path / "prepared"
    _cli(
        "preprocess",
        src,
        "--out",
        prepared,
        "--size",
        16,
        "--pseudonymise",
        "--pseudonym-key",
        key,
        "--no-progress",
    )
    _cli("train", _train_config(tmp_path, prepared), "--no-progress")
    outputs = [prepared, tmp_path / "run"]
    for fmt in ("png", "npz", "nifti", "dicom"):
        out = tmp_path / f"synthetic_{fmt}"
        _cli(
            "augment",
            "--checkpoint",
            tmp_path / "run",
            "--class",
            "all",
            "--n",
            2,
            "--format",
            fmt,
            "--out",
            out,
            "--no-progress",
        )
        assert (out / "manifest.csv").is_file() and (out / "provenance.json").is_file()
        outputs.append(out)

    for folder in outputs:
        assert _leaks(folder) == [], folder
    # Patients are still grouped (one split each), under pseudonyms the key file reproduces.
    rows = read_sources(prepared)
    pseud = Pseudonymiser.from_key_file(key)
    assert {r["patient_id"] for r in rows} == {
        pseud.patient(f"MRN-4711-{c}{p}") for c in range(2) for p in range(4)
    }
    assert all(r["source"].startswith("S-") for r in rows)
    for patient in {r["patient_id"] for r in rows}:
        assert len({r["split"] for r in rows if r["patient_id"] == patient}) == 1
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_without_pseudonymise_the_identifiers_are_where_the_docs_say(tmp_path: Path) -> None:
    # The control: the same search finds the IDs in sources.csv and the source path in dataset.json,
    # and so would find a leak above.
    src = _plant(tmp_path)
    prepared = tmp_path / "prepared"
    _cli("preprocess", src, "--out", prepared, "--size", 16, "--no-progress")
    leaks = _leaks(prepared)
    assert "sources.csv: MRN-4711" in leaks and "sources.csv: JANEDOE" in leaks
    assert "dataset.json: doe_jane_ward7" in leaks
    assert not any("HOSPNAME" in leak or "Doe^Jane" in leak for leak in leaks)  # never read at all


def test_pseudonyms_are_keyed_and_stable(tmp_path: Path) -> None:
    key = tmp_path / "k"
    first, again = Pseudonymiser.from_key_file(key), Pseudonymiser.from_key_file(key)
    assert first.patient("MRN-4711") == again.patient("MRN-4711")
    assert first.patient("MRN-4711") != Pseudonymiser().patient("MRN-4711")  # another key, another pseudonym
    assert first.patient("MRN-4711") != first.source("MRN-4711")
    key.write_text("not hex\n")
    with pytest.raises(MedganError, match="not a medgan pseudonym key file"):
        Pseudonymiser.from_key_file(key)


def test_pseudonym_key_inside_out_is_refused(tmp_path: Path) -> None:
    src = _plant(tmp_path)
    out = tmp_path / "prepared"
    result = runner.invoke(
        app,
        [
            "preprocess",
            str(src),
            "--out",
            str(out),
            "--pseudonymise",
            "--pseudonym-key",
            str(out / "key"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--pseudonym-key must not lie in --out" in lines[0]
    assert not out.exists()
