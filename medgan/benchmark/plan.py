"""The job plan of a benchmark: which (arm, seed) runs an invocation does, and which are finished.

A benchmark is a GAN per fraction (trained once per fraction and subset, or given) and one
classifier run per (arm, fraction, seed). One invocation does all of it and writes the report
(:meth:`JobPlan.everything`), or only a part, as one job of a cluster array does: the GANs alone
(:meth:`JobPlan.gan`, ``--only gan``) or some runs and no report (:meth:`JobPlan.of_runs`,
``--only ARM:SEED``).

A run's **arm label** names the arm, the fraction and the ratio-sweep variant in one word
(:func:`arm_label`, :func:`parse_arm_label`): ``real+synthetic`` (the whole train split),
``real+synthetic@0.1`` (the 10 % subset), ``real+synthetic-x2@0.1`` (its ratio-sweep variant
that adds 2 × the real count). A job is ``(label, seed)``, so at full data it is the plain
``(arm, seed)`` of a benchmark without a sweep.

A finished run is the file ``OUT/runs/<label>__seed<k>.json`` (:func:`run_path`) written for the
same benchmark identity (:func:`is_finished`); anything else is run again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medgan.benchmark.arms import adds_synthetic, pretrains, uses_synthetic
from medgan.benchmark.config import ALL_ARMS, BenchmarkConfig
from medgan.errors import MedganError

__all__ = [
    "RUN_FORMAT",
    "ArmRun",
    "Job",
    "JobPlan",
    "arm_label",
    "is_finished",
    "parse_arm_label",
    "repeats_arm",
    "run_path",
    "subset_seed",
    "sweep_fractions",
]

RUN_FORMAT = "medgan-benchmark-run-v2"

Job = tuple[str, int]
"""One classifier run: ``(arm label, seed)``; the label is the plain arm at full data."""

_LABEL = re.compile(r"^(?P<arm>.+?)(?:-x(?P<ratio>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?))?(?:@(?P<fraction>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?))?$")


@dataclass(frozen=True)
class ArmRun:
    """What an arm label means.

    Attributes:
        arm: the arm (one of :data:`medgan.benchmark.config.ALL_ARMS`).
        fraction: the share of the train split its runs train on.
        ratio: the ratio-sweep multiple, or None for the arm as configured.
    """

    arm: str
    fraction: float = 1.0
    ratio: float | None = None

    @property
    def label(self) -> str:
        return arm_label(self.arm, self.fraction, self.ratio)


def arm_label(arm: str, fraction: float = 1.0, ratio: float | None = None) -> str:
    """``arm``, ``arm@0.1``, ``arm-x2`` or ``arm-x2@0.1`` (see the module doc)."""
    base = arm if ratio is None else f"{arm}-x{ratio:g}"
    return base if fraction >= 1 else f"{base}@{fraction:g}"


def parse_arm_label(label: str) -> ArmRun:
    """The :class:`ArmRun` of an arm label.

    Raises:
        ValueError: not a known arm with an optional ``-x<ratio>`` and ``@<fraction>``.
    """
    m = _LABEL.match(label)
    if m is None or m.group("arm") not in ALL_ARMS:
        raise ValueError(f"'{label}' is not an arm label (ARM, ARM@FRACTION, ARM-xRATIO@FRACTION; arms: "
                         f"{', '.join(ALL_ARMS)})")
    fraction = float(m.group("fraction")) if m.group("fraction") else 1.0
    ratio = float(m.group("ratio")) if m.group("ratio") else None
    return ArmRun(m.group("arm"), fraction, ratio)


def subset_seed(cfg: BenchmarkConfig, fraction: float, seed: int) -> int:
    """The subset seed the runs of training seed ``seed`` use at ``fraction``: ``seed % subsets``
    (always 0 at fraction 1, where every subset is the whole split)."""
    return 0 if fraction >= 1 else seed % cfg.subsets


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
        """Parse ``--only`` values: ``gan``, or ``ARM:SEED`` (repeatable), ARM being an arm label.

        Raises:
            MedganError: an unknown arm, fraction or ratio, a seed outside ``0 .. seeds-1``, or
                ``gan`` mixed with runs.
        """
        if items == ["gan"]:
            return cls.gan()
        jobs = []
        for item in items:
            label, sep, seed = item.rpartition(":")
            if not sep or not seed.isdigit():
                raise MedganError(f"bad --only '{item}': expected ARM:SEED (e.g. real+synthetic:3) or 'gan'")
            try:
                run = parse_arm_label(label)
            except ValueError:
                run = None
            if run is None or run.arm not in cfg.arms:
                raise MedganError(f"bad --only '{item}': arm '{label}' is not in this benchmark ({', '.join(cfg.arms)})")
            if run.fraction not in cfg.fractions:
                raise MedganError(f"bad --only '{item}': fraction {run.fraction:g} is not in this benchmark "
                                  f"({', '.join(f'{f:g}' for f in cfg.fractions)})")
            if run.ratio is not None and (run.ratio not in cfg.synthetic.ratios or not adds_synthetic(run.arm)):
                raise MedganError(f"bad --only '{item}': ratio {run.ratio:g} is not in this benchmark's sweep "
                                  f"(synthetic.ratios: {cfg.synthetic.ratios}) of a synthetic arm")
            n_seeds = cfg.seeds_at(run.fraction)
            if int(seed) >= n_seeds:
                raise MedganError(f"bad --only '{item}': seed {seed} is outside 0..{n_seeds - 1} (set --seeds)")
            jobs.append((run.label, int(seed)))
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
        return self.runs is not None and any(uses_synthetic(parse_arm_label(label).arm) for label, _ in self.runs)

    def wanted(self, cfg: BenchmarkConfig) -> list[Job]:
        """The runs this plan asks for: the given ones, or every run of the configured arms, fraction by
        fraction and seed by seed (so partial results pair up). The ratio sweep's runs are
        :meth:`sweep`'s, since its arm may be chosen on the validation results of these."""
        if self.runs is not None:
            return list(self.runs)
        return [(arm_label(arm, f), s) for f in cfg.fractions for s in range(cfg.seeds_at(f)) for arm in cfg.arms]

    def sweep(self, cfg: BenchmarkConfig, arms: dict[float, str | None]) -> list[Job]:
        """The ratio sweep's runs: for every fraction, its arm (``arms[fraction]``) at every ``synthetic.ratios``
        but the arm's own ratio (:func:`repeats_arm`)."""
        if self.runs is not None or not cfg.synthetic.ratios:
            return []
        return [(arm_label(arm, f, r), s) for f in sweep_fractions(cfg) if (arm := arms.get(f)) is not None
                for s in range(cfg.seeds_at(f)) for r in cfg.synthetic.ratios if not repeats_arm(cfg, arm, r)]


def sweep_fractions(cfg: BenchmarkConfig) -> list[float]:
    """The fractions the ratio sweep runs at: every one, or those up to ``synthetic.ratio_upto``."""
    upto = cfg.synthetic.ratio_upto
    return [f for f in cfg.fractions if upto is None or f <= upto]


def repeats_arm(cfg: BenchmarkConfig, arm: str, ratio: float) -> bool:
    """Whether the ratio-sweep variant ``<arm>-x<ratio>`` is ``arm`` itself, run for run: a pretraining arm
    at ``pretrain.ratio``, or an arm that adds samples at ``synthetic.ratio`` under ``policy: ratio``.
    The sweep leaves it out; the arm is that point of the sweep."""
    if pretrains(arm):
        return ratio == cfg.pretrain.ratio
    return cfg.synthetic.policy == "ratio" and ratio == cfg.synthetic.ratio


def run_path(out: str | Path, arm: str, seed: int) -> Path:
    """``OUT/runs/<label>__seed<k>.json`` (``arm`` is an arm label: :func:`arm_label`)."""
    return Path(out) / "runs" / f"{arm}__seed{seed}.json"


def is_finished(out: Path, arm: str, seed: int, ident: str) -> bool:
    """Whether ``(arm label, seed)`` has a result in ``out`` written for the benchmark identity ``ident``."""
    path = run_path(out, arm, seed)
    if not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False  # cannot happen with atomic writes, but a hand-edited file is simply redone
    return record.get("format") == RUN_FORMAT and record.get("identity") == ident
