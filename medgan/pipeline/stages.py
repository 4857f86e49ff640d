"""``medgan run``: five resumable stages from a folder of scans to an audited synthetic set and a report.

Layout of the output folder::

    OUT/index.md              every artefact, the figures a reader needs first
    OUT/run.yaml              the run's source, options and --config, resolved
    OUT/labels_matched.csv    with --labels: the labels CSV matched to files (preprocess's manifest)
    OUT/preprocess/           dataset.npz, dataset.json, sources.csv (medgan preprocess)
    OUT/train/                derived.json (how the config was derived), run/ (a medgan train run folder)
    OUT/evaluate/             metrics.json, summary.md, grid_class_<c>.png, c2st_extremes_class_<c>.png,
                              memorisation_pairs.png
    OUT/export/               synthetic/ (samples, manifest.csv, provenance.json), gate.json, gate.csv
    OUT/benchmark/            report.md, results.json, figures (a medgan benchmark folder)
    OUT/<stage>/stage.json    the done-marker: the stage's inputs, their hash, a summary

**Resuming.** A stage is finished when its ``stage.json`` records the same inputs as now: its own
settings and data (the source files' sizes and times, the dataset's and checkpoint's sha256, its
config) and the digest of the previous stage's ``stage.json``. So running the command again skips
every finished stage, and a stage that runs again (its output deleted, or its inputs changed) makes
every later stage run again too. Stages that write one folder build it in a temporary sibling and
rename it (preprocess, evaluate, export); training and the benchmark are resumable by design and
continue an interrupted attempt with the same inputs; their marker is written last.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from medgan.configio import config_to_dict, to_dataclass
from medgan.data.dataset import PreparedDataset, load_dataset
from medgan.data.preprocess import PreprocessOptions
from medgan.errors import MedganError
from medgan.pipeline.config import RunConfig
from medgan.pipeline.derive import DerivedTrain, derive_benchmark_config, derive_train_config
from medgan.pipeline.index import write_index
from medgan.pipeline.labels import RunSources, resolve_sources, write_manifest
from medgan.pipeline.progress import RunDisplay
from medgan.utils import atomic_dir, check_not_input, check_out_folder, run_lock, write_text_atomic
from medgan.version import __version__

__all__ = ["STAGES", "PipelineResult", "RunOptions", "StageReport", "run_pipeline"]

STAGES: tuple[str, ...] = ("preprocess", "train", "evaluate", "export", "benchmark")
MARKER = "stage.json"
_PENDING = ".inputs_hash"  # the inputs an unfinished resumable stage was started with
_FORMAT = "medgan-run-stage-v1"


@dataclass
class RunOptions:
    """The arguments of ``medgan run``.

    Args:
        source: a folder of class folders, or any folder of images with ``labels``.
        out: the output folder.
        labels: a labels CSV (:mod:`medgan.pipeline.labels`).
        target_class: the class the benchmark reports first (default the smallest class).
        size: the prepared images' side in pixels (a square, or a cube for volumes).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        steps: training steps (overrides the derived config and ``--config``).
        config: the ``--config`` YAML, loaded.
        config_path: where it came from (recorded).
        progress: draw the progress display.
    """

    source: Path
    out: Path
    labels: Path | None = None
    target_class: str | None = None
    size: int = 64
    device: str = "auto"
    steps: int | None = None
    config: RunConfig = field(default_factory=RunConfig)
    config_path: Path | None = None
    progress: bool = True


@dataclass
class StageReport:
    """One stage of one invocation: ``ran`` or ``skipped`` (already finished), with its summary."""

    index: int
    name: str
    status: str
    seconds: float
    summary: dict[str, Any]


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` did, and where the reader starts (``index``)."""

    out: Path
    stages: list[StageReport]
    index: Path

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.stages if s.status == "ran"]

    @property
    def skipped(self) -> list[str]:
        return [s.name for s in self.stages if s.status == "skipped"]


@dataclass
class _Context:
    """What the stages share within one invocation."""

    opts: RunOptions
    display: RunDisplay
    sources: RunSources
    preprocess_options: PreprocessOptions
    device: str = "cpu"
    dataset: PreparedDataset | None = None
    train: DerivedTrain | None = None
    checkpoint: Path | None = None
    checkpoint_sha256: str = ""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.opts.out

    @property
    def ds(self) -> PreparedDataset:
        assert self.dataset is not None, "the preprocess stage has not run"
        return self.dataset


@dataclass(frozen=True)
class _Stage:
    name: str
    inputs: Callable[[_Context], dict[str, Any]]
    run: Callable[[_Context, Path], dict[str, Any]]
    load: Callable[[_Context, Path, dict[str, Any]], None]
    resumable: bool = False


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` atomically unless the file already holds it (a finished run leaves files untouched)."""
    if not (path.is_file() and path.read_text() == text):
        write_text_atomic(path, text)


# Section. Stage 1: preprocess.


def _preprocess_inputs(ctx: _Context) -> dict[str, Any]:
    return {
        "sources": ctx.sources.fingerprint,
        "labels_from": ctx.sources.labels_from,
        "options": asdict(ctx.preprocess_options),
    }


def _preprocess_run(ctx: _Context, folder: Path) -> dict[str, Any]:
    from medgan.data.preprocess import preprocess

    src: Path | None = ctx.opts.source
    manifest = None
    # With pseudonymise, the matched labels (real paths and patient IDs) must not stay in OUT.
    scratch = Path(tempfile.mkdtemp(prefix="medgan-run-")) if ctx.preprocess_options.pseudonymise else None
    if ctx.opts.labels is not None:
        manifest = (scratch or ctx.out) / "labels_matched.csv"
        write_manifest(ctx.sources.sources, manifest)
        src = None
    ctx.display.task(f"reading {len(ctx.sources.sources)} inputs", None)
    try:
        info = preprocess(
            src,
            folder,
            ctx.preprocess_options,
            csv_path=manifest,
            overwrite=True,
            name=ctx.out.name,
            progress=False,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        "dataset_sha256": info.sha256,
        "class_names": info.class_names,
        "counts": info.counts,
        "size": info.size,
        "channels": info.channels,
        "spatial_dims": info.spatial_dims,
        "split_by": info.preprocessing.get("split_by"),
        "inputs": len(ctx.sources.sources),
        "unlabelled_inputs": ctx.sources.unlabelled,
    }


def _preprocess_load(ctx: _Context, folder: Path, record: dict[str, Any]) -> None:
    ctx.dataset = load_dataset(folder)


def _after_preprocess(ctx: _Context) -> None:
    """Derive and check the later stages' configs now, so a bad override fails before training."""
    from medgan.synth.writers import cannot_hold

    info = ctx.ds.info
    if info.num_classes < 2:
        raise MedganError("the prepared data has one class only; medgan run needs at least two", ctx.ds.path)
    cfg = ctx.opts.config
    need = cfg.evaluate.k + 1  # the k-NN fidelity metrics of stage 3, per class
    few = [f"'{n}' ({c})" for n, c in zip(info.class_names, info.counts["train"], strict=True) if c < need]
    if few:
        raise MedganError(
            f"too few training images after the split in class {', '.join(few)}: the evaluation needs at least "
            f"{need} per class (k + 1, k = {cfg.evaluate.k}); add data, lower preprocess val_frac / test_frac, "
            "or evaluate.k",
            ctx.ds.path,
        )
    if cfg.evaluate.n_per_class < need:
        raise MedganError(f"config key 'evaluate.n_per_class' must be at least k + 1 = {need}")
    ctx.train = derive_train_config(
        info,
        ctx.out / "preprocess",
        ctx.out / "train" / "run",
        seed=cfg.seed,
        device=ctx.opts.device,
        steps=ctx.opts.steps,
        overrides=cfg.train,
    )
    derive_benchmark_config(
        info,
        ctx.out / "preprocess",
        ctx.out / "train",
        ctx.sources.target,
        device=ctx.opts.device,
        overrides=cfg.benchmark,
    )
    fmt = _export_format(ctx)
    reason = cannot_hold(fmt, info.spatial_dims, info.channels)
    if reason is not None:
        raise MedganError(
            f"config key 'export.format': {fmt} cannot hold this data ({reason}); "
            "use png (2D), npz, nifti (grey) or dicom"
        )


# Section. Stage 2: train.


def _train_identity(ctx: _Context) -> dict[str, Any]:
    assert ctx.train is not None
    record = config_to_dict(ctx.train.config)
    for key in ("data", "out", "device", "threads"):
        record.pop(key, None)
    return record


def _train_inputs(ctx: _Context) -> dict[str, Any]:
    return {"dataset_sha256": ctx.ds.info.sha256, "config": _train_identity(ctx)}


def _set_checkpoint(ctx: _Context, path: Path) -> None:
    from medgan.utils import file_sha256

    sidecar = path.with_name(path.name + ".sha256")
    ctx.checkpoint = path
    ctx.checkpoint_sha256 = (
        (sidecar.read_text().split() or [""])[0] if sidecar.is_file() else file_sha256(path)
    )


def _train_run(ctx: _Context, folder: Path) -> dict[str, Any]:
    from medgan.api import train
    from medgan.training.checkpoint import find_checkpoint, list_checkpoints

    assert ctx.train is not None
    derived = ctx.train
    record = {
        "base": derived.base,
        "reason": derived.reason,
        "changes": derived.changes,
        "overrides": derived.overrides,
    }
    write_text_atomic(folder / "derived.json", json.dumps(record, indent=2, default=str) + "\n")
    run_dir = folder / "run"
    resume = run_dir if list_checkpoints(run_dir) else None  # an interrupted attempt continues exactly
    ctx.display.describe("training the GAN")
    result = train(derived.config, resume=resume, overwrite=resume is None, progress=ctx.display.nested_bars)
    ckpt = result.selected or result.checkpoint or find_checkpoint(run_dir)
    _set_checkpoint(ctx, ckpt)
    return {
        "checkpoint": str(ckpt.relative_to(folder)),
        "checkpoint_sha256": ctx.checkpoint_sha256,
        "steps": result.step,
        "seconds": round(result.seconds, 1),
        "base": derived.base,
        "family": derived.config.model.family,
        "resumed": resume is not None,
    }


def _train_load(ctx: _Context, folder: Path, record: dict[str, Any]) -> None:
    path = folder / record["summary"]["checkpoint"]
    if not path.is_file():
        raise MedganError(
            "the finished training stage lost its checkpoint; delete the folder to train again", folder
        )
    _set_checkpoint(ctx, path)


# Section. Stage 3: evaluate.


def _evaluate_inputs(ctx: _Context) -> dict[str, Any]:
    return {"checkpoint_sha256": ctx.checkpoint_sha256, "evaluate": asdict(ctx.opts.config.evaluate)}


def _extractor(ctx: _Context) -> Any:
    """The dataset's domain feature extractor (trained once, cached under $MEDGAN_HOME/features)."""
    from medgan.metrics.features import get_feature_extractor

    sec = ctx.opts.config.evaluate
    # The bar only moves when the net is trained here (a cached one is loaded at once).
    advance = ctx.display.task(f"feature net ({sec.arch}) on the real train split", sec.feature_epochs)
    # The evaluate stage's feature net (same settings and seed), so the gate's classifier is the one it scored.
    return get_feature_extractor(
        ctx.ds,
        sec.arch,
        device=ctx.device,
        seed=sec.seed,
        epochs=sec.feature_epochs,
        progress=lambda row: advance(1),
    )


def _c2st_folds(ctx: _Context) -> int:
    """The C2ST folds that the data allows: each side, matched to the real class proportions, needs an
    image per fold (the configured folds, fewer on a tiny dataset)."""
    from medgan.metrics.c2st import matched_proportions

    sec = ctx.opts.config.evaluate
    counts = ctx.ds.info.counts["train"]
    labels = np.repeat(np.arange(len(counts)), counts)
    planned = np.repeat(np.arange(len(counts)), sec.n_per_class)
    matched, _ = matched_proportions(labels, planned, None, 0)
    return max(2, min(sec.c2st_folds, len(matched)))


def _evaluate_run(ctx: _Context, folder: Path) -> dict[str, Any]:
    from medgan.api import evaluate

    assert ctx.checkpoint is not None
    sec = ctx.opts.config.evaluate
    folds = _c2st_folds(ctx)
    ctx.display.describe(
        f"{sec.n_per_class} samples per class: C2ST ({folds} folds), SWD, FID, PRDC, memorisation"
    )
    result = evaluate(
        ctx.out / "preprocess",
        ctx.checkpoint,
        folder,
        n=sec.n_per_class,
        overwrite=True,
        seed=sec.seed,
        arch=sec.arch,
        device=ctx.device,
        k=sec.k,
        feature_epochs=sec.feature_epochs,
        c2st_folds=folds,
        c2st_steps=sec.c2st_steps,
        progress=ctx.display.nested_bars,
        console=ctx.display.console,
    )
    keys = (
        "c2st/auc",
        "c2st/real_vs_real_auc",
        "swd/mean",
        "swd/real_vs_real_mean",
        "fid",
        "coverage",
        "memorisation/fraction",
        "domain_classifier/balanced_accuracy",
    )
    return {"c2st_folds": folds, **{k: result.metrics[k] for k in keys if k in result.metrics}}


def _evaluate_load(ctx: _Context, folder: Path, record: dict[str, Any]) -> None:
    return None


# Section. Stage 4: the quality-gated export.


def _export_format(ctx: _Context) -> str:
    fmt = ctx.opts.config.export.format
    if fmt == "auto":
        return "png" if ctx.ds.info.spatial_dims == 2 else "nifti"
    return fmt


def _export_n(ctx: _Context) -> int:
    return ctx.opts.config.export.n_per_class or max(ctx.ds.info.counts["train"])


def _export_inputs(ctx: _Context) -> dict[str, Any]:
    ev = ctx.opts.config.evaluate
    return {
        "checkpoint_sha256": ctx.checkpoint_sha256,
        "export": asdict(ctx.opts.config.export),
        "format": _export_format(ctx),
        "n_per_class": _export_n(ctx),
        "classifier": {"arch": ev.arch, "feature_epochs": ev.feature_epochs, "seed": ev.seed},
    }


def _export_run(ctx: _Context, folder: Path) -> dict[str, Any]:
    from medgan.pipeline.gate import export_gated
    from medgan.synth.sampling import load_generator

    assert ctx.checkpoint is not None
    sec = ctx.opts.config.export
    fmt = _export_format(ctx)
    gen = load_generator(ctx.checkpoint, ctx.device)
    extractor = _extractor(ctx)
    n = _export_n(ctx)
    advance = ctx.display.task(f"drawing and gating {n} candidates per class", n * gen.num_classes)
    arguments = {
        "source": "(pseudonymised)" if ctx.preprocess_options.pseudonymise else str(ctx.opts.source),
        "out": str(ctx.out),
        "checkpoint": str(ctx.checkpoint),
        **asdict(sec),
        "format": fmt,
        "n_per_class": n,
    }
    result = export_gated(
        gen,
        extractor,
        ctx.ds,
        folder / "synthetic",
        n_per_class=n,
        fmt=fmt,
        seed=sec.seed,
        truncation=sec.truncation,
        percentile=sec.memorisation_percentile,
        confidence=sec.confidence,
        arguments=arguments,
        decisions_csv=folder / "gate.csv",
        on_batch=advance,
    )
    gate = result.to_json()
    write_text_atomic(folder / "gate.json", json.dumps(gate, indent=2, default=str) + "\n")
    return {
        "format": fmt,
        "kept": sum(result.kept.values()),
        "candidates": sum(result.candidates.values()),
        "kept_share": {name: c["kept_share"] for name, c in gate["classes"].items()},
    }


def _export_load(ctx: _Context, folder: Path, record: dict[str, Any]) -> None:
    return None


# Section. Stage 5: the benchmark report.


def _benchmark_config(ctx: _Context) -> Any:
    assert ctx.checkpoint is not None
    return derive_benchmark_config(
        ctx.ds.info,
        ctx.out / "preprocess",
        ctx.checkpoint,
        ctx.sources.target,
        device=ctx.opts.device,
        overrides=ctx.opts.config.benchmark,
    )


def _benchmark_inputs(ctx: _Context) -> dict[str, Any]:
    from medgan.benchmark.config import identity

    ident = identity(_benchmark_config(ctx))
    ident["gan"].pop("checkpoint", None)
    ident.pop("data", None)
    return {
        "checkpoint_sha256": ctx.checkpoint_sha256,
        "dataset_sha256": ctx.ds.info.sha256,
        "benchmark": ident,
    }


def _benchmark_run(ctx: _Context, folder: Path) -> dict[str, Any]:
    from medgan.api import benchmark
    from medgan.configio import save_config

    cfg = _benchmark_config(ctx)
    ctx.display.describe(f"{len(cfg.arms)} arms × {cfg.seeds} seeds")
    scratch = Path(tempfile.mkdtemp(prefix="medgan-run-"))
    try:
        save_config(cfg, scratch / "benchmark.yaml")  # the benchmark writes its resolved copy into its folder
        result = benchmark(
            scratch / "benchmark.yaml",
            out=folder,
            progress=ctx.display.nested_bars,
            console=ctx.display.console,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "answer": result.verdict,
        "runs": len(result.ran) + len(result.skipped),
        "lift_balanced_accuracy": result.lift(),
    }


def _benchmark_load(ctx: _Context, folder: Path, record: dict[str, Any]) -> None:
    return None


_STAGE_LIST: tuple[_Stage, ...] = (
    _Stage("preprocess", _preprocess_inputs, _preprocess_run, _preprocess_load),
    _Stage("train", _train_inputs, _train_run, _train_load, resumable=True),
    _Stage("evaluate", _evaluate_inputs, _evaluate_run, _evaluate_load),
    _Stage("export", _export_inputs, _export_run, _export_load),
    _Stage("benchmark", _benchmark_inputs, _benchmark_run, _benchmark_load, resumable=True),
)


# Section. The runner.


def _read_marker(folder: Path) -> dict[str, Any] | None:
    marker = folder / MARKER
    if not marker.is_file():
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("format") == _FORMAT else None


def _marker_digest(folder: Path) -> str:
    return hashlib.sha256((folder / MARKER).read_bytes()).hexdigest()


def _run_one(ctx: _Context, k: int, stage: _Stage, previous: str) -> tuple[StageReport, str]:
    """Skip stage ``k`` when its marker matches its inputs; else run it. Returns its report and marker digest."""
    folder = ctx.out / stage.name
    inputs = {"after": previous, **stage.inputs(ctx)}
    key = _digest(inputs)
    record = _read_marker(folder)
    ctx.display.start_stage(k, stage.name)
    if record is not None and record.get("inputs_hash") == key:
        stage.load(ctx, folder, record)
        ctx.records[stage.name] = record
        ctx.display.end_stage(
            k, f"[dim]stage {k} of {len(STAGES)}, {stage.name}: finished earlier, skipped[/]"
        )
        return StageReport(k, stage.name, "skipped", 0.0, record.get("summary", {})), _marker_digest(folder)

    t0 = time.perf_counter()

    def marker(summary: dict[str, Any]) -> str:
        rec = {
            "format": _FORMAT,
            "stage": stage.name,
            "medgan_version": __version__,
            "inputs_hash": key,
            "inputs": inputs,
            "summary": summary,
            "seconds": round(time.perf_counter() - t0, 1),
            "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        ctx.records[stage.name] = rec
        return json.dumps(rec, indent=2, default=str) + "\n"

    if stage.resumable:
        # Continue an unfinished attempt with the same inputs; anything else in the folder is stale.
        pending = folder / _PENDING
        same = record is None and pending.is_file() and pending.read_text().strip() == key
        if folder.exists() and not same:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(pending, key + "\n")
        summary = stage.run(ctx, folder)
        write_text_atomic(folder / MARKER, marker(summary))
        pending.unlink(missing_ok=True)
    else:
        with atomic_dir(folder, overwrite=True) as tmp:
            summary = stage.run(ctx, tmp)
            write_text_atomic(tmp / MARKER, marker(summary))
        stage.load(ctx, folder, ctx.records[stage.name])
    seconds = time.perf_counter() - t0
    ctx.display.end_stage(k, f"stage {k} of {len(STAGES)}, {stage.name}: done in {seconds:.0f} s")
    return StageReport(k, stage.name, "ran", seconds, summary), _marker_digest(folder)


def _check_out(out: Path) -> None:
    """Refuse an output folder that holds something other than a medgan run."""
    if not out.is_dir() or not any(not p.name.startswith(".") for p in out.iterdir()):
        return
    if not (out / "run.yaml").is_file() and not any((out / s / MARKER).is_file() for s in STAGES):
        raise MedganError(
            "folder exists, is not empty and holds no medgan run (no run.yaml); use another --out", out
        )


def _run_record(opts: RunOptions) -> str:
    hidden = (
        "(pseudonymised)" if opts.config.preprocess.get("pseudonymise") else None
    )  # paths may name patients
    record = {
        "source": hidden or str(opts.source.resolve()),
        "labels": (hidden or str(opts.labels.resolve())) if opts.labels else None,
        "target_class": opts.target_class,
        "size": opts.size,
        "device": opts.device,
        "steps": opts.steps,
        "config_file": str(opts.config_path) if opts.config_path else None,
        "config": config_to_dict(opts.config),
    }
    return yaml.safe_dump(record, sort_keys=False)


def run_pipeline(opts: RunOptions, *, console: Any = None) -> PipelineResult:
    """Run (or resume) ``medgan run``: the five stages, then ``OUT/index.md``.

    Args:
        opts: the command's arguments.
        console: a Rich console for the progress display and the stage lines (default Rich's global one).

    Raises:
        MedganError: bad input, refused before any training: an unreadable or missing source, one
            class only, a labels CSV whose ids match no file, a bad ``--config`` or option; or an
            error a stage reports.
        TrainingInterrupted: Ctrl-C during training (a checkpoint is written; run again to continue).
    """
    from medgan.device import resolve_device

    # Section. Inputs, checked before anything is written.
    check_out_folder(opts.out)
    _check_out(opts.out)
    # OUT must not hold an input, nor lie in SOURCE (the next run would read its own output as scans).
    check_not_input(
        opts.out,
        {
            "the source folder": opts.source,
            "the labels CSV": opts.labels,
            "the --config file": opts.config_path,
        },
        folders={"the source folder": opts.source},
    )
    sources = resolve_sources(opts.source, opts.labels, opts.target_class)
    cfg = opts.config
    preprocess_options = to_dataclass(
        PreprocessOptions, {**cfg.preprocess, "size": opts.size, "seed": cfg.seed}
    )
    if opts.steps is not None and opts.steps < 1:
        raise MedganError(f"--steps must be positive, got {opts.steps}")
    device = str(resolve_device(opts.device))

    # Section. The stages, one run at a time in OUT.
    reports: list[StageReport] = []
    with run_lock(opts.out):
        opts.out.mkdir(parents=True, exist_ok=True)
        _write_if_changed(opts.out / "run.yaml", _run_record(opts))
        with RunDisplay(len(STAGES), enabled=opts.progress, console=console) as display:
            ctx = _Context(
                opts=opts,
                display=display,
                sources=sources,
                preprocess_options=preprocess_options,
                device=device,
            )
            previous = ""
            for k, stage in enumerate(_STAGE_LIST, start=1):
                report, previous = _run_one(ctx, k, stage, previous)
                reports.append(report)
                if stage.name == "preprocess":
                    _after_preprocess(ctx)
                if (
                    report.status == "ran"
                ):  # the page follows a long run; a run that skips all leaves it alone
                    write_index(ctx.out, sources, ctx.records, STAGES)
            write_index(ctx.out, sources, ctx.records, STAGES)
    return PipelineResult(out=opts.out, stages=reports, index=opts.out / "index.md")
