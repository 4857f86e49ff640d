"""Run a benchmark: prepare the output folder, the GAN, the (arm, seed) runs, then the report.

The output folder is resumable rather than built atomically: every finished (arm, seed) run is
written at once to ``runs/<arm>__seed<k>.json`` (atomically), the GAN's run folder ``gan/`` keeps
its checkpoints, and ``benchmark.json`` records what the folder computes (the config, the dataset's
sha256, the GAN's training config or checkpoint hash). Running the same command again continues
where it stopped; a different config is refused (``--overwrite`` starts again). The number of
seeds, the device and the parallelism are not part of that identity, so ``--seeds 10`` after a
5-seed run adds seeds 5 to 9.

Layout::

    OUT/benchmark.json      identity: config, dataset sha256, GAN config or checkpoint sha256
    OUT/benchmark.yaml      the resolved config of the last invocation
    OUT/gan_data/           the train split only (val and test empty): what the GAN trains on
    OUT/gan/                the GAN's run folder (``medgan train`` layout); OUT/gan.json when done
    OUT/runs/<arm>__seed<k>.json   one finished run: history, test probabilities, metrics
    OUT/results.json, OUT/report.md, OUT/*.png   the report
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan import __version__
from medgan.benchmark.arms import (
    ClassicalAugment,
    arm_data,
    uses_synthetic,
    write_train_only,
)
from medgan.benchmark.config import BenchmarkConfig, identity, identity_hash
from medgan.configio import config_to_dict, load_config, save_config
from medgan.data.dataset import PreparedDataset, describe_images, load_dataset, resolve_class
from medgan.errors import MedganError
from medgan.synth.plan import ClassPlan
from medgan.utils import atomic_dir, file_sha256, write_text_atomic

if TYPE_CHECKING:
    from medgan.synth.sampling import LoadedGenerator

__all__ = ["BenchmarkResult", "JobContext", "check_checkpoint", "parse_only", "run_benchmark", "run_path"]

RUN_FORMAT = "medgan-benchmark-run-v1"
OUT_FORMAT = "medgan-benchmark-v1"

EpochCallback = Callable[[str, int, dict[str, float]], None]
"""``(arm, seed, history row)`` after every classifier epoch."""


@dataclass
class JobContext:
    """What one (arm, seed) run needs; plain data, so it crosses to a spawned process."""

    cfg: BenchmarkConfig
    out: str
    data: str
    checkpoint: str | None
    identity: str
    device: str


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` returns.

    Attributes:
        out: the output folder.
        ran: the (arm, seed) runs trained by this call.
        skipped: the (arm, seed) runs found finished and reused.
        results: the content of ``results.json`` (None when no report was written).
    """

    out: Path
    ran: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    results: dict[str, Any] | None = None


def run_path(out: str | Path, arm: str, seed: int) -> Path:
    """``OUT/runs/<arm>__seed<k>.json``."""
    return Path(out) / "runs" / f"{arm}__seed{seed}.json"


def parse_only(items: list[str], cfg: BenchmarkConfig) -> list[tuple[str, int]] | str:
    """Parse ``--only`` values: ``gan``, or ``ARM:SEED`` (repeatable).

    Raises:
        MedganError: an unknown arm, a seed outside ``0 .. seeds-1``, or ``gan`` mixed with runs.
    """
    if items == ["gan"]:
        return "gan"
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
    return jobs


# Section. The GAN: a given checkpoint, checked; or one trained here on the train split only.


def check_checkpoint(checkpoint: str | Path, ds: PreparedDataset, device: str = "cpu") -> LoadedGenerator:
    """Load a GAN checkpoint and make sure it can serve this benchmark.

    A checkpoint is accepted when it makes samples of the real images' shape, is class-conditional
    with the dataset's classes, and was trained on this dataset: the same file (``medgan train``
    trains on the train split only) or the train-only copy that a benchmark writes.

    Raises:
        MedganError: a shape, class or dataset mismatch (one line saying which).
    """
    from medgan.synth.sampling import load_generator

    gen = load_generator(checkpoint, device)
    info = ds.info
    made = describe_images([gen.channels, *gen.size])
    want = describe_images([info.channels, *info.size])
    if made != want:
        raise MedganError(
            f"the checkpoint makes synthetic samples of the wrong shape ({made}); {info.name} images are {want}. "
            "Use a checkpoint trained at this size (or set data_size)", gen.checkpoint_path)
    if gen.num_classes == 0:
        raise MedganError("the checkpoint's generator is unconditional; the benchmark adds samples of given "
                          "classes, so it needs a class-conditional GAN (model.conditional: true)", gen.checkpoint_path)
    gen.check_trained_on(info, "the benchmark data")
    return gen


