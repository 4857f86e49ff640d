"""Shared by the data-loss, signal, disk and lock tests of #15: a tiny trained run, the real CLI, and the
checks every bad-input case makes (exit code, one line, no traceback, nothing partial, inputs intact)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from medgan.cli.main import app

REPO = Path(__file__).resolve().parents[2]
_CACHE: dict[str, Path] = {}


def tiny_run(root: Path) -> tuple[Path, Path]:
    """A two-step training run on the 16² banded toy, trained once per session: ``(run folder, data)``."""
    if "run" not in _CACHE:
        from medgan.training.loop import train
        from tests.conftest import make_banded_toy, one_torch_thread
        from tests.training.helpers import tiny_config

        data = make_banded_toy(root, n=100)  # 50 per class: no few-images warning on stderr
        with one_torch_thread():
            _CACHE["run"] = train(tiny_config(data, root / "run", "steps=2"), progress=False).run_dir
        _CACHE["data"] = data
    return _CACHE["run"], _CACHE["data"]


def cli(*args: object) -> tuple[int, str, str]:
    """``medgan ARGS`` in this process: exit code, stdout, stderr."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_line_error(
    code: int, stdout: str, stderr: str, *, exit_code: int = 2, prefix: str = "error: "
) -> str:
    """Assert the promised failure: ``exit_code``, no traceback, one line on stderr starting with ``prefix``;
    return that line."""
    assert code == exit_code, (code, stdout, stderr)
    assert "Traceback" not in stdout + stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr
    return lines[0]


def tree_digest(path: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``path`` (or of ``path`` itself): to prove it intact."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def hidden_siblings(out: Path) -> list[str]:
    """Temporary folders, old copies and locks beside ``out`` (``.NAME.*``): none may outlive a run."""
    if not out.parent.is_dir():
        return []
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def medgan_process(script: str, *args: object) -> subprocess.Popen[str]:
    """``python -c SCRIPT ARGS`` in the repository, with one torch thread; SCRIPT runs the real CLI
    (``medgan.cli.main.main()``) after patching what makes the test deterministic."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float = 120.0) -> None:
    """Read ``proc``'s stdout until a line holds ``marker`` (the patched code prints it when it pauses)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if marker in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(
                f"exited {proc.returncode} before {marker!r}: {proc.stderr.read() if proc.stderr else ''}"
            )
    proc.kill()
    raise AssertionError(f"no {marker!r} within {timeout} s")
