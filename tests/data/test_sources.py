"""medgan.data.sources: class folders (series and single files) and CSV manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from medgan.data.sources import Source, class_names_of, find_sources, read_manifest
from medgan.errors import MedganError
from tests.data.helpers import CT, make_png_tree, write_series


def test_series_and_single_files_in_class_folders(tmp_path: Path) -> None:
    write_series(tmp_path / "src" / "a" / "patient1" / "ct", 3, "p1")
    (tmp_path / "src" / "a" / "xray").mkdir()
    (tmp_path / "src" / "a" / "xray" / "only.dcm").write_bytes(CT.read_bytes())  # one file: not a series
    (tmp_path / "src" / "a" / "direct.dcm").write_bytes(CT.read_bytes())
    (tmp_path / "src" / "a" / "README.txt").write_text("ignored")
    (tmp_path / "src" / ".hidden").mkdir()
    found = find_sources(tmp_path / "src")
    rel = sorted(str(s.path.relative_to(tmp_path / "src")) for s in found)
    assert rel == ["a/direct.dcm", "a/patient1/ct", "a/xray/only.dcm"]
    assert {s.label for s in found} == {"a"}


def test_manifest_paths_start_at_src_when_given(tmp_path: Path) -> None:
    make_png_tree(tmp_path / "images", per_class=1)
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,label,patient_id\nbenign/img00.png,b,P1\nmalignant/img00.png,m,\n")
    found = find_sources(tmp_path / "images", manifest)
    assert [s.path for s in found] == [tmp_path / "images/benign/img00.png", tmp_path / "images/malignant/img00.png"]
    assert [s.patient_id for s in found] == ["P1", None] and [s.split for s in found] == [None, None]
    with pytest.raises(MedganError, match=r"m\.csv: line 2: benign/img00\.png does not exist"):
        find_sources(None, manifest)


def test_manifest_errors(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    bad = tmp_path / "m.csv"
    bad.write_text("path,label\nx.png,\n")
    with pytest.raises(MedganError, match="line 2: empty 'label'"):
        read_manifest(bad)
    bad.write_text("path,label,split\nx.png,a,holdout\n")
    with pytest.raises(MedganError, match="line 2: split 'holdout' is not one of train, val, test"):
        read_manifest(bad)
    bad.write_text("file,label\nx.png,a\n")
    with pytest.raises(MedganError, match="no 'path' column"):
        read_manifest(bad)


def test_class_names_sort_numbers_by_value() -> None:
    labels = ["10", "2", "b", "a", "2"]
    assert class_names_of([Source(Path(f"{i}.png"), lab) for i, lab in enumerate(labels)]) == ["2", "10", "a", "b"]