def _train_config(cfg: BenchmarkConfig, out: Path, device: str) -> Any:
    """The GAN's TrainConfig: the named config, the benchmark's overrides, and its own data and folder."""
    from medgan.training.config import TrainConfig

    overrides: list[str] = list(cfg.gan.overrides)
    if cfg.gan.steps is not None:
        overrides.append(f"steps={cfg.gan.steps}")
    # The GAN trains on the train-only copy; FID during training would need a val/test split.
    overrides += [f"data={out / 'gan_data'}", "data_size=null", f"out={out / 'gan'}", f"device={device}",
                  "fid_every=0", f"threads={cfg.threads}"]
    return load_config(TrainConfig, cfg.gan.train_config, overrides)


def _gan_identity(train_cfg: Any) -> dict[str, Any]:
    record = config_to_dict(train_cfg)
    for key in ("data", "data_size", "out", "device", "threads"):
        record.pop(key, None)
    return record


def _gan_marker(out: Path) -> Path:
    return out / "gan.json"


def _trained_gan(out: Path) -> Path | None:
    """The finished GAN checkpoint in ``out``, if the benchmark trained one already."""
    marker = _gan_marker(out)
    if not marker.is_file():
        return None
    path = out / json.loads(marker.read_text())["checkpoint"]
    return path if path.is_file() else None


def _train_gan(cfg: BenchmarkConfig, ds: PreparedDataset, out: Path, device: str, progress: bool) -> Path:
    """Train the GAN on the train split only (or resume it), once per benchmark; return its checkpoint."""
    from medgan.training import loop
    from medgan.training.checkpoint import find_checkpoint, list_checkpoints

    done = _trained_gan(out)
    if done is not None:
        return done
    data_dir = out / "gan_data"
    if not (data_dir / "dataset.npz").is_file():
        with atomic_dir(data_dir, overwrite=True) as tmp:
            write_train_only(ds, tmp)
    train_cfg = _train_config(cfg, out, device)
    run_dir = out / "gan"
    resume = run_dir if list_checkpoints(run_dir) else None
    t0 = time.perf_counter()
    # Through the module attribute, so a test can watch exactly what the GAN is given.
    loop.train(train_cfg, resume=resume, overwrite=resume is None, progress=progress)
    ckpt = find_checkpoint(run_dir)
    record = {"checkpoint": str(ckpt.relative_to(out)), "sha256": file_sha256(ckpt), "steps": train_cfg.steps,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_text_atomic(_gan_marker(out), json.dumps(record, indent=2) + "\n")
    return ckpt


# Section. The output folder and its identity.


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return out


def _open_out(out: Path, ident: dict[str, Any], overwrite: bool) -> None:
    """Create, resume or refuse the output folder (see the module docstring)."""
    if out.exists() and not out.is_dir():
        raise MedganError("exists and is not a folder", out)
    marker = out / "benchmark.json"
    # Temporary files of atomic writes start with a dot; they do not make a folder "used".
    used = out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())
    digest = identity_hash(ident)
    if used and overwrite:
        shutil.rmtree(out)
    elif marker.is_file():
        try:
            old = json.loads(marker.read_text())
        except json.JSONDecodeError:
            raise MedganError("unreadable benchmark.json; use another --out, or --overwrite", out) from None
        if old.get("identity_hash") != digest:
            a, b = _flatten(old.get("identity", {})), _flatten(ident)
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise MedganError(
                f"holds a benchmark with a different config ({', '.join(diff[:4]) or 'format'} differ); "
                "use another --out, or --overwrite to start again", out)
        return
    elif used:
        raise MedganError("folder exists and is not a benchmark folder (no benchmark.json); use another --out, "
                          "or --overwrite to replace it", out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"format": OUT_FORMAT, "medgan_version": __version__, "identity_hash": digest, "identity": ident}
    write_text_atomic(marker, json.dumps(record, indent=2, default=str) + "\n")


# Section. One (arm, seed) run.

# Per-process memo: the dataset, the generator and the latest seed's synthetic pool.
_MEMO: dict[str, Any] = {}


def _dataset(ctx: JobContext) -> PreparedDataset:
    key = f"ds:{ctx.data}"
    if key not in _MEMO:
        _MEMO[key] = load_dataset(ctx.data)
    return _MEMO[key]


def _synthetic_plan(cfg: BenchmarkConfig) -> ClassPlan:
    """What the ``+synthetic`` arms add per class: the config's policy as a :class:`ClassPlan`."""
    return ClassPlan(cfg.synthetic.policy, ratio=cfg.synthetic.ratio)


