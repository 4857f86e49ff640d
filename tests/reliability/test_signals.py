"""Signals (#15): SIGTERM (``timeout``, SLURM) cleans up like Ctrl-C, prints one line and exits 143 (130
for SIGINT); a Ctrl-C swallowed inside a library destructor still stops the run; what a SIGKILL leaves
beside ``--out`` is found and removed (or put back) by the next run into the same folder.

The signal arrives at a known point: one function is patched to raise it (``signal.raise_signal``, in
this process, fast), or to print ``PAUSED`` and wait for a real SIGTERM or SIGKILL from this test
(a subprocess: seconds of imports, so those are marked slow)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.runs import (
    cli,
    hidden_siblings,
    medgan_process,
    one_line_error,
    tiny_run,
    tree_digest,
    wait_for_line,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# The real CLI, with the export pausing after its first batch has been written into the temporary folder.
AUGMENT_PAUSED = """
import time
import medgan.synth.export as export
from medgan.cli.main import main

real_write = export.SampleWriter.write

def write(self, *args, **kwargs):
    out = real_write(self, *args, **kwargs)
    print("PAUSED", flush=True)
    time.sleep(60)
    return out

export.SampleWriter.write = write
main()
"""

# The real CLI, with preprocess pausing while it reads its second source file.
PREPROCESS_PAUSED = """
import time
import medgan.data.preprocess as pre
from medgan.cli.main import main

real_read, calls = pre.read_image, []

