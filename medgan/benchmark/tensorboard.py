"""A finished benchmark in TensorBoard (``logger: tensorboard``, ``medgan benchmark --tensorboard``).

The GAN that a benchmark trains logs while it trains (``OUT/gan/tensorboard``, as ``medgan train``
does). This module adds what only exists once runs have finished: every (arm, seed) classifier's
validation curves, one TensorBoard run per ``OUT/runs/<arm>__seed<k>.json`` under
``OUT/tensorboard/<arm>__seed<k>`` (so the arms overlay), and the GAN's fidelity figures from the
report, at the GAN's last step, in its own run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medgan.training.loggers import TensorBoardLogger

__all__ = ["log_benchmark"]

_NOT_CURVES = ("epoch", "step", "selected", "pretrain")


def log_benchmark(out: str | Path, results: dict[str, Any] | None = None) -> list[Path]:
    """Write the classifier curves (and the GAN's fidelity, from ``results``) as TensorBoard event files.

    Rewriting is safe: each call replaces the event files it writes, so a resumed benchmark shows
    every run once.

    Args:
        out: the benchmark folder.
        results: the content of ``results.json`` (``None``: curves only).

    Returns:
        The TensorBoard log folders written.

    Raises:
        MedganError: the ``tensorboard`` package is missing (with the install command).
    """
    import shutil

    out = Path(out)
    root = out / "tensorboard"
    written: list[Path] = []
    for path in sorted((out / "runs").glob("*.json")):
        try:
            history = json.loads(path.read_text()).get("history") or []
        except (OSError, json.JSONDecodeError):
            continue  # a run file being written by another job; the next call logs it
        log_dir = root / path.stem
        shutil.rmtree(log_dir, ignore_errors=True)
        logger = TensorBoardLogger(log_dir)
        logger.start(0)
        for k, row in enumerate(history):
            step = int(row.get("epoch", k + 1))
            logger.log_metrics(step, {f"classifier/{key}": v for key, v in row.items() if key not in _NOT_CURVES})
        logger.close()
        written.append(log_dir)
    fidelity = ((results or {}).get("gan") or {}).get("fidelity")
    training = ((results or {}).get("gan") or {}).get("training") or {}
    if fidelity and (out / "gan").is_dir():
        log_dir = out / "gan" / "tensorboard" / "fidelity"
        shutil.rmtree(log_dir, ignore_errors=True)
        logger = TensorBoardLogger(log_dir)
        logger.start(0)
        logger.log_metrics(int(training.get("steps") or 0), {f"fidelity/{k}": v for k, v in fidelity.items()})
        logger.close()
        written.append(log_dir)
    return written
