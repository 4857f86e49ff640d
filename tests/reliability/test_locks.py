"""Concurrent runs (#15): one run at a time per output folder. A second run into a folder that a live run
holds is refused with one line naming that run's pid and host (exit 2), before it writes anything; a lock
left by a run that is gone is taken over with a note. The other run is this test process holding the
lock (:func:`medgan.utils.run_lock`), which is what a second ``medgan`` process would find."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from medgan.errors import MedganError
from medgan.utils import lock_holder, run_lock
from tests.reliability.runs import cli, hidden_siblings, one_line_error, tiny_run, tree_digest

pytestmark = pytest.mark.usefixtures("one_thread")

HOST = socket.gethostname()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_run(tmp_path_factory.mktemp("locks"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# Section. The lock itself.


def test_a_second_holder_is_refused_and_the_lock_goes_with_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with run_lock(out) as lock:
        assert lock == tmp_path / ".out.lock" and json.loads(lock.read_text())["pid"] == os.getpid()
        assert lock_holder(out)["pid"] == os.getpid()  # type: ignore[index]
        refused = pytest.raises(
            MedganError, match=rf"another medgan run is writing here \(pid {os.getpid()} on {HOST}"
        )
        with refused, run_lock(out):
            pytest.fail("two holders")
    assert list(tmp_path.iterdir()) == [] and lock_holder(out) is None


def test_a_lock_whose_run_is_gone_is_taken_over_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    dead = _dead_pid()
    (tmp_path / ".out.lock").write_text(json.dumps({"pid": dead, "host": HOST, "since": "yesterday"}))
    assert lock_holder(out) is None
    with run_lock(out):
        assert lock_holder(out)["pid"] == os.getpid()  # type: ignore[index]
    assert f"note: {out}: took over a stale lock of pid {dead} (no longer running)" in capsys.readouterr().err
    # The pid runs again, but as a newer process (its start time differs): stale too.
    (tmp_path / ".out.lock").write_text(json.dumps({"pid": os.getpid(), "host": HOST, "start": "1"}))
    with run_lock(out):
        pass
    assert "took over a stale lock" in capsys.readouterr().err


def test_a_lock_from_another_host_is_refused_with_its_path(tmp_path: Path) -> None:
    lock = tmp_path / ".out.lock"
    lock.write_text(json.dumps({"pid": 1, "host": "node-elsewhere", "since": "10:00"}))
    refused = pytest.raises(
        MedganError, match=r"pid 1 on node-elsewhere, since 10:00.*if that run is gone, delete"
    )
    with refused, run_lock(tmp_path / "out"):
        pytest.fail("taken")
    assert lock.is_file()


def test_missing_parents_are_made_and_removed_again(tmp_path: Path) -> None:
    with run_lock(tmp_path / "a" / "b" / "out"):
        assert (tmp_path / "a" / "b" / ".out.lock").is_file()
    assert list(tmp_path.iterdir()) == []


# Section. Every command that writes an --out.


def test_augment_into_a_folder_another_run_holds(toy: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "synth"
    with run_lock(out):
        line = one_line_error(
            *cli(
                "augment",
                "--checkpoint",
                toy[0],
                "--class",
                "all",
                "--n",
                4,
                "--device",
                "cpu",
                "--no-progress",
                "--out",
                out,
            )
        )
        assert f"another medgan run is writing here (pid {os.getpid()} on {HOST}" in line
        assert not out.exists() and hidden_siblings(out) == [".synth.lock"]  # only the holder's lock


def test_preprocess_into_a_folder_another_run_holds(tmp_path: Path) -> None:
    from tests.data.helpers import make_png_tree

    make_png_tree(tmp_path / "scans", per_class=3)
    out = tmp_path / "prepared"
    with run_lock(out):
        line = one_line_error(
            *cli("preprocess", tmp_path / "scans", "--out", out, "--size", 8, "--no-progress")
        )
        assert f"(pid {os.getpid()} on {HOST}" in line and not out.exists()


def test_train_into_a_run_folder_another_run_holds(toy: tuple[Path, Path], tmp_path: Path) -> None:
    from medgan.configio import save_config
    from tests.training.helpers import tiny_config

    run = Path(shutil.copytree(toy[0], tmp_path / "run"))
    before = tree_digest(run)
    config = tmp_path / "tiny.yaml"
    save_config(tiny_config(toy[1], run, "steps=4"), config)
    with run_lock(run):
        for args in ((config, "--overwrite"), ("--resume", run)):  # a second training, or a resume, meanwhile
            line = one_line_error(*cli("train", *args, "--no-progress"))
            assert f"error: {run}: another medgan run is writing here (pid {os.getpid()}" in line
    assert tree_digest(run) == before


def test_benchmarks_into_one_folder(tmp_path: Path) -> None:
    from tests.benchmark.helpers import bench_config, gan_config
    from tests.conftest import make_disc_toy

    data = make_disc_toy(tmp_path / "data")
    config = bench_config(tmp_path / "bench.yaml", data, gan_config(tmp_path, data))
    out = tmp_path / "bench"
    with run_lock(out):  # a whole benchmark runs: neither a second one nor a job of an array may start
        for extra in ((), ("--only", "real:0")):
            line = one_line_error(*cli("benchmark", config, "--out", out, "--no-progress", *extra))
            assert f"(pid {os.getpid()} on {HOST}" in line
    with run_lock(out / "runs.real__seed0"):  # a job of an array runs: a whole benchmark may not start
        line = one_line_error(*cli("benchmark", config, "--out", out, "--no-progress"))
        assert "jobs of an array are running in this folder" in line
    assert not out.exists()
