"""The job plan of a benchmark: which (arm, seed) runs an invocation does, and which are finished.

A benchmark is a GAN (trained once, or given) and one classifier run per (arm, seed). One
invocation does all of it and writes the report (:meth:`JobPlan.everything`), or only a part, as
one job of a cluster array does: the GAN alone (:meth:`JobPlan.gan`, ``--only gan``) or some runs
and no report (:meth:`JobPlan.of_runs`, ``--only ARM:SEED``).

A finished run is the file ``OUT/runs/<arm>__seed<k>.json`` (:func:`run_path`) written for the
same benchmark identity (:func:`is_finished`); anything else is run again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medgan.benchmark.arms import uses_synthetic
from medgan.benchmark.config import BenchmarkConfig
from medgan.errors import MedganError

__all__ = ["RUN_FORMAT", "Job", "JobPlan", "is_finished", "run_path"]

RUN_FORMAT = "medgan-benchmark-run-v1"

Job = tuple[str, int]
"""One classifier run: ``(arm, seed)``."""


@dataclass(frozen=True)
class JobPlan:
    """What one invocation of the benchmark does.

    Attributes:
        gan_only: train (or find) the GAN and stop.
        runs: only these ``(arm, seed)`` runs, no GAN training and no report; ``None`` for every
            run of the config followed by the report.

    Example:
        >>> JobPlan.of_runs([("real", 0)]).reports
        False
    """

    gan_only: bool = False
    runs: tuple[Job, ...] | None = None

    def __post_init__(self) -> None:
        if self.gan_only and self.runs is not None:
            raise ValueError("a plan trains the GAN only or does given runs, not both")

    @classmethod
    def everything(cls) -> JobPlan:
        """The GAN if needed, every (arm, seed) run, then the report."""
        return cls()

    @classmethod
    def gan(cls) -> JobPlan:
        """The GAN only (``--only gan``)."""
        return cls(gan_only=True)

    @classmethod
    def of_runs(cls, jobs: Iterable[Job]) -> JobPlan:
        """These runs only, and no report (``--only ARM:SEED``, one job of a cluster array)."""
        return cls(runs=tuple(jobs))

    @classmethod
    def parse(cls, items: list[str], cfg: BenchmarkConfig) -> JobPlan:
        """Parse ``--only`` values: ``gan``, or ``ARM:SEED`` (repeatable).

        Raises:
            MedganError: an unknown arm, a seed outside ``0 .. seeds-1``, or ``gan`` mixed with runs.
        """
        if items == ["gan"]:
            return cls.gan()
        jobs = []
        for item in items:
            arm, sep, seed = item.rpartition(":")
            if not sep or not seed.isdigit():
                raise MedganError(f"bad --only '{item}': expected ARM:SEED (e.g. real+synthetic:3) or 'gan'")
            if arm not in cfg.arms:
                raise MedganError(f"bad --only '{item}': arm '{arm}' is not in this benchmark ({', '.join(cfg.arms)})")
            if int(seed) >= cfg.seeds:
                raise MedganError(f"bad --only '{item}': seed {seed} is outside 0..{cfg.seeds - 1} (set --seeds)")
            jobs.append((arm, int(seed)))
        return cls.of_runs(jobs)

    @property
    def partial(self) -> bool:
        """Given runs only: the GAN is not trained here (jobs of an array must not each train one)."""
        return self.runs is not None

    @property
    def reports(self) -> bool:
        """Whether this invocation ends with the report."""
        return not self.gan_only and self.runs is None

    def needs_trained_gan(self) -> bool:
        """Given runs that draw synthetic images: the GAN must already be trained in the folder."""
        return self.runs is not None and any(uses_synthetic(arm) for arm, _ in self.runs)

    def wanted(self, cfg: BenchmarkConfig) -> list[Job]:
        """The runs this plan asks for: the given ones, or every run seed by seed (so partial results pair up)."""
        if self.runs is not None:
            return list(self.runs)
        return [(arm, s) for s in range(cfg.seeds) for arm in cfg.arms]


def run_path(out: str | Path, arm: str, seed: int) -> Path:
    """``OUT/runs/<arm>__seed<k>.json``."""
    return Path(out) / "runs" / f"{arm}__seed{seed}.json"


def is_finished(out: Path, arm: str, seed: int, ident: str) -> bool:
    """Whether ``(arm, seed)`` has a result in ``out`` written for the benchmark identity ``ident``."""
    path = run_path(out, arm, seed)
    if not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False  # cannot happen with atomic writes, but a hand-edited file is simply redone
    return record.get("format") == RUN_FORMAT and record.get("identity") == ident