def read_image(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        print("PAUSED", flush=True)
        time.sleep(60)
    return real_read(*args, **kwargs)

pre.read_image = read_image
main()
"""


class _Killed(Exception):
    """What SIGTERM raises in this test process when medgan installs no handler of its own."""


@pytest.fixture(autouse=True)
def _sigterm_cannot_kill_pytest() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise _Killed

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("signals"))[0]


def _augment_args(run: Path, out: Path) -> list[object]:
    return [
        "augment",
        "--checkpoint",
        run,
        "--class",
        "all",
        "--n",
        40,
        "--batch-size",
        8,
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        out,
    ]


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


@pytest.mark.slow
def test_sigterm_during_augment_removes_the_partial_output_and_exits_143(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    proc = medgan_process(AUGMENT_PAUSED, *_augment_args(run, out))
    wait_for_line(proc, "PAUSED")
    assert [p for p in hidden_siblings(out) if p.endswith(".tmp")]  # it was writing
    proc.send_signal(signal.SIGTERM)
    line = one_line_error(*_finish(proc), exit_code=143, prefix="interrupted (SIGTERM)")
    assert "temporary output was removed" in line
    assert not out.exists() and hidden_siblings(out) == []  # no .synth.*.tmp, no .synth.lock


@pytest.mark.slow
def test_sigterm_during_preprocess_removes_the_partial_output_and_exits_143(tmp_path: Path) -> None:
    from tests.data.helpers import make_png_tree

    src = tmp_path / "scans"
    make_png_tree(src, per_class=3)
    out = tmp_path / "prepared"
    proc = medgan_process(PREPROCESS_PAUSED, "preprocess", src, "--out", out, "--size", 8, "--no-progress")
    wait_for_line(proc, "PAUSED")
    assert hidden_siblings(out)
    proc.send_signal(signal.SIGTERM)
    one_line_error(*_finish(proc), exit_code=143, prefix="interrupted (SIGTERM)")
    assert not out.exists() and hidden_siblings(out) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_augment_exits_128_plus_signal_with_one_line(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, code: int
) -> None:
    import medgan.synth.export as export

    real_write = export.SampleWriter.write

    def write(self: object, *args: object, **kwargs: object) -> object:
        result = real_write(self, *args, **kwargs)  # type: ignore[arg-type]
        assert hidden_siblings(out)  # the first batch is in the temporary folder
        signal.raise_signal(sig)
        return result

    monkeypatch.setattr(export.SampleWriter, "write", write)
    out = tmp_path / "synth"
    one_line_error(*cli(*_augment_args(run, out)), exit_code=code, prefix=f"interrupted ({sig.name})")
    assert not out.exists() and hidden_siblings(out) == []


def test_sigterm_during_preprocess_exits_143_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan.data.preprocess as pre
    from tests.data.helpers import make_png_tree

    make_png_tree(tmp_path / "scans", per_class=3)
    out = tmp_path / "prepared"
    real_read, calls = pre.read_image, []

    def read_image(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGTERM)
        return real_read(*args, **kwargs)

    monkeypatch.setattr(pre, "read_image", read_image)
    one_line_error(
        *cli("preprocess", tmp_path / "scans", "--out", out, "--size", 8, "--no-progress"),
        exit_code=143,
        prefix="interrupted (SIGTERM)",
    )
    assert len(calls) == 2 and not out.exists() and hidden_siblings(out) == []


class _RaisesInDel:
    """A library object whose destructor runs when Ctrl-C arrives: Python swallows the KeyboardInterrupt."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_swallowed_in_a_destructor_still_stops_preprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan.data.preprocess as pre
    from tests.data.helpers import make_png_tree

    make_png_tree(tmp_path / "scans", per_class=3)
    real_read, calls = pre.read_image, []

    def read_image(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            _RaisesInDel()  # dropped at once: the interrupt is raised, and lost, inside __del__
        return real_read(*args, **kwargs)

    monkeypatch.setattr(pre, "read_image", read_image)
    out = tmp_path / "prepared"
    one_line_error(
        *cli("preprocess", tmp_path / "scans", "--out", out, "--size", 8, "--no-progress"),
        exit_code=130,
        prefix="interrupted (SIGINT)",
    )
    assert len(calls) == 2  # stopped at the next file, not at the end
    assert not out.exists() and hidden_siblings(out) == []


def test_the_next_run_removes_what_a_killed_run_left(run: Path, tmp_path: Path) -> None:
    # What SIGKILL leaves: the temporary folder of the export, and its lock naming a pid that is gone.
    out = tmp_path / "synth"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    half = tmp_path / ".synth.x7k2m9qa.tmp"
    (half / "class0").mkdir(parents=True)
    (half / "class0" / "class0_0_000000.png").write_bytes(b"half a png")
    (tmp_path / ".synth.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    code, _, stderr = cli(*_augment_args(run, out))
    assert code == 0, stderr
    assert f"took over a stale lock of pid {dead.pid}" in stderr
    assert "removed .synth.x7k2m9qa.tmp, left by a run that was killed" in stderr
    assert hidden_siblings(out) == [] and len(list(out.rglob("*.png"))) == 80


@pytest.mark.slow
def test_the_next_run_cleans_up_after_a_sigkill(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    proc = medgan_process(AUGMENT_PAUSED, *_augment_args(run, out))
    wait_for_line(proc, "PAUSED")
    proc.kill()  # SIGKILL: no handler runs, the temporary folder and the lock stay
    proc.communicate(timeout=60)
    left = hidden_siblings(out)
    assert any(p.endswith(".tmp") for p in left) and f".{out.name}.lock" in left

    code, _, stderr = cli(*_augment_args(run, out))
    assert code == 0, stderr
    assert f"took over a stale lock of pid {proc.pid}" in stderr and "left by a run that was killed" in stderr
    assert hidden_siblings(out) == [] and len(list(out.rglob("*.png"))) == 80


def test_a_run_killed_while_swapping_gets_its_previous_content_back(run: Path, tmp_path: Path) -> None:
    # SIGKILL between the two renames of atomic_dir: --out is gone, the old content is .NAME.XXXXXXXX.old,
    # the new is .NAME.XXXXXXXX.tmp. The next run puts the old content back and removes the rest.
    out = tmp_path / "synth"
    old, new = tmp_path / ".synth.k1ll3d_0.old", tmp_path / ".synth.k1ll3d_1.tmp"
    for folder, text in ((old, "previous export"), (new, "half of a new one")):
        folder.mkdir()
        (folder / "a.txt").write_text(text)
    other = tmp_path / ".synth2.abcdefgh.tmp"  # another output's temporary folder: not ours to touch
    other.mkdir()
    code, _, stderr = cli(*_augment_args(run, out))
    assert code == 2 and "folder exists and is not empty" in stderr  # the restored content is kept
    assert "restored the previous content" in stderr and "Traceback" not in stderr
    assert tree_digest(out) == {"synth/a.txt": tree_digest(out / "a.txt")["a.txt"]}  # nothing else in it
    assert (out / "a.txt").read_text() == "previous export"
    assert hidden_siblings(out) == [] and other.is_dir()


def test_training_after_a_kill_removes_its_half_written_checkpoint(run: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(run, tmp_path / "run"))
    # atomic_file's name for step 4 in progress; and another output's file, still being written.
    half = folder / "checkpoints" / ".step_000004.x7k2m9qa.tmp.pt"
    half.write_bytes(b"half a checkpoint")
    other = folder / ".eval.abcdefgh.tmp" / ".metrics.abcdefgh.tmp.json"
    other.parent.mkdir()
    other.write_text("{")
    code, _, stderr = cli("train", "--resume", folder, "--no-progress")
    assert code == 0, stderr
    assert f"note: {half.parent}: removed {half.name}, left by a run that was killed" in stderr
    assert not half.exists() and other.is_file()


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux ``/proc``)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


def _alive_worker(pid: int) -> bool:
    """Whether ``pid`` is still a running (not zombie) multiprocessing worker."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc")
def test_sigterm_to_a_sweep_stops_the_gans_of_its_workers_and_exits_143(tmp_path: Path) -> None:
    """``kill PID`` of a sweep whose two GANs train in spawned workers: the workers stop too (each writes a
    checkpoint), and the command exits 143 at once instead of waiting the hour a GAN can take."""
    import os
    import time

    from medgan.configio import save_config
    from tests.benchmark.helpers import bench_config
    from tests.conftest import make_disc_toy
    from tests.training.helpers import tiny_config

    data = make_disc_toy(tmp_path)
    gan = tmp_path / "gan.yaml"
    save_config(tiny_config(data, tmp_path / "unused", "steps=100000", "log_every=1"), gan)
    cfg = bench_config(tmp_path / "bench.yaml", data, gan, arms=["real", "real+synthetic"], fractions=[0.5, 1.0],
                       jobs=2)
    out = tmp_path / "out"
    proc = medgan_process("from medgan.cli.main import main; main()", "benchmark", cfg, "--out", out, "--no-progress")
    logs = [out / "gan" / "metrics.jsonl", out / "gans" / "f0.5-s0" / "gan" / "metrics.jsonl"]
    deadline = time.monotonic() + 240
    while not all(log.is_file() and log.stat().st_size for log in logs):  # both GANs are training
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the two GANs did not start"
        time.sleep(0.5)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    try:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)  # not the 100000 steps
        assert proc.returncode == 143, (stdout, stderr)
        assert "interrupted: finished runs are kept in" in stderr and "Traceback" not in stdout + stderr
        deadline = time.monotonic() + 30
        while [p for p in workers if _alive_worker(p)]:
            assert time.monotonic() < deadline, "a GAN worker outlived the benchmark"
            time.sleep(0.5)
    finally:  # a failure must not leave 100000-step GANs running
        proc.kill()
        for pid in workers:
            if _alive_worker(pid):
                os.kill(pid, signal.SIGKILL)
    for log in logs:  # each worker stopped its GAN cleanly, with a checkpoint to resume from
        assert list((log.parent / "checkpoints").glob("step_*.pt")), log.parent
