"""One (arm, seed) run of the benchmark, and many of them, serially or in spawned processes.

:func:`run_job` trains and tests one classifier and writes ``runs/<arm>__seed<k>.json``.
:func:`run_jobs` runs a list of them with Rich progress bars. What consecutive runs in one process
share (the dataset, the generator, the latest seed's synthetic pool) is held by a :class:`JobCache`:
one per :func:`run_jobs` call for serial runs, one per worker process for parallel runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.benchmark.arms import ClassicalAugment, arm_data, uses_synthetic
from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.plan import RUN_FORMAT, Job, run_path
from medgan.data.dataset import PreparedDataset, load_dataset
from medgan.errors import MedganError
from medgan.synth.plan import ClassPlan
from medgan.utils import write_text_atomic

if TYPE_CHECKING:
    from medgan.synth.sampling import LoadedGenerator
    from medgan.synth.translate import LoadedTranslator

__all__ = ["EpochCallback", "JobCache", "JobContext", "run_job", "run_jobs"]

EpochCallback = Callable[[str, int, dict[str, float]], None]
"""``(arm, seed, history row)`` after every classifier epoch."""

Pool = tuple[np.ndarray, np.ndarray]
"""Synthetic images ``(N, C, *spatial)`` uint8 and their int64 labels ``(N,)``."""


@dataclass
class JobContext:
    """What one (arm, seed) run needs; plain data, so it crosses to a spawned process."""

    cfg: BenchmarkConfig
    out: str
    data: str
    checkpoint: str | None
    identity: str
    device: str


class JobCache:
    """What consecutive runs in one process share: datasets, generators, the latest synthetic pool.

    Runs go seed by seed, so one pool (the latest seed's) is kept; every arm of that seed draws from
    it. A cache lives as long as its owner: one :func:`run_jobs` call, or one worker process.

    Args:
        datasets: datasets already loaded, so they are not read again.
    """

    def __init__(self, *datasets: PreparedDataset) -> None:
        self._datasets = {str(ds.path): ds for ds in datasets}
        self._generators: dict[tuple[str, str], LoadedGenerator | LoadedTranslator] = {}
        self._pool_key: tuple[Any, ...] | None = None
        self._pool: Pool | None = None

    def dataset(self, path: str) -> PreparedDataset:
        """The prepared dataset at ``path``, loaded once."""
        if path not in self._datasets:
            self._datasets[path] = load_dataset(path)
        return self._datasets[path]

    def generator(self, checkpoint: str, device: str) -> LoadedGenerator | LoadedTranslator:
        """The generator of ``checkpoint`` on ``device`` (a translator for a cycle checkpoint), loaded once."""
        from medgan.synth.translate import load_model

        key = (checkpoint, device)
        if key not in self._generators:
            self._generators[key] = load_model(checkpoint, device)
        return self._generators[key]

    def pool(self, key: tuple[Any, ...], draw: Callable[[], Pool]) -> Pool:
        """The synthetic pool for ``key``: the one kept when the key matches, else ``draw()`` (kept instead)."""
        if self._pool is None or self._pool_key != key:
            self._pool = None  # free the old pool before drawing the new one
            self._pool, self._pool_key = draw(), key
        return self._pool


def _synthetic_plan(cfg: BenchmarkConfig) -> ClassPlan:
    """What the ``+synthetic`` arms add per class: the config's policy as a :class:`ClassPlan`."""
    return ClassPlan(cfg.synthetic.policy, ratio=cfg.synthetic.ratio)


def _synthetic_pool(ctx: JobContext, ds: PreparedDataset, seed: int, cache: JobCache) -> Pool:
    """This seed's synthetic images: enough of every class for every arm, drawn with sampling seed ``seed``."""
    from medgan.synth import translate
    from medgan.synth.sampling import iter_samples

    if ctx.checkpoint is None:
        raise MedganError("this arm needs synthetic images, but the benchmark has no GAN checkpoint")
    checkpoint = ctx.checkpoint
    cfg, k = ctx.cfg, ds.info.num_classes
    real_counts = np.bincount(ds.labels["train"], minlength=k)[:k].tolist()
    need = [0] * k
    if any(uses_synthetic(a) and a != "synthetic-only" for a in cfg.arms):
        need = _synthetic_plan(cfg).per_class(real_counts)
    if "synthetic-only" in cfg.arms:
        need = [max(a, b) for a, b in zip(need, real_counts, strict=True)]

    def draw() -> Pool:
        gen = cache.generator(checkpoint, ctx.device)
        if isinstance(gen, translate.LoadedTranslator):  # a CycleGAN: the other class's train images, translated
            return translate.translated_pool(gen, ds, need, seed)
        images, labels = [], []
        for c, n in enumerate(need):
            if n == 0:
                continue
            for batch in iter_samples(gen, c, n, seed=seed, truncation=cfg.synthetic.truncation):
                images.append(batch)
                labels.append(np.full(len(batch), c, dtype=np.int64))
        shape = ds.channel_first("train").shape[1:]
        pool = (np.concatenate(images) if images else np.zeros((0, *shape), np.uint8),
                np.concatenate(labels) if labels else np.zeros(0, np.int64))
        if pool[0].shape[1:] != shape:
            raise MedganError(f"synthetic samples have shape {tuple(pool[0].shape[1:])} but the real images have "
                              f"{tuple(shape)}; use a checkpoint trained on this data at this size", checkpoint)
        return pool

    return cache.pool((checkpoint, ctx.device, seed, tuple(need), cfg.synthetic.truncation), draw)


def _state_sha(model: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_job(ctx: JobContext, arm: str, seed: int, on_epoch: EpochCallback | None = None,
            cache: JobCache | None = None) -> dict[str, Any]:
    """Train and test one (arm, seed) run and write ``runs/<arm>__seed<k>.json``.

    The model is built under ``torch.manual_seed(seed)`` (the same initial weights for every arm
    of a seed), trained with ``seed`` (the same shuffling generator), and the classical
    augmentation is seeded with ``seed``; only the training data differ between arms.

    Args:
        ctx: the benchmark's context.
        arm, seed: the run.
        on_epoch: called after every classifier epoch.
        cache: shared with the runs before and after this one (a fresh one when None).
    """
    import torch

    from medgan.benchmark.stats import confusion_matrix, run_metrics
    from medgan.device import resolve_device
    from medgan.networks import classifier as nets
    from medgan.training import classifier as clf

    cache = cache if cache is not None else JobCache()
    cfg, ds = ctx.cfg, cache.dataset(ctx.data)
    info = ds.info
    k = info.num_classes

    # Section. Data: real train (+ synthetic), real val for epoch selection, real test for the report.
    real = (ds.channel_first("train"), ds.labels["train"])
    real_counts = np.bincount(real[1], minlength=k)[:k].tolist()
    add = _synthetic_plan(cfg).per_class(real_counts)
    pool = _synthetic_pool(ctx, ds, seed, cache) if uses_synthetic(arm) else None
    data = arm_data(arm, real, pool, add)
    transform = ClassicalAugment(cfg.classical, info.spatial_dims, seed) if data.classical else None

    # Section. The same initial weights for every arm of this seed.
    device = resolve_device(ctx.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nets.build_classifier(cfg.classifier.arch, info.spatial_dims, info.channels, k, **cfg.classifier.kwargs)
    init_sha = _state_sha(model)

    # Section. Train (epoch chosen on val), then predict the test split.
    t0 = time.perf_counter()
    model, history = clf.train_classifier(
        model, data.train, (ds.channel_first("val"), ds.labels["val"]),
        epochs=cfg.classifier.epochs, batch_size=cfg.classifier.batch_size, lr=cfg.classifier.lr,
        weight_decay=cfg.classifier.weight_decay, seed=seed, device=device, transform=transform,
        extra_train=data.extra, progress=(lambda row: on_epoch(arm, seed, row)) if on_epoch else None,
        class_weighting=None if cfg.classifier.class_weighting == "none" else "balanced",
    )
    test_y = ds.labels["test"]
    proba = clf.predict_proba(model, ds.channel_first("test"), device=device)
    selected = next((row for row in history if row["selected"]), history[-1])
    record = {
        "format": RUN_FORMAT,
        "identity": ctx.identity,
        "arm": arm,
        "seed": seed,
        "n_train": {"real": data.n_real, "synthetic": data.n_synthetic},
        "init_sha256": init_sha,
        "selected_epoch": int(selected["epoch"]),
        "val_balanced_accuracy": float(selected["val_balanced_accuracy"]),
        "history": history,
        "metrics": run_metrics(proba, test_y, list(info.class_names)),
        "confusion_matrix": confusion_matrix(test_y, proba.argmax(1), k).tolist(),
        "test_labels_sha256": hashlib.sha256(np.ascontiguousarray(test_y).tobytes()).hexdigest(),
        "test_proba": proba.tolist(),
        "seconds": round(time.perf_counter() - t0, 2),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    write_text_atomic(run_path(ctx.out, arm, seed), json.dumps(record) + "\n")
    return record


# Section. Parallel runs: one spawned process per job slot, each with cores // jobs threads.


@dataclass
class _Worker:
    """A worker process's state, for its lifetime: where progress goes, and its own cache."""

    messages: Any
    cache: JobCache


_WORKER: _Worker | None = None  # set once per spawned worker process by _init_worker


def _init_worker(threads: int, messages: Any) -> None:
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = _Worker(messages, JobCache())


def _worker_job(ctx: JobContext, arm: str, seed: int) -> Job:
    worker = _WORKER if _WORKER is not None else _Worker(None, JobCache())

    def report(a: str, s: int, row: dict[str, float]) -> None:
        if worker.messages is not None:
            worker.messages.put((a, s, dict(row)))

    run_job(ctx, arm, seed, report, worker.cache)
    return arm, seed


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Bars:
    """Rich progress: one bar for the runs (arm × seed), one per run in flight (its epochs)."""

    def __init__(self, total: int, epochs: int, enabled: bool, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not enabled)
        self.runs = self.progress.add_task("runs (arm × seed)", total=total)
        self.epochs = epochs
        self.live: dict[Job, Any] = {}
        self.finished: set[Job] = set()

    def epoch(self, arm: str, seed: int, row: dict[str, float]) -> None:
        key = (arm, seed)
        if key in self.finished:
            return  # a late message from a worker, after its run was counted
        if key not in self.live:
            self.live[key] = self.progress.add_task("", total=self.epochs)
        self.progress.update(self.live[key], completed=int(row["epoch"]),
                             description=f"  {arm} · seed {seed} · val bal acc {row['val_balanced_accuracy']:.3f}")

    def done(self, arm: str, seed: int) -> None:
        self.finished.add((arm, seed))
        task = self.live.pop((arm, seed), None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.advance(self.runs)

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)


def run_jobs(ctx: JobContext, jobs: list[Job], n_procs: int, progress: bool, console: Any = None,
             cache: JobCache | None = None) -> None:
    """Run ``jobs`` in order, or in ``n_procs`` spawned processes (``cores // n_procs`` threads each).

    Args:
        ctx: the benchmark's context.
        jobs: the (arm, seed) runs.
        n_procs: parallel processes; 1 runs in this process, sharing ``cache``.
        progress: Rich progress bars.
        console: a Rich console for the bars.
        cache: for serial runs (a fresh one when None); each worker process keeps its own.
    """
    if not jobs:
        return
    with _Bars(len(jobs), ctx.cfg.classifier.epochs, progress, console) as bars:
        if n_procs <= 1 or len(jobs) == 1:
            cache = cache if cache is not None else JobCache()
            for arm, seed in jobs:
                run_job(ctx, arm, seed, bars.epoch, cache)
                bars.done(arm, seed)
            return
        import multiprocessing
        import queue as queue_mod
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        spawn = multiprocessing.get_context("spawn")
        n_procs = min(n_procs, len(jobs))
        threads = max(1, _cores() // n_procs)
        with spawn.Manager() as manager:
            messages = manager.Queue()
            with ProcessPoolExecutor(n_procs, mp_context=spawn, initializer=_init_worker,
                                     initargs=(threads, messages)) as pool:
                pending = {pool.submit(_worker_job, ctx, arm, seed) for arm, seed in jobs}
                try:
                    while pending:
                        finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                        with contextlib.suppress(queue_mod.Empty):
                            while True:
                                bars.epoch(*messages.get_nowait())
                        for fut in finished:
                            bars.done(*fut.result())
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise

