"""Run a benchmark: prepare the output folder, the GAN, the (arm, seed) runs, then the report.

What one invocation does is a :class:`~medgan.benchmark.plan.JobPlan` (everything, the GAN only, or
given runs); one (arm, seed) run, and running many in parallel, is :mod:`medgan.benchmark.jobs`.

The output folder is resumable rather than built atomically: every finished (arm, seed) run is
written at once to ``runs/<arm>__seed<k>.json`` (atomically), the GAN's run folder ``gan/`` keeps
its checkpoints, and ``benchmark.json`` records what the folder computes (the config, the dataset's
sha256, the GAN's training config or checkpoint hash). Running the same command again continues
where it stopped; a different config is refused (``--overwrite`` starts again). The number of
seeds, the device and the parallelism are not part of that identity, so ``--seeds 10`` after a
5-seed run adds seeds 5 to 9; nor are the arms, the fractions or the ratio sweep, which only add runs.

A data-scarcity sweep (``fractions``) trains one GAN per fraction and subset seed, each on a copy
of that subset only (:mod:`medgan.benchmark.subsets`), and keeps them in ``OUT/gans/``; the GAN of
the whole train split keeps its place at the top of the folder.

Layout::

    OUT/benchmark.json      identity: config, dataset sha256, GAN config or checkpoint sha256
    OUT/benchmark.yaml      the resolved config of the last invocation
    OUT/gan_data/           the train split only (val and test empty): what the GAN trains on
    OUT/gan/                the GAN's run folder (``medgan train`` layout); OUT/gan.json when done
    OUT/gans/f<F>-s<K>/     the same three for fraction F, subset seed K (gan_data/ holds the subset only)
    OUT/runs/<label>__seed<k>.json   one finished run: history, test probabilities, metrics
    OUT/results.json, OUT/report.md, OUT/*.png   the report
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgan.benchmark.arms import adds_synthetic, uses_synthetic
from medgan.benchmark.budget import fraction_budgets, step_budget
from medgan.benchmark.config import BenchmarkConfig, identity, identity_hash, without_volatile
from medgan.benchmark.jobs import JobCache, JobContext, run_jobs
from medgan.benchmark.plan import (
    Job,
    JobPlan,
    is_finished,
    parse_arm_label,
    run_path,
    subset_seed,
    sweep_fractions,
)
from medgan.benchmark.stats import choose_on_validation
from medgan.benchmark.subsets import fraction_label, subset_indices, write_train_copy
from medgan.configio import config_to_dict, flatten_keys, load_config, save_config
from medgan.data.dataset import PreparedDataset, class_counts, describe_images, load_dataset, resolve_class
from medgan.device import cpu_cores
from medgan.errors import MedganError
from medgan.utils import (
    atomic_dir,
    check_free_space,
    check_not_input,
    check_out_folder,
    describe_holder,
    file_sha256,
    lock_holder,
    remove_leftover_files,
    run_lock,
    stop_workers,
    write_text_atomic,
)
from medgan.version import __version__

if TYPE_CHECKING:
    from medgan.synth.sampling import LoadedGenerator
    from medgan.synth.translate import LoadedTranslator

__all__ = ["BenchmarkResult", "JobPlan", "check_checkpoint", "run_benchmark", "run_path"]

OUT_FORMAT = "medgan-benchmark-v1"


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


# Section. The GAN: a given checkpoint, checked; or one trained here on the train split only.


def check_checkpoint(checkpoint: str | Path, ds: PreparedDataset,
                     device: str = "cpu") -> LoadedGenerator | LoadedTranslator:
    """Load a GAN checkpoint and make sure it can serve this benchmark.

    A checkpoint is accepted when it makes samples of the real images' shape, is class-conditional
    with the dataset's classes, and was trained on this dataset: the same file (``medgan train``
    trains on the train split only) or the train-only copy that a benchmark writes.

    Raises:
        MedganError: a shape, class or dataset mismatch (one line saying which).
    """
    from medgan.synth.translate import load_model

    # A cycle checkpoint gives a translator: its samples are the other class's train images, translated.
    gen = load_model(checkpoint, device)
    info = ds.info
    if getattr(gen, "mode", "class") != "class":
        raise MedganError("a domain translator (cycle.target_data) cannot add images of given classes; the benchmark "
                          "needs a class translator (cycle.source_class and cycle.target_class)", gen.checkpoint_path)
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
    if cfg.logger == "tensorboard":
        overrides.append("logger=tensorboard")
    return load_config(TrainConfig, cfg.gan.train_config, overrides)


def _gan_identity(train_cfg: Any) -> dict[str, Any]:
    record = config_to_dict(train_cfg)
    # How it runs and reports, not what it learns (eval_metrics: the benchmark's GAN runs no evaluation).
    for key in ("data", "data_size", "out", "device", "threads", "logger", "eval_metrics"):
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


def _gan_root(out: Path, fraction: float, subset: int) -> Path:
    """Where the GAN of ``(fraction, subset)`` lives: ``OUT`` for the whole split, else ``OUT/gans/f<F>-s<K>``."""
    return out if fraction >= 1 else out / "gans" / f"f{fraction_label(fraction)}-s{subset}"


def _gan_keys(cfg: BenchmarkConfig, plan: JobPlan) -> list[tuple[float, int]]:
    """The ``(fraction, subset seed)`` GANs this plan needs (given runs: those their synthetic arms use)."""
    if plan.runs is not None:
        runs = [(parse_arm_label(label), seed) for label, seed in plan.runs]
        keys = {(r.fraction, subset_seed(cfg, r.fraction, s)) for r, s in runs if uses_synthetic(r.arm)}
    else:
        keys = {(f, subset_seed(cfg, f, s)) for f in cfg.fractions for s in range(cfg.seeds_at(f))}
    return sorted(keys, key=lambda key: (-key[0], key[1]))


def _train_gan(cfg: BenchmarkConfig, ds: PreparedDataset, out: Path, device: str, progress: bool,
               fraction: float = 1.0, subset: int = 0) -> Path:
    """Train the GAN of ``(fraction, subset)`` on that part of the train split only (or resume it), once per
    benchmark, in ``out`` (:func:`_gan_root`); return its checkpoint."""
    from medgan.training import loop
    from medgan.training.checkpoint import RunFolder, list_checkpoints, sampling_checkpoint
    from medgan.training.loggers import make_logger
    from medgan.training.perclass import is_per_class

    done = _trained_gan(out)
    if done is not None:
        return done
    data_dir = out / "gan_data"
    if not (data_dir / "dataset.npz").is_file():
        part = None if fraction >= 1 else (fraction, subset)
        indices = None if part is None else subset_indices(ds.labels["train"], fraction, subset, cfg.min_per_class)
        with atomic_dir(data_dir, overwrite=True) as tmp:
            write_train_copy(ds, tmp, part, indices)
    train_cfg = _train_config(cfg, out, device)
    run_dir = out / "gan"
    # A per-class run killed between its class GANs has no composite yet, but its finished classes resume.
    resume = run_dir if list_checkpoints(run_dir) or is_per_class(run_dir) else None
    t0 = time.perf_counter()
    # Through the module attribute, so a test can watch exactly what the GAN is given.
    logger = make_logger(train_cfg.logger, RunFolder(run_dir).tensorboard)
    loop.train(train_cfg, resume=resume, overwrite=resume is None, progress=progress, logger=logger)
    if train_cfg.select_checkpoint:
        from medgan.metrics.selection import select_checkpoint

        select_checkpoint(run_dir)
    ckpt = sampling_checkpoint(run_dir)
    record = {"checkpoint": str(ckpt.relative_to(out)), "sha256": file_sha256(ckpt), "steps": train_cfg.steps,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_text_atomic(_gan_marker(out), json.dumps(record, indent=2) + "\n")
    return ckpt


def _gan_worker(cfg: BenchmarkConfig, data: str, root: str, device: str, fraction: float, subset: int,
                threads: int) -> str:
    """Train one sweep GAN in a spawned process (``threads`` torch threads); return its checkpoint."""
    import dataclasses

    import torch

    torch.set_num_threads(threads)
    cfg = dataclasses.replace(cfg, threads=threads)
    return str(_train_gan(cfg, load_dataset(data), Path(root), device, False, fraction, subset))


def _last_step(root: Path) -> int:
    """The last logged step of the GAN training in ``root`` (0 before the first log line)."""
    log = root / "gan" / "metrics.jsonl"
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        lines = log.read_text().strip().splitlines()
        return int(json.loads(lines[-1])["step"])
    return 0


def _train_gans(cfg: BenchmarkConfig, ds: PreparedDataset, out: Path, device: str, progress: bool,
                todo: list[tuple[float, int]], console: Any = None) -> None:
    """Train (or resume) the GANs of ``todo``, each on its own subset.

    One at a time in this process, or, on a CPU with ``jobs > 1`` and several GANs to train, in
    ``min(jobs, GANs)`` spawned processes of ``cores // processes`` torch threads each: the small
    networks of a sweep use a second core better as a second GAN than as a second thread of one
    (a whole process per GAN; on a GPU they stay one at a time). GANs that would be left over for a
    last, partly idle round (5 GANs on 2 processes) train first, on all the cores between them: on 2
    CPU cores one 28² cGAN trains at ~103 img/s with 2 threads against 2 × 75 img/s for two with one
    each, so the lone GAN takes ~21 min instead of ~30 with a core idle. A GAN does not depend on how
    it was scheduled: each is the same function of its config and subset (tests/benchmark/test_sweep.py).
    """
    n_procs = min(cfg.jobs, len(todo))
    if n_procs <= 1 or not device.startswith("cpu"):
        for fraction, subset in todo:
            with _threads(cfg.threads):
                _train_gan(cfg, ds, _gan_root(out, fraction, subset), device, progress, fraction, subset)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    steps = _train_config(cfg, out, device).steps
    left_over = len(todo) % n_procs
    batches = [todo[:left_over], todo[left_over:]] if left_over else [todo]
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not progress)
    labels = {key: bars.add_task(f"GAN, fraction {fraction_label(key[0])} (subset {key[1]})", total=steps)
              for key in todo}
    with bars:
        for batch in batches:
            procs = min(n_procs, len(batch))
            threads = max(1, cpu_cores() // procs)
            with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
                tasks = {}
                for fraction, subset in batch:
                    root = _gan_root(out, fraction, subset)
                    fut = pool.submit(_gan_worker, cfg, str(ds.path), str(root), device, fraction, subset, threads)
                    tasks[fut] = (root, labels[(fraction, subset)])
                pending = set(tasks)
                try:
                    while pending:
                        finished, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                        for fut, (root, task) in tasks.items():
                            bars.update(task, completed=steps if fut in finished or fut.done() else _last_step(root))
                        for fut in finished:
                            fut.result()  # a worker's error stops the benchmark here
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    stop_workers(pool)  # a SIGTERM to this process alone must stop the GANs too
                    raise


# Section. The output folder and its identity.


def _defaults_identity() -> dict[str, Any]:
    """The flattened identity of a default benchmark config and a default GAN training config."""
    from medgan.training.config import TrainConfig

    record = {"config": identity(BenchmarkConfig()), "gan": {"train_config": _gan_identity(TrainConfig())}}
    return flatten_keys(json.loads(json.dumps(record, default=str)))


def _open_out(out: Path, ident: dict[str, Any], overwrite: bool) -> str:
    """Create, resume or refuse the output folder (see the module docstring); return the identity
    hash its runs carry.

    A key that the folder's record lacks and that this medgan sets to its default (a config field
    added in a later version), or one that the record has and this medgan no longer counts as part
    of what a benchmark computes (:func:`medgan.benchmark.config.without_volatile`), does not change
    what the folder computes: the folder is resumed under its recorded hash, so its finished runs
    still count.
    """
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
            recorded = dict(old.get("identity", {}))
            if isinstance(recorded.get("config"), dict):
                recorded["config"] = without_volatile(recorded["config"])
            a, b = flatten_keys(recorded), flatten_keys(json.loads(json.dumps(ident, default=str)))
            defaults = _defaults_identity()
            missing = object()
            diff = sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))
            added = [k for k in diff if k not in a and k in defaults and b[k] == defaults[k]]
            if diff == added and isinstance(old.get("identity_hash"), str):
                return str(old["identity_hash"])
            shown = [k for k in diff if k not in added]
            raise MedganError(
                f"holds a benchmark with a different config ({', '.join(shown[:4]) or 'format'} differ); "
                "use another --out, or --overwrite to start again", out)
        return digest
    elif used:
        raise MedganError("folder exists and is not a benchmark folder (no benchmark.json); use another --out, "
                          "or --overwrite to replace it", out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"format": OUT_FORMAT, "medgan_version": __version__, "identity_hash": digest, "identity": ident}
    write_text_atomic(marker, json.dumps(record, indent=2, default=str) + "\n")
    return digest


# Section. One invocation at a time: the folder's lock, the array jobs' locks, the space it needs.


def _holding_out(run: Any) -> Any:
    """Wrap :func:`run_benchmark` so that it runs with the output folder checked and locked.

    A whole benchmark (or ``--only gan``, or ``--report-only``) holds ``OUT`` itself
    (:func:`medgan.utils.run_lock`), and refuses to start while array jobs run in it; one job of an
    array (``--only ARM:SEED``) holds only its runs (``OUT/.runs.ARM__seedK.lock``), so the jobs of an
    array share the folder, and refuses to start while a whole benchmark holds it.
    """
    import functools

    @functools.wraps(run)
    def wrapper(cfg: BenchmarkConfig, **kwargs: Any) -> BenchmarkResult:
        out = Path(kwargs.get("out") or cfg.out).expanduser()
        plan = kwargs.get("plan") or JobPlan.everything()
        check_out_folder(out)
        with contextlib.ExitStack() as held:
            if plan.runs is None:
                held.enter_context(run_lock(out))
                jobs = sorted(out.glob(".runs.*.lock")) if out.is_dir() else []
                busy = [h for h in (lock_holder(out / j.name[1:-5]) for j in jobs) if h is not None]
                if busy:
                    who = describe_holder(busy[0])
                    raise MedganError(f"jobs of an array are running in this folder ({who}); wait for them, "
                                      "or choose another --out", out)
                if out.is_dir():
                    remove_leftover_files(out)  # half-written files of a run that was killed
            else:
                whole = lock_holder(out)
                if whole is not None:
                    who = describe_holder(whole)
                    raise MedganError(f"a whole benchmark is running in this folder ({who}); it does every "
                                      "run: wait for it, or choose another --out", out)
                for arm, seed in plan.runs:  # OUT/.runs.ARM__seedK.lock: a dot file does not make OUT "used"
                    held.enter_context(run_lock(out / f"runs.{run_path(out, arm, seed).stem}"))
            return run(cfg, **kwargs)

    return wrapper


def _estimated_bytes(cfg: BenchmarkConfig, ds: PreparedDataset, out: Path, device: str,
                     train_gan: bool) -> int:
    """Roughly what the benchmark writes, erring large: the train-split copy and checkpoints of each GAN
    (weights, EMA and Adam state of G and D, counted on the meta device), the runs and the report."""
    per_gan = ds.images["train"].nbytes
    if train_gan:
        try:
            import torch

            from medgan.networks import build_networks
            from medgan.training.loop import model_spec

            train_cfg = _train_config(cfg, out, device)
            with torch.device("meta"):
                G, D = build_networks(model_spec(train_cfg, ds))
            g, d = (sum(p.numel() for p in m.parameters()) for m in (G, D))
            per_gan += 4 * (4 * g + 3 * d) * (int(train_cfg.keep_checkpoints) + 1)
        except Exception:  # an estimate only: a network that cannot be built on "meta" gets a flat allowance
            per_gan += 200 * 10**6
    gans = len(getattr(cfg, "fractions", [1.0]) or [1.0]) if train_gan else 0
    runs = len(cfg.arms) * cfg.seeds * (1 + len(getattr(getattr(cfg, "synthetic", None), "ratios", []) or []))
    per_run = 64 * 1024 + 32 * len(ds.labels["test"]) * max(ds.info.num_classes, 2)
    return gans * per_gan + runs * per_run + 20 * 10**6


# Section. The whole benchmark.


def _resolve_target(cfg: BenchmarkConfig, ds: PreparedDataset) -> int:
    try:
        return resolve_class(cfg.target_class, list(ds.info.class_names))
    except MedganError as exc:
        raise MedganError(f"config key 'target_class': {exc} in {ds.info.name}") from None


def _check_two_classes(ds: PreparedDataset) -> None:
    """Refuse data on which no classifier can be compared: fewer than two classes with images in a split."""
    names = ds.info.class_names
    for split in ("train", "val", "test"):
        counts = class_counts(ds.labels[split], len(names))
        present = [f"'{names[c]}' ({k})" for c, k in enumerate(counts) if k]
        if len(present) < 2:
            held = f"only {present[0]}" if present else "no images"
            raise MedganError(f"the benchmark needs images of at least two classes in every split; {split} has "
                              f"{held} (classes: {', '.join(names)})", ds.path)


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


@_holding_out
def run_benchmark(
    cfg: BenchmarkConfig,
    *,
    out: str | Path | None = None,
    checkpoint: str | Path | None = None,
    plan: JobPlan | None = None,
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
        plan: what to do (default :meth:`JobPlan.everything`): the GAN only, or given ``(arm, seed)``
            runs and no report, e.g. one per job of a SLURM array.
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

    plan = plan if plan is not None else JobPlan.everything()
    out = Path(out if out is not None else cfg.out).expanduser()
    device = str(resolve_device(cfg.device))

    # Section. Inputs, checked before anything is written.
    ds = load_dataset(cfg.data, size=cfg.data_size)
    for split in ("train", "val", "test"):
        if len(ds.labels[split]) == 0:
            raise MedganError(f"the {split} split is empty; the benchmark needs official train/val/test splits", ds.path)
    _check_two_classes(ds)
    target = _resolve_target(cfg, ds)
    needs_gan = any(uses_synthetic(a) for a in cfg.arms)
    given = checkpoint if checkpoint is not None else cfg.gan.checkpoint
    if given is not None and needs_gan and min(cfg.fractions) < 1:
        raise MedganError(
            f"a given GAN checkpoint serves the whole train split only, and this benchmark has fractions "
            f"{', '.join(fraction_label(f) for f in cfg.fractions if f < 1)}: the GAN of a fraction must train on that "
            "subset alone. Drop --checkpoint (each fraction's GAN is trained here), or use --fractions 1.0")
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
    check_not_input(out, {"the dataset": ds.path, "the GAN checkpoint": given,
                          "the GAN's training config": cfg.gan.train_config})
    train_gan = needs_gan and given is None
    check_free_space(out, _estimated_bytes(cfg, ds, out, device, train_gan), "the benchmark")
    digest = _open_out(out, ident, overwrite and not report_only)
    save_config(cfg, out / "benchmark.yaml")
    result = BenchmarkResult(out=out)

    # Section. The GANs: one per (fraction, subset seed), each trained on that subset only (or given).
    ckpts: dict[tuple[float, int], str | None] = {}
    if given is not None:
        ckpts[(1.0, 0)] = str(given)
    elif needs_gan or plan.gan_only:
        keys = _gan_keys(cfg, plan)
        todo = [key for key in keys if _trained_gan(_gan_root(out, *key)) is None]
        if todo and not report_only:
            if plan.needs_trained_gan():
                # Jobs of an array must not each train their own GAN.
                raise MedganError("the GAN is not trained yet in this folder; run the benchmark with --only gan "
                                  "first (or without --only)", _gan_root(out, *todo[0]))
            if not plan.partial:
                _train_gans(cfg, ds, out, device, progress, todo, console)
        for key in keys:
            trained = _trained_gan(_gan_root(out, *key))
            ckpts[key] = str(trained) if trained is not None else None
    if plan.gan_only:
        return result

    # Section. The (arm, seed) runs: fraction by fraction and seed by seed, so that partial results
    # are already paired; every arm gets the same number of optimisation steps.
    ctx = JobContext(cfg=cfg, out=str(out), data=str(ds.path), identity=digest, device=device,
                     budget=step_budget(cfg, len(ds.labels["train"])), checkpoints=ckpts,
                     budgets=fraction_budgets(cfg, ds.labels["train"], ds.info.num_classes))
    wanted = plan.wanted(cfg)
    cache = _run_part(ctx, wanted, result, report_only, progress, console, ds)
    # The ratio sweep: its arm may be chosen on the validation results of the runs above.
    sweep_arms = {f: _sweep_arm(cfg, out, f, ctx.identity) for f in sweep_fractions(cfg)} if cfg.synthetic.ratios else {}
    sweep = plan.sweep(cfg, sweep_arms)
    _run_part(ctx, sweep, result, report_only, progress, console, ds, cache)
    if not plan.reports:
        return result

    # Section. The report.
    from medgan.benchmark.report import write_report

    missing = [f"{a}:{s}" for a, s in wanted + sweep if not is_finished(out, a, s, ctx.identity)]
    if _sweeps(cfg):
        missing += [f"the ratio sweep at fraction {fraction_label(f)}" for f in sweep_fractions(cfg)
                    if sweep_arms.get(f) is None]
    if missing:
        raise MedganError(f"{len(missing)} run(s) not finished yet ({', '.join(missing[:4])}"
                          f"{', …' if len(missing) > 4 else ''}); run them (e.g. --only ARM:SEED) before --report-only",
                          out)
    if needs_gan and any(ckpts.get(key) is None for key in _gan_keys(cfg, plan)) and given is None:
        raise MedganError("the GAN is not trained yet in this folder (no gan.json); run the benchmark without "
                          "--report-only", out)
    runs = {(a, s): json.loads(run_path(out, a, s).read_text()) for a, s in wanted + sweep}
    result.results = write_report(
        out, cfg, ds, target, runs, checkpoints=ckpts, budget=ctx.budget, budgets=ctx.budgets, quick=quick,
        console=console, progress=progress,
    )
    return result


def _run_part(ctx: JobContext, jobs: list[Job], result: BenchmarkResult, report_only: bool, progress: bool,
              console: Any, ds: PreparedDataset, cache: JobCache | None = None) -> JobCache:
    """Run the unfinished ``jobs`` (none with ``report_only``), recording them in ``result``; return the cache."""
    cache = cache if cache is not None else JobCache(ds)
    out = Path(ctx.out)
    todo = [(a, s) for a, s in jobs if not is_finished(out, a, s, ctx.identity)]
    result.skipped += [j for j in jobs if j not in todo]
    if not report_only and todo:
        with _threads(ctx.cfg.threads):
            run_jobs(ctx, todo, ctx.cfg.jobs, progress, console, cache)
        result.ran += todo
    return cache


def _sweeps(cfg: BenchmarkConfig) -> bool:
    """Whether the ratio sweep has an arm to vary (a synthetic arm that adds to the real images)."""
    return bool(cfg.synthetic.ratios) and any(adds_synthetic(a) for a in cfg.arms)


def _sweep_arm(cfg: BenchmarkConfig, out: Path, fraction: float, ident: str) -> str | None:
    """The arm the ratio sweep varies at ``fraction``: ``synthetic.ratio_arm``, or with ``best`` the synthetic
    arm with the best mean validation balanced accuracy (None until all their runs are finished)."""
    if not _sweeps(cfg):
        return None
    if cfg.synthetic.ratio_arm != "best":
        return cfg.synthetic.ratio_arm
    from medgan.benchmark.plan import arm_label

    val: dict[str, list[float]] = {}
    for arm in (a for a in cfg.arms if adds_synthetic(a)):
        label = arm_label(arm, fraction)
        if not all(is_finished(out, label, s, ident) for s in range(cfg.seeds_at(fraction))):
            return None
        val[arm] = [json.loads(run_path(out, label, s).read_text())["val_balanced_accuracy"]
                    for s in range(cfg.seeds_at(fraction))]
    return choose_on_validation(val)

