"""Where a training run's numbers and pictures go: ``metrics.jsonl`` always, TensorBoard when asked.

The loop hands every log record (losses, ADA p, and whatever the injected evaluator measured:
FID, SWD, ...) and every sample grid to a :class:`MetricsLogger`, the way it takes an evaluator:
it never imports TensorBoard. :class:`JsonlLogger` is the run folder's ``metrics.jsonl``, which
the loop always writes; :class:`TensorBoardLogger` writes the same records as scalars, and the grids
as images, into ``RUN/tensorboard/``. TensorBoard is an optional extra
(``pip install "medgan[tensorboard]"``); this module is the only one that imports it.

Example:
    >>> logger = make_logger("tensorboard", RunFolder("runs/breast").tensorboard)  # MedganError without the extra
    >>> train(cfg, logger=logger)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from medgan.errors import MedganError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "INSTALL_TENSORBOARD",
    "LOGGERS",
    "JsonlLogger",
    "LoggerName",
    "Loggers",
    "MetricsLogger",
    "TensorBoardLogger",
    "check_logger",
    "make_logger",
]

LoggerName = Literal["jsonl", "tensorboard"]
"""``jsonl``: ``metrics.jsonl`` only (always written); ``tensorboard``: TensorBoard event files as well."""
LOGGERS: tuple[str, ...] = get_args(LoggerName)
INSTALL_TENSORBOARD = 'pip install "medgan[tensorboard]"'


class MetricsLogger(Protocol):
    """What the training loop logs to (on rank 0 only).

    ``start`` is called once before the first record with the step training starts from (0, or
    the resumed step); ``log_metrics`` with every ``metrics.jsonl`` record; ``log_image`` with every
    sample grid (uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB); ``close`` when training ends or stops.
    """

    def start(self, step: int) -> None: ...

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None: ...

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None: ...

    def close(self) -> None: ...


class JsonlLogger:
    """Appends every record to a JSON-lines file (the run folder's ``metrics.jsonl``); images are not logged."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def start(self, step: int) -> None:
        pass

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _summary_writer() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or a one-line error that names the install command."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module imports the tensorboard package
        raise MedganError(
            f"TensorBoard logging needs the tensorboard package: {INSTALL_TENSORBOARD}"
        ) from None
    return SummaryWriter


class TensorBoardLogger:
    """TensorBoard event files in ``log_dir``: each numeric record key becomes a scalar tag of the same name
    (``d_loss``, ``g_loss``, ``aug_p``, ``fid``, ``swd/mean`` ...), each grid an image (tag ``samples``).

    The event file is opened by :meth:`start` (after the loop has prepared the run folder); a
    resumed run purges what an earlier attempt logged after its checkpoint, so the curves do not
    double back.

    Raises:
        MedganError: at construction, when the ``tensorboard`` package is missing (with the install command).
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer_cls = _summary_writer()  # fail before training starts, not at the first record
        self._writer: Any = None

    def _open(self, purge_step: int | None = None) -> Any:
        if self._writer is None:
            self._writer = self._writer_cls(log_dir=str(self.log_dir), purge_step=purge_step)
        return self._writer

    def start(self, step: int) -> None:
        # Resumed at ``step``: what an earlier attempt logged after that checkpoint is discarded.
        self._open(purge_step=step + 1 if step > 0 else None)

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        writer = self._open()
        for key, value in metrics.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key != "step" and numeric and math.isfinite(value):
                writer.add_scalar(key, float(value), step)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self._open().add_image(tag, image, step, dataformats="HW" if image.ndim == 2 else "HWC")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


class Loggers:
    """Several loggers as one (the loop's ``metrics.jsonl`` plus the caller's)."""

    def __init__(self, loggers: Sequence[MetricsLogger | None]) -> None:
        self.loggers = [lg for lg in loggers if lg is not None]

    def start(self, step: int) -> None:
        for lg in self.loggers:
            lg.start(step)

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        for lg in self.loggers:
            lg.log_metrics(step, metrics)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        for lg in self.loggers:
            lg.log_image(tag, image, step)

    def close(self) -> None:
        for lg in self.loggers:
            lg.close()


def check_logger(name: str) -> None:
    """Refuse an unknown logger name, or ``tensorboard`` without the package (one line, with the install command)."""
    if name not in LOGGERS:
        raise MedganError(f"unknown logger {name!r}; allowed: {', '.join(LOGGERS)}")
    if name == "tensorboard":
        _summary_writer()


def make_logger(name: str, log_dir: str | Path) -> MetricsLogger | None:
    """The extra logger that config key ``logger`` asks for: ``None`` for ``jsonl`` (the loop writes
    ``metrics.jsonl`` anyway), a :class:`TensorBoardLogger` into ``log_dir`` for ``tensorboard``
    (for a run folder, :attr:`medgan.training.checkpoint.RunFolder.tensorboard`).

    Raises:
        MedganError: an unknown name, or ``tensorboard`` without the package.
    """
    check_logger(name)
    return TensorBoardLogger(log_dir) if name == "tensorboard" else None
