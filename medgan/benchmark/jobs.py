"""One (arm, seed) run of the benchmark, and many of them, serially or in spawned processes.

:func:`run_job` trains and tests one classifier and writes ``runs/<label>__seed<k>.json`` (the
label names the arm, the fraction and a ratio-sweep variant: :mod:`medgan.benchmark.plan`).
:func:`run_jobs` runs a list of them with Rich progress bars. What consecutive runs in one process
share (the dataset, the subsets, the generators, the latest seed's synthetic pool, the curation
classifiers) is held by a :class:`JobCache`: one per :func:`run_jobs` call for serial runs, one per
worker process for parallel runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.benchmark.arms import ClassicalAugment, arm_data, pretrains, take_per_class, uses_synthetic
from medgan.benchmark.budget import Budget
from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.plan import RUN_FORMAT, ArmRun, Job, parse_arm_label, run_path, subset_seed
from medgan.benchmark.subsets import subset_indices
from medgan.data.dataset import PreparedDataset, load_dataset
from medgan.device import cpu_cores
from medgan.errors import MedganError
from medgan.synth.plan import ClassPlan
from medgan.utils import stop_workers, write_text_atomic

if TYPE_CHECKING:
    from medgan.synth.sampling import LoadedGenerator
    from medgan.synth.translate import LoadedTranslator

__all__ = ["EpochCallback", "JobCache", "JobContext", "run_job", "run_jobs"]

EpochCallback = Callable[[str, int, dict[str, float]], None]
"""``(arm label, seed, history row)`` after every validation of a classifier run."""

Pool = tuple[np.ndarray, np.ndarray]
"""Synthetic images ``(N, C, *spatial)`` uint8 and their int64 labels ``(N,)``."""


@dataclass
class JobContext:
    """What one (arm, seed) run needs; plain data, so it crosses to a spawned process.

    Attributes:
        cfg: the benchmark config.
        out: the benchmark folder.
        data: the dataset's path.
        identity: the benchmark identity hash (written into every run).
        device: where to train.
        budget: every arm's optimisation steps at full data (:func:`medgan.benchmark.budget.step_budget`).
        checkpoints: the GAN of every ``(fraction, subset seed)``; None where none is trained yet.
        budgets: every arm's steps at each fraction, where they differ from ``budget``
            (:func:`medgan.benchmark.budget.fraction_budgets`).
    """

    cfg: BenchmarkConfig
    out: str
    data: str
    identity: str
    device: str
    budget: Budget
    checkpoints: dict[tuple[float, int], str | None] = field(default_factory=dict)
    budgets: dict[float, Budget] = field(default_factory=dict)

    def budget_at(self, fraction: float) -> Budget:
        """The steps of every arm at ``fraction``."""
        return self.budgets.get(fraction, self.budget)

    def checkpoint(self, fraction: float, subset: int) -> str:
        """The GAN checkpoint of ``(fraction, subset)``.

        Raises:
            MedganError: no GAN there.
        """
        found = self.checkpoints.get((fraction, subset))
        if found is None:
            raise MedganError(f"this arm needs synthetic images, but the benchmark has no GAN checkpoint for fraction "
                              f"{fraction:g} (subset seed {subset})")
        return found


class JobCache:
    """What consecutive runs in one process share: datasets, subsets, generators, the latest synthetic
    pool, the curation classifiers.

    Runs go fraction by fraction and seed by seed, so one pool (the latest seed's) is kept; every
    arm of that seed draws from it. A cache lives as long as its owner: one :func:`run_jobs` call,
    or one worker process.

    Args:
        datasets: datasets already loaded, so they are not read again.
    """

    def __init__(self, *datasets: PreparedDataset) -> None:
        self._datasets = {str(ds.path): ds for ds in datasets}
        self._generators: dict[tuple[str, str], LoadedGenerator | LoadedTranslator] = {}
        self._pool_key: tuple[Any, ...] | None = None
        self._pool_need: tuple[int, ...] = ()
        self._pool: Pool | None = None
        self._subsets: dict[tuple[str, float, int, int], np.ndarray] = {}
        self._curators: dict[tuple[Any, ...], Any] = {}

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

    def pool(self, key: tuple[Any, ...], need: list[int], draw: Callable[[list[int]], Pool]) -> Pool:
        """The synthetic pool for ``key`` holding at least ``need[c]`` images of every class ``c``.

        The kept pool serves when its key matches and it is large enough; otherwise ``draw(n)`` draws
        a new one of ``n = max(kept, need)`` per class (kept instead). A larger pool serves a smaller
        need because sample ``j`` of a class under a seed does not depend on how many are drawn, and
        arms take the first images of each class.
        """
        enough = self._pool_key == key and all(h >= n for h, n in zip(self._pool_need, need, strict=True))
        if self._pool is None or not enough:
            if self._pool_key == key:
                need = [max(h, n) for h, n in zip(self._pool_need, need, strict=True)]
            self._pool = None  # free the old pool before drawing the new one
            self._pool, self._pool_key, self._pool_need = draw(list(need)), key, tuple(need)
        return self._pool

    def subset(self, ds: PreparedDataset, fraction: float, seed: int, min_per_class: int) -> np.ndarray:
        """The indices of ``ds``'s train subset (:func:`medgan.benchmark.subsets.subset_indices`), computed once."""
        key = (str(ds.path), fraction, seed, min_per_class)
        if key not in self._subsets:
            self._subsets[key] = subset_indices(ds.labels["train"], fraction, seed, min_per_class)
        return self._subsets[key]

    def curator(self, key: tuple[Any, ...], train: Callable[[], Any]) -> Any:
        """The curation classifier for ``key`` (fraction, subset, ...): ``train()`` once per process."""
        if key not in self._curators:
            self._curators[key] = train()
        return self._curators[key]


def _synthetic_plan(cfg: BenchmarkConfig, ratio: float | None = None) -> ClassPlan:
    """What the ``+synthetic`` arms add per class: the config's policy, or ``ratio`` × real (the sweep)."""
    if ratio is not None:
        return ClassPlan("ratio", ratio=ratio)
    return ClassPlan(cfg.synthetic.policy, ratio=cfg.synthetic.ratio)


@dataclass(frozen=True)
class _Counts:
    """Per-class image counts of one run: real, added (``+synthetic`` and the oversampling control),
    pretraining, and curation candidates."""

    real: list[int]
    add: list[int]
    pretrain: list[int]
    candidates: list[int]


def _counts(cfg: BenchmarkConfig, run: ArmRun, real_counts: list[int]) -> _Counts:
    add = _synthetic_plan(cfg, run.ratio if not pretrains(run.arm) else None).per_class(real_counts)
    ratio = run.ratio if (run.ratio is not None and pretrains(run.arm)) else cfg.pretrain.ratio
    pretrain = [round(ratio * n) for n in real_counts]
    candidates = [math.ceil(cfg.curation.candidates * a) for a in add]
    return _Counts(real_counts, add, pretrain, candidates)


def _pool_need(cfg: BenchmarkConfig, run: ArmRun, real_counts: list[int]) -> list[int]:
    """Synthetic images per class that every arm of this fraction, and this run, take from the pool.

    Drawing for all of them at once lets the arms of a seed share one draw."""
    need = [0] * len(real_counts)
    for r in (*(ArmRun(a, run.fraction) for a in cfg.arms), run):
        if not uses_synthetic(r.arm):
            continue
        c = _counts(cfg, r, real_counts)
        want = (c.real if r.arm == "synthetic-only" else c.pretrain if pretrains(r.arm)
                else c.candidates if r.arm == "real+curated-synthetic" else c.add)
        need = [max(a, b) for a, b in zip(need, want, strict=True)]
    return need


def _synthetic_pool(ctx: JobContext, ds: PreparedDataset, checkpoint: str, seed: int, need: list[int],
                    cache: JobCache) -> Pool:
    """This seed's synthetic images from ``checkpoint``: at least ``need[c]`` of every class ``c``,
    drawn with sampling seed ``seed``."""
    from medgan.synth import translate
    from medgan.synth.sampling import iter_samples

    cfg = ctx.cfg

    def draw(counts: list[int]) -> Pool:
        gen = cache.generator(checkpoint, ctx.device)
        if isinstance(gen, translate.LoadedTranslator):  # a CycleGAN: the other class's train images, translated
            try:
                return translate.translated_pool(gen, ds, counts, seed)
            except MedganError as exc:
                raise MedganError(f"{exc}; the synthetic-only arm takes as many images of each class as the real "
                                  "train split has, and the synthetic-pretrain arms pretrain.ratio times that: leave "
                                  "them out of 'arms' with a translator, or lower the ratios") from None
        images, labels = [], []
        for c, n in enumerate(counts):
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

    return cache.pool((checkpoint, ctx.device, seed, cfg.synthetic.truncation), need, draw)


def _state_sha(model: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _train_curator(ctx: JobContext, ds: PreparedDataset, real: Pool, budget: Budget) -> Any:
    """The curation classifier of a fraction's subset: the benchmark's classifier and budget on the real
    images, seeded with ``curation.seed`` (no augmentation)."""
    import torch

    from medgan.device import resolve_device
    from medgan.networks import classifier as nets
    from medgan.training import classifier as clf

    cfg, info = ctx.cfg, ds.info
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.curation.seed)
        model = nets.build_classifier(cfg.classifier.arch, info.spatial_dims, info.channels, info.num_classes,
                                      **cfg.classifier.kwargs)
    model, _ = clf.train_classifier(
        model, real, (ds.channel_first("val"), ds.labels["val"]), epochs=cfg.classifier.epochs,
        batch_size=cfg.classifier.batch_size, lr=cfg.classifier.lr, weight_decay=cfg.classifier.weight_decay,
        seed=cfg.curation.seed, device=resolve_device(ctx.device), steps=budget.steps,
        eval_every=budget.eval_every,
        class_weighting=None if cfg.classifier.class_weighting == "none" else "balanced",
    )
    return model


def run_job(ctx: JobContext, arm: str, seed: int, on_epoch: EpochCallback | None = None,
            cache: JobCache | None = None) -> dict[str, Any]:
    """Train and test one (arm, seed) run and write ``runs/<label>__seed<k>.json``.

    The model is built under ``torch.manual_seed(seed)`` (the same initial weights for every arm
    of a seed), trained with ``seed`` (the same shuffling generator) for the same number of
    optimisation steps (``ctx.budget_at(fraction)``), and the classical augmentation is seeded with ``seed``;
    only the training data differ between the arms of a fraction. At a fraction below 1 the real
    images are the subset of subset seed ``seed % subsets``, the same for every arm.

    Args:
        ctx: the benchmark's context.
        arm: the run's arm label (:func:`medgan.benchmark.plan.arm_label`; a plain arm at full data).
        seed: the run's seed.
        on_epoch: called after every validation.
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
    run = parse_arm_label(arm)
    subset = subset_seed(cfg, run.fraction, seed)
    device = resolve_device(ctx.device)
    budget = ctx.budget_at(run.fraction)

    # Section. Data: the real train subset (+ synthetic or repeated images), real val for
    # selection, real test for the report.
    full = (ds.channel_first("train"), ds.labels["train"])
    if run.fraction >= 1:
        real = full
    else:
        idx = cache.subset(ds, run.fraction, subset, cfg.min_per_class)
        real = (full[0][idx], full[1][idx])
    val = (ds.channel_first("val"), ds.labels["val"])
    counts = _counts(cfg, run, np.bincount(real[1], minlength=k)[:k].tolist())
    pool, curation = None, None
    if uses_synthetic(run.arm):
        checkpoint = ctx.checkpoint(run.fraction, subset)
        pool = _synthetic_pool(ctx, ds, checkpoint, seed, _pool_need(cfg, run, counts.real), cache)
        if run.arm == "real+curated-synthetic":
            curator = cache.curator((ctx.data, run.fraction, subset, checkpoint),
                                    lambda: _train_curator(ctx, ds, real, budget))
            candidates = take_per_class(*pool, counts.candidates)
            from medgan.metrics.curation import curate_with_classifier

            curation = curate_with_classifier(curator, candidates, real[0], val[0], confidence=cfg.curation.confidence,
                                              percentile=cfg.curation.percentile, device=str(device))
            pool = (candidates[0][curation.keep], candidates[1][curation.keep])
    data = arm_data(run.arm, real, pool, counts.add, pretrain_counts=counts.pretrain, seed=seed)
    transform = ClassicalAugment(cfg.classical, info.spatial_dims, seed) if data.classical else None

    # Section. The same initial weights for every arm of this seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nets.build_classifier(cfg.classifier.arch, info.spatial_dims, info.channels, k, **cfg.classifier.kwargs)
    init_sha = _state_sha(model)

    # Section. Train for the budget's steps (checkpoint chosen on val), then predict the test split.
    t0 = time.perf_counter()
    settings: dict[str, Any] = {"epochs": cfg.classifier.epochs, "batch_size": cfg.classifier.batch_size, "lr": cfg.classifier.lr,
                                 "weight_decay": cfg.classifier.weight_decay, "seed": seed, "device": device,
                                 "transform": transform, "eval_every": budget.eval_every,
                                 "class_weighting": None if cfg.classifier.class_weighting == "none" else "balanced"}
    history: list[dict[str, float]] = []
    steps = budget.steps
    if data.pretrain is not None and budget.pretrain_steps > 0:
        # Pretraining on synthetic images; val picks the checkpoint that fine-tuning starts from.
        model, first = clf.train_classifier(
            model, data.pretrain, val, steps=budget.pretrain_steps,
            progress=(lambda row: on_epoch(arm, seed, row)) if on_epoch else None, **settings)
        history = [{**row, "pretrain": 1.0, "selected": 0.0} for row in first]
        steps = budget.finetune_steps
    done, rounds = budget.steps - steps, len(history)

    def shifted(row: dict[str, float]) -> dict[str, float]:
        return {**row, "step": row["step"] + done, "epoch": row["epoch"] + rounds}

    model, last = clf.train_classifier(
        model, data.train, val, steps=steps, extra_train=data.extra,
        progress=(lambda row: on_epoch(arm, seed, shifted(row))) if on_epoch else None, **settings,
    )
    history += [shifted(row) for row in last]
    test_y = ds.labels["test"]
    proba = clf.predict_proba(model, ds.channel_first("test"), device=device)
    selected = next((row for row in history if row["selected"]), history[-1])
    n_train = {"real": data.n_real, "synthetic": data.n_synthetic}
    if data.n_repeated is not None:
        n_train["repeated"] = data.n_repeated
    record = {
        "format": RUN_FORMAT,
        "identity": ctx.identity,
        "arm": run.arm,
        "label": arm,
        "fraction": run.fraction,
        "ratio": run.ratio,
        "subset_seed": subset,
        "seed": seed,
        "n_train": n_train,
        "init_sha256": init_sha,
        "steps": int(history[-1]["step"]),
        "selected_epoch": int(selected["epoch"]),
        "selected_step": int(selected["step"]),
        # Validation picked the very last checkpoint: the run may have wanted more steps.
        "selected_last": bool(selected is history[-1]),
        "val_balanced_accuracy": float(selected["val_balanced_accuracy"]),
        "history": history,
        "curation": curation.summary() if curation is not None else None,
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


class _Bars:
    """Rich progress: one bar for the runs (arm × seed), one per run in flight (its optimisation steps)."""

    def __init__(self, total: int, steps: int, enabled: bool, console: Any = None) -> None:
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
        self.steps = steps
        self.live: dict[Job, Any] = {}
        self.finished: set[Job] = set()

    def epoch(self, arm: str, seed: int, row: dict[str, float]) -> None:
        key = (arm, seed)
        if key in self.finished:
            return  # a late message from a worker, after its run was counted
        if key not in self.live:
            self.live[key] = self.progress.add_task("", total=self.steps)
        self.progress.update(self.live[key], completed=int(row.get("step", row["epoch"])),
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
    longest = max([ctx.budget, *ctx.budgets.values()], key=lambda b: b.steps).steps
    with _Bars(len(jobs), longest, progress, console) as bars:
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
        threads = max(1, cpu_cores() // n_procs)
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
                    stop_workers(pool)
                    raise

