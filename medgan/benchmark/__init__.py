"""The real-vs-synthetic classifier harness: arms, statistics, runner and report.

:mod:`~medgan.benchmark.config` (``BenchmarkConfig``), :mod:`~medgan.benchmark.arms` (what each
arm trains on, classical augmentation), :mod:`~medgan.benchmark.subsets` (the data-scarcity
sweep's nested subsets), :mod:`~medgan.benchmark.budget` (the same optimisation steps for every
arm), :mod:`~medgan.benchmark.stats` (metrics, bootstrap intervals, paired comparisons, Holm, the
detectable lift), :mod:`~medgan.benchmark.runner` (the output folder, a GAN per fraction, the
(arm, seed) runs, resume, parallel jobs), :mod:`~medgan.benchmark.analysis` (one fraction's
numbers: the primary comparison, the secondary ones) and :mod:`~medgan.benchmark.report`
(results.json, report.md, figures, the verdict).

Importing this package is light (no torch); the runner loads torch on first use.

Example:
    >>> from medgan.benchmark import load_benchmark_config, run_benchmark
    >>> cfg = load_benchmark_config("configs/benchmark/default.yaml", quick=True)
    >>> run_benchmark(cfg, out="runs/benchmark/quick").results["verdict"]["answer"]
"""

from __future__ import annotations

from typing import Any

from medgan.benchmark.config import ARMS, BenchmarkConfig, load_benchmark_config

__all__ = ["ARMS", "BenchmarkConfig", "BenchmarkResult", "load_benchmark_config", "run_benchmark"]


def __getattr__(name: str) -> Any:
    # The runner needs torch (through the data and training code): import it only when asked for.
    if name in ("run_benchmark", "BenchmarkResult"):
        from medgan.benchmark import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