def _synthetic_pool(ctx: JobContext, ds: PreparedDataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """This seed's synthetic images: enough of every class for every arm, drawn with sampling seed ``seed``."""
    from medgan.synth.sampling import iter_samples, load_generator

    if ctx.checkpoint is None:
        raise MedganError("this arm needs synthetic images, but the benchmark has no GAN checkpoint")
    cfg, k = ctx.cfg, ds.info.num_classes
    real_counts = np.bincount(ds.labels["train"], minlength=k)[:k].tolist()
    need = [0] * k
    if any(uses_synthetic(a) and a != "synthetic-only" for a in cfg.arms):
        need = _synthetic_plan(cfg).per_class(real_counts)
    if "synthetic-only" in cfg.arms:
        need = [max(a, b) for a, b in zip(need, real_counts, strict=True)]
    # The file's size and time stand for its content: a retrained checkpoint at the same path is reloaded.
    stat = Path(ctx.checkpoint).stat()
    gen_key = f"gen:{ctx.checkpoint}:{stat.st_size}:{stat.st_mtime_ns}:{ctx.device}"
    key = f"pool:{gen_key}:{seed}:{need}:{cfg.synthetic.truncation}"
    if key in _MEMO:
        return _MEMO[key]
    if gen_key not in _MEMO:
        _MEMO[gen_key] = load_generator(ctx.checkpoint, ctx.device)
    gen = _MEMO[gen_key]
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
                          f"{tuple(shape)}; use a checkpoint trained on this data at this size", ctx.checkpoint)
    for stale in [name for name in _MEMO if name.startswith("pool:")]:
        del _MEMO[stale]
    _MEMO[key] = pool
    return pool


