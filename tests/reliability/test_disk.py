"""Disk space and full disks (#15): an output that cannot fit is refused before any work, with the figures;
``evaluate --n`` is bounded by memory; a disk that fills during a write ends in one line, exit 2, no
partial output and the previous ``--out`` intact. The full disk is a monkeypatched write everywhere, and a
real 1 MiB tmpfs where this process may mount one (root), skipped cleanly otherwise."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from medgan.errors import MedganError
from medgan.utils import check_free_space, check_memory, format_bytes
from tests.reliability.runs import cli, hidden_siblings, one_line_error, tiny_run, tree_digest

pytestmark = pytest.mark.usefixtures("one_thread")

_Usage = namedtuple("_Usage", "total used free")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_run(tmp_path_factory.mktemp("disk"))


def _augment(run: Path, out: Path, *extra: object) -> tuple[int, str, str]:
    return cli(
        "augment",
        "--checkpoint",
        run,
        "--class",
        "all",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        out,
        *extra,
    )


def _free(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _Usage(10**12, 10**12 - free, free))


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# Section. Refused before any work.


def test_the_space_check_and_its_wording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert format_bytes(784 * 10**12) == "784.0 TB" and format_bytes(512) == "512 B"
    _free(monkeypatch, 5 * 10**9)
    check_free_space(tmp_path / "new" / "deeper", 10**9)  # the nearest existing folder's file system
    with pytest.raises(MedganError, match=r"needs about 5\.0 GB, 5\.0 GB free on the file system of"):
        check_free_space(tmp_path / "out", 5 * 10**9)  # no room for the margin
    with pytest.raises(MedganError, match="of memory"):
        check_memory(10**18, "a test")


def test_augment_with_an_absurd_n_is_refused_before_writing(toy: tuple[Path, Path], tmp_path: Path) -> None:
    # The defect of #15: --n 10**12 started writing, and had 32,768 PNGs when it was killed.
    out = tmp_path / "synth"
    line = one_line_error(*_augment(toy[0], out, "--n", 10**12))
    assert (
        f"error: {out}: 2000000000000 png samples needs about" in line
        and " PB, " in line
        and " free " in line
    )
    assert not out.exists() and hidden_siblings(out) == [] and list(tmp_path.iterdir()) == []


def test_augment_refused_when_the_disk_has_too_little_room(
    toy: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _free(monkeypatch, 10 * 2**20)  # 10 MiB: less than the reserve that is always kept free
    line = one_line_error(*_augment(toy[0], tmp_path / "synth", "--n", 5))
    assert "needs about" in line and "10.5 MB free" in line
    assert list(tmp_path.iterdir()) == []


def test_preprocess_and_benchmark_are_refused_when_they_cannot_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.benchmark.helpers import bench_config, gan_config
    from tests.conftest import make_disc_toy
    from tests.data.helpers import make_png_tree

    make_png_tree(tmp_path / "scans", per_class=3)
    data = make_disc_toy(tmp_path / "data")
    config = bench_config(tmp_path / "bench.yaml", data, gan_config(tmp_path, data))
    _free(monkeypatch, 2**20)
    line = one_line_error(
        *cli("preprocess", tmp_path / "scans", "--out", tmp_path / "prepared", "--no-progress")
    )
    assert "a prepared dataset of 6 sources needs about" in line and "1.0 MB free" in line
    line = one_line_error(*cli("benchmark", config, "--out", tmp_path / "bench", "--no-progress"))
    assert "the benchmark needs about" in line and "1.0 MB free" in line
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "bench").exists()
    assert hidden_siblings(tmp_path / "prepared") == [] and hidden_siblings(tmp_path / "bench") == []


def test_evaluate_with_an_absurd_n_is_refused_by_memory(toy: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = toy
    out = tmp_path / "eval"
    line = one_line_error(*cli("evaluate", "--real", data, "--synthetic", run, "--n", 10**12, "--out", out))
    assert "--n 1000000000000 synthetic images per class needs about" in line and "of memory" in line
    assert "lower --n" in line and not out.exists()


# Section. The disk fills up during the write (a monkeypatched write: runs everywhere).


def test_preprocess_disk_full_keeps_the_previous_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan.data.dataset as dataset
    from tests.data.helpers import make_png_tree

    make_png_tree(tmp_path / "scans", per_class=3)
    out = tmp_path / "prepared"
    assert cli("preprocess", tmp_path / "scans", "--out", out, "--size", 8, "--no-progress")[0] == 0
    before = tree_digest(out)

    def half_written(path: Path, arrays: object) -> None:
        Path(path).write_bytes(b"PK half a zip")
        _no_space()

    monkeypatch.setattr(dataset, "savez_deterministic", half_written)
    line = one_line_error(
        *cli("preprocess", tmp_path / "scans", "--out", out, "--size", 16, "--overwrite", "--no-progress")
    )
    assert line == (
        f"error: {out}: could not write: No space left on device; the partial output was removed; "
        "the previous content is unchanged; free some space or choose another --out"
    )
    assert tree_digest(out) == before and hidden_siblings(out) == []


def test_train_disk_full_while_checkpointing_is_one_line(
    toy: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from medgan.configio import save_config
    from tests.training.helpers import tiny_config

    config = tmp_path / "tiny.yaml"
    save_config(tiny_config(toy[1], tmp_path / "run", "steps=2"), config)
    monkeypatch.setattr(torch, "save", _no_space)
    line = one_line_error(*cli("train", config, "--no-progress"))
    assert "could not write: No space left on device; the partial output was removed" in line
    checkpoints = tmp_path / "run" / "checkpoints"
    assert list(checkpoints.iterdir()) == []  # no temporary checkpoint file left behind
    assert hidden_siblings(tmp_path / "run") == []  # and no lock


# Section. A real full disk: a 1 MiB tmpfs (root only; skipped where mounting is not allowed).


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_augment_on_a_full_tmpfs_keeps_the_previous_export(
    toy: tuple[Path, Path], small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan.synth.write as write

    out = small_disk / "synth"
    out.mkdir()
    (out / "earlier.txt").write_text("an earlier export")
    monkeypatch.setattr(
        write, "check_free_space", lambda *a, **k: None
    )  # let the write itself meet the full disk
    line = one_line_error(*_augment(toy[0], out, "--n", 400, "--overwrite"))  # 800 files of 4 KiB: > 1 MiB
    assert line.startswith(
        f"error: {out}: could not write: No space left on device; the partial output was removed"
    )
    assert [p.name for p in small_disk.iterdir()] == ["synth"]  # no temporary folder, no lock
    assert [p.name for p in out.iterdir()] == ["earlier.txt"] and (
        out / "earlier.txt"
    ).read_text() == "an earlier export"
    assert shutil.disk_usage(small_disk).used < 64 * 1024  # the partial samples are gone
