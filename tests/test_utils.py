"""medgan.utils: the atomic-output contract (atomic_dir, atomic_file) and the file hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from medgan.errors import MedganError
from medgan.utils import atomic_dir, atomic_file, file_md5, file_sha256, stop_workers, write_text_atomic


class Boom(Exception):
    """A failure in the middle of building an output."""


def _siblings(path: Path) -> list[str]:
    """Everything beside ``path`` but ``path`` itself: temporary folders and files would show here."""
    return sorted(p.name for p in path.parent.iterdir() if p != path)


def test_atomic_dir_renames_into_place_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        assert tmp != out and tmp.parent == out.parent and tmp.name.startswith(".out.")
        assert not out.exists()  # nothing at the destination until the block succeeds
    assert (out / "a.txt").read_text() == "new"
    assert _siblings(out) == []
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()  # not mkdtemp's 0700: colleagues can read it


def test_atomic_dir_failure_leaves_no_output_and_no_temporary_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Boom), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise Boom
    assert not out.exists() and _siblings(out) == []


def test_atomic_dir_failure_keeps_the_previous_content(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(Boom), atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise Boom
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"] and (out / "old.txt").read_text() == "old"
    assert _siblings(out) == []


def test_atomic_dir_overwrite_replaces_the_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (out / "old.txt").is_file()  # the old content stays until the new one is complete
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert _siblings(out) == []  # the previous content is removed, not left as a sibling


def test_atomic_dir_refuses_a_non_empty_folder_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    with pytest.raises(MedganError, match="not empty"), atomic_dir(out):
        pytest.fail("the block must not run")
    assert (out / "mine.txt").read_text() == "mine" and _siblings(out) == []
    # An empty folder is not in the way; neither is a missing parent.
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty") as tmp:
        (tmp / "x").write_text("x")
    with atomic_dir(tmp_path / "a" / "b") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "empty" / "x").is_file() and (tmp_path / "a" / "b" / "x").is_file()


def test_atomic_dir_refuses_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(MedganError, match="not a folder"), atomic_dir(path, overwrite=True):
        pytest.fail("the block must not run")
    assert path.read_text() == "x"


def test_atomic_file_and_write_text_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.json"
    write_text_atomic(path, "one")
    assert path.read_text() == "one"
    with pytest.raises(Boom), atomic_file(path) as tmp:
        tmp.write_text("two")
        raise Boom
    assert path.read_text() == "one" and _siblings(path) == []
    with atomic_file(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".f.")
        tmp.write_text("three")
    assert path.read_text() == "three" and _siblings(path) == []
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_hashes(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(3 << 20)  # several 1 MiB chunks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_md5(path) == hashlib.md5(data).hexdigest()


def test_stop_workers_ends_the_running_task_of_a_process_pool() -> None:
    """A worker busy for a minute is stopped at once (SIGTERM): its future fails instead of running on."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        fut = pool.submit(time.sleep, 60)
        deadline = time.monotonic() + 30
        while not fut.running():  # the worker has taken the task
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        stop_workers(pool)
        with pytest.raises(BrokenProcessPool):
            fut.result(timeout=30)
        assert time.monotonic() - t0 < 30
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