def _state_sha(model: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_job(ctx: JobContext, arm: str, seed: int, on_epoch: EpochCallback | None = None) -> dict[str, Any]:
    """Train and test one (arm, seed) run and write ``runs/<arm>__seed<k>.json``.

    The model is built under ``torch.manual_seed(seed)`` (the same initial weights for every arm
    of a seed), trained with ``seed`` (the same shuffling generator), and the classical
    augmentation is seeded with ``seed``; only the training data differ between arms.
    """
    import torch

    from medgan.benchmark.stats import confusion_matrix, run_metrics
    from medgan.device import resolve_device
    from medgan.networks import classifier as nets
    from medgan.training import classifier as clf

    cfg, ds = ctx.cfg, _dataset(ctx)
    info = ds.info
    k = info.num_classes

    # Section. Data: real train (+ synthetic), real val for epoch selection, real test for the report.
    real = (ds.channel_first("train"), ds.labels["train"])
    real_counts = np.bincount(real[1], minlength=k)[:k].tolist()
    add = _synthetic_plan(cfg).per_class(real_counts)
    pool = _synthetic_pool(ctx, ds, seed) if uses_synthetic(arm) else None
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

_QUEUE: Any = None


def _init_worker(threads: int, queue: Any) -> None:
    import torch

    global _QUEUE
    torch.set_num_threads(threads)
    _QUEUE = queue


def _worker_job(ctx: JobContext, arm: str, seed: int) -> tuple[str, int]:
    def report(a: str, s: int, row: dict[str, float]) -> None:
        if _QUEUE is not None:
            _QUEUE.put((a, s, dict(row)))

    run_job(ctx, arm, seed, report)
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
        self.live: dict[tuple[str, int], Any] = {}
        self.finished: set[tuple[str, int]] = set()

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


def _run_jobs(ctx: JobContext, jobs: list[tuple[str, int]], n_procs: int, progress: bool, console: Any) -> None:
    if not jobs:
        return
    with _Bars(len(jobs), ctx.cfg.classifier.epochs, progress, console) as bars:
        if n_procs <= 1 or len(jobs) == 1:
            for arm, seed in jobs:
                run_job(ctx, arm, seed, bars.epoch)
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


# Section. The whole benchmark.


def _resolve_target(cfg: BenchmarkConfig, ds: PreparedDataset) -> int:
    try:
        return resolve_class(cfg.target_class, list(ds.info.class_names))
    except MedganError as exc:
        raise MedganError(f"config key 'target_class': {exc} in {ds.info.name}") from None


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_benchmark(
    cfg: BenchmarkConfig,
    *,
    out: str | Path | None = None,
    checkpoint: str | Path | None = None,
    only: list[tuple[str, int]] | str | None = None,
    report_only: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    quick: bool = False,
    console: Any = None,
) -> BenchmarkResult:
    """Run (or resume) a benchmark and write its report.

    Args:
        cfg: the resolved config (``--quick`` already applied by the loader).
        out: the output folder (default ``cfg.out``).
        checkpoint: a GAN checkpoint (file or run folder) instead of training one.
        only: ``"gan"`` to train the GAN only, or a list of ``(arm, seed)`` runs to do (no report),
            e.g. one per job of a SLURM array.
        report_only: aggregate the finished runs into the report; train nothing.
        overwrite: replace an existing output folder instead of resuming it.
        progress: Rich progress bars.
        quick: recorded in the report (the loader applied the quick overrides).
        console: a Rich console for the bars.

    Raises:
        MedganError: a bad target class or checkpoint, a folder holding another benchmark, runs
            missing for ``report_only``, or anything the data and training code refuse.
    """
    from medgan.device import resolve_device

    out = Path(out if out is not None else cfg.out).expanduser()
    device = str(resolve_device(cfg.device))
    seeds = list(range(cfg.seeds))

    # Section. Inputs, checked before anything is written.
    ds = load_dataset(cfg.data, size=cfg.data_size)
    if ds.info.num_classes < 2:
        raise MedganError("the benchmark needs at least two classes", ds.path)
    for split in ("train", "val", "test"):
        if len(ds.labels[split]) == 0:
            raise MedganError(f"the {split} split is empty; the benchmark needs official train/val/test splits", ds.path)
    target = _resolve_target(cfg, ds)
    needs_gan = any(uses_synthetic(a) for a in cfg.arms)
    given = checkpoint if checkpoint is not None else cfg.gan.checkpoint
    gan_ident: dict[str, Any]
    if given is not None:
        gen = check_checkpoint(given, ds, "cpu")
        gan_ident = {"checkpoint_sha256": gen.checkpoint_sha256}
        given = gen.checkpoint_path
    else:
        gan_ident = {"train_config": _gan_identity(_train_config(cfg, out, device))}
    config_ident = identity(cfg)
    config_ident["gan"] = {k: v for k, v in config_ident["gan"].items() if k not in ("train_config", "checkpoint")}
    ident = {"config": config_ident, "dataset_sha256": ds.info.sha256, "gan": gan_ident}

    # Section. The output folder: new, resumed, or refused.
    if report_only and not (out / "benchmark.json").is_file():
        raise MedganError("no benchmark here to report on (no benchmark.json)", out)
    _open_out(out, ident, overwrite and not report_only)
    save_config(cfg, out / "benchmark.yaml")
    result = BenchmarkResult(out=out)

    # Section. The GAN, trained once on the train split (or given).
    ckpt: str | None = str(given) if given is not None else None
    if ckpt is None and (needs_gan or only == "gan"):
        trained = _trained_gan(out)
        if trained is None and not report_only:
            if isinstance(only, list) and any(uses_synthetic(a) for a, _ in only):
                # Jobs of an array must not each train their own GAN.
                raise MedganError("the GAN is not trained yet in this folder; run the benchmark with --only gan "
                                  "first (or without --only)", out)
            if not isinstance(only, list):
                with _threads(cfg.threads):
                    trained = _train_gan(cfg, ds, out, device, progress)
        ckpt = str(trained) if trained is not None else None
    if only == "gan":
        return result

    # Section. The (arm, seed) runs: seed by seed, so that partial results are already paired.
    ctx = JobContext(cfg=cfg, out=str(out), data=str(ds.path), checkpoint=ckpt, identity=identity_hash(ident),
                     device=device)
    wanted = only if isinstance(only, list) else [(arm, s) for s in seeds for arm in cfg.arms]
    todo = [(a, s) for a, s in wanted if not _finished(out, a, s, ctx.identity)]
    result.skipped = [j for j in wanted if j not in todo]
    if not report_only and todo:
        _MEMO[f"ds:{ds.path}"] = ds
        with _threads(cfg.threads):
            _run_jobs(ctx, todo, cfg.jobs, progress, console)
        result.ran = todo
    if isinstance(only, list):
        return result

    # Section. The report.
    from medgan.benchmark.report import write_report

    missing = [f"{a}:{s}" for s in seeds for a in cfg.arms if not _finished(out, a, s, ctx.identity)]
    if missing:
        raise MedganError(f"{len(missing)} run(s) not finished yet ({', '.join(missing[:4])}"
                          f"{', …' if len(missing) > 4 else ''}); run them (e.g. --only ARM:SEED) before --report-only",
                          out)
    if needs_gan and ckpt is None:
        raise MedganError("the GAN is not trained yet in this folder (no gan.json); run the benchmark without "
                          "--report-only", out)
    runs = {(a, s): json.loads(run_path(out, a, s).read_text()) for s in seeds for a in cfg.arms}
    result.results = write_report(
        out, cfg, ds, target, runs, checkpoint=ckpt, quick=quick, console=console, progress=progress,
    )
    return result


def _finished(out: Path, arm: str, seed: int, ident: str) -> bool:
    path = run_path(out, arm, seed)
    if not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False  # cannot happen with atomic writes, but a hand-edited file is simply redone
    return record.get("format") == RUN_FORMAT and record.get("identity") == ident
