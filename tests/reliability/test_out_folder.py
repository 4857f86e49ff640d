"""An ``--out`` that cannot be a folder here (#15): an existing file, a path below a file, a read-only
folder. Each is one ``error:`` line and exit 2, before any work, and the file stays as it was. The
read-only case is a read-only tmpfs for root (who may write anywhere else) or a chmod-ed folder."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from medgan.configio import save_config
from tests.reliability.runs import cli, one_line_error, tiny_run
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_run(tmp_path_factory.mktemp("out_folder"))


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: a read-only tmpfs when root, else a folder without write permission."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"root, and no read-only tmpfs can be mounted here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _train(toy: tuple[Path, Path], tmp_path: Path, out: Path) -> tuple[int, str, str]:
    config = tmp_path / "tiny.yaml"
    save_config(tiny_config(toy[1], tmp_path / "unused", "steps=1"), config)
    return cli("train", config, "--out", out, "--no-progress")


def _benchmark(tmp_path: Path, out: Path) -> tuple[int, str, str]:
    from tests.benchmark.helpers import bench_config, gan_config
    from tests.conftest import make_disc_toy

    data = make_disc_toy(tmp_path / "data")
    return cli(
        "benchmark",
        bench_config(tmp_path / "bench.yaml", data, gan_config(tmp_path, data)),
        "--out",
        out,
        "--no-progress",
    )


def test_train_out_is_an_existing_file(toy: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    line = one_line_error(*_train(toy, tmp_path, out))
    assert line == f"error: {out}: exists and is not a folder (give --out a folder)"
    assert out.read_text() == "mine"


def test_train_out_below_a_file(toy: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / "run"
    line = one_line_error(*_train(toy, tmp_path, out))
    assert line == f"error: {out}: cannot make a folder here: {tmp_path / 'notes.txt'} is a file"


def test_train_out_in_a_read_only_folder(toy: tuple[Path, Path], tmp_path: Path, read_only: Path) -> None:
    out = read_only / "run"
    line = one_line_error(*_train(toy, tmp_path, out))
    assert line == f"error: {out}: cannot write in {read_only} (read-only, or no permission)"


def test_benchmark_out_is_a_file_below_a_file_or_read_only(tmp_path: Path, read_only: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    for out, why in (
        (tmp_path / "notes.txt", "exists and is not a folder"),
        (tmp_path / "notes.txt" / "bench", "is a file"),
        (read_only / "bench", "(read-only, or no permission)"),
    ):
        line = one_line_error(*_benchmark(tmp_path, out))
        assert line.startswith(f"error: {out}: ") and why in line, line
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_augment_and_evaluate_out_below_a_file(toy: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = toy
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / "x"
    for args in (
        ("augment", "--checkpoint", run, "--class", "all", "--n", 2, "--device", "cpu", "--no-progress"),
        ("evaluate", "--real", data, "--synthetic", run, "--n", 4),
    ):
        line = one_line_error(*cli(*args, "--out", out))
        assert line == f"error: {out}: cannot make a folder here: {tmp_path / 'notes.txt'} is a file", line
