"""medgan.pipeline.labels: matching a labels CSV to the files of a source folder, and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgan.errors import MedganError
from medgan.pipeline.labels import resolve_sources, write_manifest
from tests.data.helpers import make_png_tree, write_series
from tests.pipeline.helpers import make_hospital, tiny_images


def _csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_ids_match_by_stem_name_relative_path_and_series_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_png_tree(src / "flat", per_class=2, classes=("a", "b"))
    write_series(src / "ct" / "S1", 3, patient="P9")
    write_series(src / "ct" / "S2", 3, patient="P8")
    labels = _csv(
        tmp_path / "labels.csv",
        "id,label,patient_id",
        "flat/a/img00.png,healthy,P1",  # relative path
        "IMG01,healthy,P1",  # stem, case ignored: flat/?/img01 is ambiguous -> see below
        "S1,tumour,P9",  # a DICOM series folder by name
        "ct/S2,tumour,P8",
    )
    with pytest.raises(MedganError, match="'IMG01' matches 2 inputs"):
        resolve_sources(src, labels)
    labels = _csv(
        tmp_path / "labels.csv",
        "id,label,patient_id",
        "flat/a/img00.png,healthy,P1",
        "flat/b/img01,healthy,P2",
        "S1,tumour,P9",
        "ct/S2,tumour,P8",
    )
    run = resolve_sources(src, labels)
    by_path = {s.path.relative_to(src).as_posix(): s for s in run.sources}
    assert set(by_path) == {"flat/a/img00.png", "flat/b/img01.png", "ct/S1", "ct/S2"}
    assert by_path["ct/S1"].label == "tumour" and by_path["ct/S1"].patient_id == "P9"
    assert run.class_names == ["healthy", "tumour"] and run.labels_from == "labels.csv"
    assert run.unlabelled == 2  # flat/a/img01.png and flat/b/img00.png are not named


def test_csv_without_labels_takes_classes_from_folders(tmp_path: Path) -> None:
    x, y = tiny_images(per_class=4)
    paths = make_hospital(tmp_path, x, y, ["lesion", "normal"])
    labels = _csv(
        tmp_path / "patients.csv",
        "file,patient",
        *(f"{p.name},{p.stem.split('_')[0]}" for p in sorted(paths["dicom"].rglob("*.dcm"))),
    )
    run = resolve_sources(paths["dicom"], labels)
    assert run.class_names == ["lesion", "normal"] and run.labels_from == "folders + labels.csv"
    assert {s.patient_id for s in run.sources if s.label == "lesion"} == {"P0000", "P0001"}


def test_refusals_are_one_line_errors(tmp_path: Path) -> None:
    x, y = tiny_images(per_class=4)
    paths = make_hospital(tmp_path, x, y, ["lesion", "normal"])
    png, csv_path = paths["png"], paths["labels"]
    with pytest.raises(MedganError, match=r"none of the 2 ids matches an image below .* \(first id 'nope1'"):
        resolve_sources(png, _csv(tmp_path / "bad.csv", "id,label", "nope1,a", "nope2,b"))
    with pytest.raises(MedganError, match=r"1 of 3 ids match no image .*'ghost' on line 4"):
        resolve_sources(png, _csv(tmp_path / "bad.csv", "id,label", "img0000,a", "img0001,b", "ghost,b"))
    with pytest.raises(MedganError, match="found one class only \\('a'"):
        resolve_sources(png, _csv(tmp_path / "one.csv", "id,label", "img0000,a", "img0001,a"))
    with pytest.raises(MedganError, match="names the same input as line 2"):
        resolve_sources(png, _csv(tmp_path / "dup.csv", "id,label", "img0000,a", "img0000.png,b"))
    with pytest.raises(MedganError, match="no id column"):
        resolve_sources(png, _csv(tmp_path / "noid.csv", "name,label", "img0000,a"))
    with pytest.raises(MedganError, match="no such folder"):
        resolve_sources(tmp_path / "missing", csv_path)
    with pytest.raises(MedganError, match="--target-class: unknown class 'cat'"):
        resolve_sources(png, csv_path, target_class="cat")
    only_one = tmp_path / "one_class"
    make_png_tree(only_one, per_class=2, classes=("a",))
    with pytest.raises(MedganError, match="found one class only"):
        resolve_sources(only_one)


def test_target_defaults_to_the_smallest_class_and_fingerprint_follows_the_files(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "src", per_class=3, classes=("big", "small"))
    (tmp_path / "src" / "small" / "img02.png").unlink()
    run = resolve_sources(tmp_path / "src")
    assert run.class_names[run.target] == "small"
    assert resolve_sources(tmp_path / "src", target_class="big").target == 0
    assert resolve_sources(tmp_path / "src").fingerprint == run.fingerprint
    img = tmp_path / "src" / "big" / "img00.png"
    img.write_bytes(img.read_bytes() + b"\0")  # one byte more: the prepared data is out of date
    assert resolve_sources(tmp_path / "src").fingerprint != run.fingerprint


def test_manifest_is_readable_by_preprocess(tmp_path: Path) -> None:
    from medgan.data.sources import read_manifest

    x, y = tiny_images(per_class=4)
    paths = make_hospital(tmp_path, x, y, ["lesion", "normal"])
    run = resolve_sources(paths["png"], paths["labels"])
    write_manifest(run.sources, tmp_path / "m.csv")
    again = read_manifest(tmp_path / "m.csv")
    assert [(s.path, s.label, s.patient_id) for s in again] == [
        (s.path.resolve(), s.label, s.patient_id) for s in run.sources
    ]
    assert np.unique([s.patient_id for s in again]).size == 4
