"""The public Python API of medgan (docs/api.md): a generator, a torch Dataset of its samples, and
``train`` / ``evaluate`` / ``benchmark``, the same code the command line runs.

Everything here is re-exported by ``medgan`` itself, lazily (``import medgan`` stays light)::

    import medgan

    gen = medgan.load_generator("runs/cgan_breastmnist", device="cpu")
    x = gen.sample("malignant", 16, seed=0)  # float32 (16, 1, 28, 28), values 0..255
    ds = medgan.SyntheticDataset(gen, counts={"malignant": 500}, keys=("image", "label"))

**Pixel values.** Samples come back as float32 tensors holding the same values as the real
data's stored pixels: whole numbers in ``0 … 255``, exactly the bytes that ``medgan augment``
writes, as floats. That is what MONAI's ``LoadImage`` gives for a PNG, and what
``torch.as_tensor(npz["train_images"]).float()`` gives for a MedMNIST file, so real and synthetic
images go through the same transforms (e.g. ``ScaleIntensityRange(0, 255, -1, 1)``, the scaling
medgan's own classifiers use: ``x / 127.5 - 1``).

**Reproducibility.** Sample ``j`` of a class under a seed is a pure function of the checkpoint,
the seed, the class and ``j`` (latents are drawn in seeded blocks of
:data:`medgan.synth.sampling.LATENT_BLOCK`): ``gen.sample(c, n, seed=s)`` and
``SyntheticDataset`` give the same tensors as ``medgan augment --class c --n n --seed s``, for any
batch size, access order or number of DataLoader workers (on the same device type and library
versions).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from medgan.configio import flatten_keys
from medgan.errors import MedganError

if TYPE_CHECKING:
    from medgan.synth.sampling import LoadedGenerator
    from medgan.training.config import TrainConfig

__all__ = [
    "BenchmarkRun",
    "EvaluateResult",
    "Generator",
    "SyntheticDataset",
    "TrainResult",
    "benchmark",
    "evaluate",
    "load_generator",
    "train",
]


# Section. The generator.


class Generator:
    """A trained generator, ready to sample: what :func:`load_generator` returns.

    Attributes:
        classes: the class names, by label index (``["sample"]`` for an unconditional model).
        conditional: whether the model makes a chosen class.
        spatial_dims: 2 (images) or 3 (volumes).
        image_shape: the shape of one sample, ``(C, H, W)`` or ``(C, D, H, W)``.
        checkpoint_path: the checkpoint file that was loaded.
        checkpoint_sha256: its sha256 (checked against its sidecar when it was loaded).
        loaded: the underlying :class:`medgan.synth.sampling.LoadedGenerator` (network, config, dataset record).

    Example:
        >>> gen = load_generator("runs/cgan_breastmnist", device="cpu")
        >>> gen.classes, gen.image_shape
        (['benign', 'malignant'], (1, 28, 28))
    """

    def __init__(self, loaded: LoadedGenerator) -> None:
        self.loaded = loaded

    @property
    def conditional(self) -> bool:
        return self.loaded.num_classes > 0

    @property
    def classes(self) -> list[str]:
        return list(self.loaded.class_names) if self.conditional else ["sample"]

    @property
    def spatial_dims(self) -> int:
        return self.loaded.spatial_dims

    @property
    def image_shape(self) -> tuple[int, ...]:
        return (self.loaded.channels, *self.loaded.size)

    @property
    def checkpoint_path(self) -> str:
        return self.loaded.checkpoint_path

    @property
    def checkpoint_sha256(self) -> str:
        return self.loaded.checkpoint_sha256

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    def __repr__(self) -> str:
        return (f"Generator({self.loaded.family}, classes={self.classes}, image_shape={self.image_shape}, "
                f"checkpoint={self.checkpoint_path!r})")

    def class_index(self, class_: str | int | None) -> int | None:
        """The label index of ``class_`` (a name, case-insensitive, or an index); ``None`` for an unconditional model.

        Raises:
            MedganError: an unknown class (the message lists them), or a class asked of an
                unconditional model.
        """
        from medgan.data.dataset import resolve_class

        if not self.conditional:
            if class_ not in (None, 0, "sample"):
                raise MedganError("this generator is unconditional: it cannot make one class; pass class_=None")
            return None
        if class_ is None:
            raise MedganError(f"this generator is class-conditional: name a class ({', '.join(self.classes)})")
        return resolve_class(class_, self.classes)

    def sample(self, class_: str | int | None, n: int, seed: int = 0, *, truncation: float | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """``n`` samples of one class, as float32 ``(n, *image_shape)`` with the data's pixel values (0 … 255).

        The values are exactly those ``medgan augment --class CLASS --n N --seed SEED`` writes.

        Args:
            class_: a class name or index (``None`` for an unconditional model).
            n: how many.
            seed: fixes the samples (non-negative).
            truncation: draw latents from the normal truncated to ``[-t, t]``; ``None`` = off.
            batch_size: samples per forward pass group (does not change the output).

        Raises:
            MedganError: an unknown class, a non-positive ``n``, a negative seed.
        """
        from medgan.synth.sampling import iter_samples

        c = self.class_index(class_)
        batches = list(iter_samples(self.loaded, c, n, seed=seed, batch_size=batch_size, truncation=truncation))
        return torch.from_numpy(np.concatenate(batches)).float()


def load_generator(path: str | Path, device: str = "auto") -> Generator:
    """Load a trained generator from a run folder (the checkpoint training selected, else its latest) or a file.

    The checkpoint is checked against its ``.sha256`` sidecar and read with ``weights_only``; its
    EMA generator is rebuilt in eval mode without gradients.

    Args:
        path: a run folder or a ``.pt`` checkpoint.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (use ``cpu`` for a
            :class:`SyntheticDataset` read by DataLoader worker processes).

    Raises:
        MedganError: a missing, corrupt or altered checkpoint, or one that cannot be sampled from.
    """
    from medgan.synth.sampling import load_generator as _load

    return Generator(_load(path, device))


# Section. A torch Dataset of synthetic samples.


class SyntheticDataset(Dataset):
    """A map-style ``torch.utils.data.Dataset`` of a generator's samples, class by class.

    Item ``i`` is a pure function of the generator, ``seed`` and ``i``: the samples are those of
    ``medgan augment`` with the same counts and seed, in its order (every class in label order,
    samples ``0 … n-1`` of each). A block of 64 samples is generated on first access and kept in a
    small cache, so sequential and shuffled reads, any batch size and any number of DataLoader
    workers see the same tensors.

    Give exactly one of ``counts``, ``ratio`` or ``balance``:

    - ``counts``: an int (that many of every class) or ``{class name or index: n}``;
    - ``ratio``: ``ratio`` × the real count of every class (``real_counts`` needed);
    - ``balance``: fill every class up to the largest real class (``True``) or up to a count;
      ``real_counts`` needed. A class with no real image gets none under ``ratio`` and ``balance``
      (:class:`medgan.synth.plan.ClassPlan`).

    Args:
        generator: from :func:`load_generator`, or a run folder / checkpoint (loaded on the CPU).
        counts: per-class counts, see above.
        ratio: synthetic-to-real ratio per class.
        balance: ``True``, or the count to fill every class up to.
        real_counts: real training images per class, by label index (for ``ratio`` / ``balance``).
        seed: the sampling seed (``medgan augment --seed``).
        transform: applied to the image (tuple items) or to the whole dict (``keys`` items), e.g.
            a MONAI ``Compose`` of array or dictionary transforms.
        keys: ``("image", "label")`` gives MONAI-style dicts ``{"image": x, "label": y}``; ``None``
            gives ``(image, label)`` tuples.
        truncation: latent truncation (``medgan augment --truncation``).
        cache_blocks: generated blocks kept per process.

    Items: the image is float32 ``(C, *spatial)`` with the data's pixel values (0 … 255, see the
    module doc) before ``transform``; the label is the class index, an ``int``.

    Raises:
        MedganError: not exactly one of the count options, an unknown class, a non-positive count,
            ``ratio`` / ``balance`` without ``real_counts``, or nothing to draw.

    Example:
        >>> ds = SyntheticDataset(gen, ratio=1.0, real_counts=[147, 399], keys=("image", "label"))
        >>> len(ds), ds[0]["image"].shape
        (546, torch.Size([1, 28, 28]))
    """

    def __init__(
        self,
        generator: Generator | str | Path,
        counts: int | Mapping[str | int, int] | None = None,
        *,
        ratio: float | None = None,
        balance: bool | int = False,
        real_counts: Sequence[int] | None = None,
        seed: int = 0,
        transform: Callable[[Any], Any] | None = None,
        keys: tuple[str, str] | None = None,
        truncation: float | None = None,
        cache_blocks: int = 4,
    ) -> None:
        from medgan.synth.sampling import check_sampling_args

        self.generator = generator if isinstance(generator, Generator) else load_generator(generator, device="cpu")
        check_sampling_args(seed=seed, truncation=truncation)
        if keys is not None and (len(keys) != 2 or not all(isinstance(k, str) for k in keys)):
            raise MedganError(f"keys must be two names such as ('image', 'label'), got {keys!r}")
        if cache_blocks <= 0:
            raise MedganError(f"cache_blocks must be positive, got {cache_blocks}")
        self.counts = self._plan(counts, ratio, balance, real_counts)
        self.seed, self.transform, self.keys, self.truncation = seed, transform, keys, truncation
        self.cache_blocks = cache_blocks
        # Item i -> (class, position in the class): cumulative ends of the classes, in label order.
        self._classes = list(self.counts)
        self._ends = np.cumsum([self.counts[c] for c in self._classes])
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def _plan(self, counts: int | Mapping[str | int, int] | None, ratio: float | None, balance: bool | int,
              real_counts: Sequence[int] | None) -> dict[int, int]:
        from medgan.synth.plan import ClassPlan

        given = [name for name, v in (("counts", counts), ("ratio", ratio), ("balance", balance or None))
                 if v is not None]
        if len(given) != 1:
            raise MedganError(f"give exactly one of counts=, ratio= or balance= (got {', '.join(given) or 'none'})")
        gen = self.generator
        num = len(gen.classes)
        try:
            if counts is not None:
                if isinstance(counts, Mapping):
                    out: dict[int, int] = {}
                    for name, k in counts.items():
                        c = gen.class_index(name)
                        out.update(ClassPlan("count", n=int(k), classes=(c or 0,)).counts(num))
                    plan = dict(sorted(out.items()))
                else:
                    plan = ClassPlan("count", n=int(counts)).counts(num)
            else:
                if not gen.conditional:
                    raise MedganError("ratio= and balance= need a class-conditional generator; give counts=N")
                if real_counts is None:
                    raise MedganError("ratio= and balance= need real_counts= (real training images per class)")
                if len(real_counts) != num:
                    raise MedganError(f"real_counts has {len(real_counts)} entries; the generator has {num} classes")
                if ratio is not None:
                    policy = ClassPlan("ratio", ratio=float(ratio))
                else:
                    policy = ClassPlan("balance", target=None if balance is True else int(balance))
                plan = policy.counts(num, [int(k) for k in real_counts])
        except ValueError as exc:
            raise MedganError(str(exc)) from None
        if not plan:
            raise MedganError("nothing to draw: every class already has the target count")
        return plan

    def __len__(self) -> int:
        return int(self._ends[-1])

    @property
    def labels(self) -> np.ndarray:
        """The label of every item, int64 ``(len(self),)``, without generating anything."""
        return np.repeat(np.asarray(self._classes, dtype=np.int64), [self.counts[c] for c in self._classes])

    def __getstate__(self) -> dict[str, Any]:
        # A DataLoader worker gets its own (empty) cache rather than a copy of the parent's.
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state

    def _block(self, c: int, block: int) -> np.ndarray:
        from medgan.synth.sampling import LATENT_BLOCK, sample_block

        key = (c, block)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        keep = min(LATENT_BLOCK, self.counts[c] - block * LATENT_BLOCK)
        cls = c if self.generator.conditional else None
        u8 = sample_block(self.generator.loaded, cls, block, seed=self.seed, truncation=self.truncation, keep=keep)
        self._cache[key] = u8
        while len(self._cache) > self.cache_blocks:
            self._cache.popitem(last=False)
        return u8

    def __getitem__(self, index: int) -> Any:
        from medgan.synth.sampling import LATENT_BLOCK

        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic samples")
        k = int(np.searchsorted(self._ends, i, side="right"))
        c = self._classes[k]
        j = i - (int(self._ends[k - 1]) if k else 0)  # the sample's position within its class
        image = torch.from_numpy(self._block(c, j // LATENT_BLOCK)[j % LATENT_BLOCK].copy()).float()
        if self.keys is None:
            return (self.transform(image) if self.transform is not None else image), c
        item = {self.keys[0]: image, self.keys[1]: c}
        return self.transform(item) if self.transform is not None else item


# Section. Training.


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run folder (checkpoints, samples, metrics.jsonl, config.yaml).
        checkpoint: the last checkpoint written.
        step: the step training reached.
        selected: with ``select_checkpoint: true``, the checkpoint whose masks lie nearest the real ones, which
            the run folder is sampled from (``RUN/selected.json``); else ``None``.
        seconds: wall-clock time of this call.
        metrics: the last ``metrics.jsonl`` record (losses, ADA p, FID when ``fid_every`` is set).
    """

    run_dir: Path
    checkpoint: Path | None
    step: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    selected: Path | None = None


def _overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """``{"key": value}`` or ``["key=value", ...]`` (as ``--set``) -> a mapping of dotted keys."""
    from medgan.configio import parse_overrides

    if isinstance(overrides, Mapping):
        return flatten_keys(overrides)
    return parse_overrides(list(overrides or []))


def train_config(config: str | Path | Mapping[str, Any] | TrainConfig | None = None,
                 overrides: Mapping[str, Any] | Sequence[str] | None = None) -> TrainConfig:
    """Resolve a training config: a YAML file, a mapping of its keys, a ``TrainConfig``, or ``None`` (defaults).

    ``overrides`` are applied on top, as ``medgan train --set`` does (``{"steps": 100}`` or ``["steps=100"]``).

    Raises:
        MedganError: a missing file, an unknown key or a value of the wrong type.
    """
    from medgan.configio import config_to_dict, load_config
    from medgan.training.config import TrainConfig

    extra = _overrides(overrides)
    if config is None or isinstance(config, (str, Path)):
        return load_config(TrainConfig, config, extra)
    base = config_to_dict(config) if isinstance(config, TrainConfig) else dict(config)
    return load_config(TrainConfig, None, {**flatten_keys(base), **extra})


def train(
    config: str | Path | Mapping[str, Any] | TrainConfig | None = None,
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    tensorboard: bool = False,
) -> TrainResult:
    """Train a GAN, as ``medgan train`` does (it calls this); return where the run ended.

    Args:
        config: a YAML file (``configs/train/*.yaml``), a mapping of its keys, a ``TrainConfig``,
            or ``None`` with ``resume`` (the run folder's ``config.yaml``).
        overrides: keys to change, as ``--set`` does: ``{"steps": 200, "model.z_dim": 64}``.
        resume: a run folder or checkpoint to continue exactly; the run folder is the default ``out``.
        overwrite: replace a non-empty run folder.
        progress: show a progress bar.
        tensorboard: also log to TensorBoard in ``RUN/tensorboard/`` (as config key ``logger: tensorboard``;
            needs ``pip install "medgan[tensorboard]"``).

    Raises:
        MedganError: a bad config, data or checkpoint, a non-finite loss, or TensorBoard asked for
            without the package.
        medgan.training.loop.TrainingInterrupted: after Ctrl-C / SIGTERM, once a checkpoint is written.

    Example:
        >>> result = medgan.train("configs/train/cgan_breastmnist.yaml", overrides={"steps": 100, "out": "runs/b"})
        >>> result.checkpoint
        PosixPath('runs/b/checkpoints/step_000100.pt')
    """
    import time

    from medgan.metrics.training_fid import fid_evaluator
    from medgan.training.checkpoint import RunFolder
    from medgan.training.distributed import is_main_process
    from medgan.training.loggers import make_logger
    from medgan.training.loop import train as run_training
    from medgan.training.snapshots import read_jsonl

    t0 = time.perf_counter()
    extra = _overrides(overrides)
    if config is None:
        if resume is None:
            raise MedganError("give a CONFIG, or --resume RUN_DIR to continue a run")
        run_folder = RunFolder.containing(resume)
        config = run_folder.config
        if not config.is_file():
            raise MedganError("no config.yaml in the run folder; pass the CONFIG explicitly", run_folder.root)
    if resume is not None and "out" not in extra:
        extra["out"] = str(RunFolder.containing(resume).root)
    if tensorboard:
        extra["logger"] = "tensorboard"
    cfg = train_config(config, extra)
    logger = make_logger(cfg.logger, RunFolder(Path(cfg.out)).tensorboard)  # a missing package: refused before training
    if resume is None and isinstance(config, (str, Path)):  # --overwrite would delete the config file
        from medgan.utils import check_not_input

        check_not_input(cfg.out, {"the config": config})
    result = run_training(cfg, resume=resume, overwrite=overwrite, progress=progress,
                          evaluator=fid_evaluator(cfg) if cfg.fid_every and not cfg.per_class else None, logger=logger,
                          member_evaluator=fid_evaluator if cfg.per_class else None)
    selected = None
    if cfg.select_checkpoint and is_main_process():  # under torchrun, rank 0 picks once
        from medgan.metrics.selection import select_checkpoint

        selected = Path(select_checkpoint(result.run_dir)[0].checkpoint)
    log = RunFolder(result.run_dir).metrics
    records = read_jsonl(log) if log.is_file() else []
    last = {k: float(v) for k, v in records[-1].items() if isinstance(v, (int, float))} if records else {}
    # A per-class run's pick replaces its composite checkpoint (medgan.training.perclass.write_composite).
    checkpoint = selected if cfg.per_class and selected is not None else result.checkpoint
    return TrainResult(run_dir=result.run_dir, checkpoint=checkpoint, step=result.step,
                       seconds=time.perf_counter() - t0, metrics=last, selected=selected)


# Section. Evaluation.


@dataclass
class EvaluateResult:
    """What :func:`evaluate` returns.

    Attributes:
        metrics: the flat metrics (``fid``, ``c2st/auc``, ``swd/mean``, ``memorisation/*``, per class ...;
            see docs/metrics.md).
        out: the output folder (``None`` when nothing was written).
        paths: the files written, by name (``metrics.json``, ``summary.md``, the grids, ...).
        class_names: the real data's classes.
    """

    metrics: dict[str, float]
    out: Path | None
    paths: dict[str, Path] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)


def evaluate(
    real: str | Path,
    synthetic: str | Path | Generator,
    out: str | Path | None = None,
    *,
    n: int | None = None,
    overwrite: bool = False,
    seed: int = 0,
    arch: str = "cnn",
    device: str = "cpu",
    k: int = 3,
    feature_epochs: int = 20,
    retrain_features: bool = False,
    c2st_folds: int = 5,
    c2st_steps: int = 300,
    c2st_volume_stride: int = 2,
    progress: bool = False,
    console: Any = None,
) -> EvaluateResult:
    """Measure a synthetic set against a real dataset, as ``medgan evaluate`` does (it calls this).

    Args:
        real: the real dataset: a registry name, an npz or a prepared folder.
        synthetic: an npz or prepared dataset of samples, a checkpoint / run folder, or a
            :class:`Generator` (sampled here; it must have been trained on ``real``).
        out: where to write ``metrics.json``, ``summary.md`` and the figures (built atomically);
            ``None`` computes the metrics only.
        n: synthetic samples per class (from a generator: default 500; from a file: a subset).
        overwrite: replace a non-empty ``out``.
        seed: seeds the feature net, the sampling and the KID subsets.
        arch: the feature net, ``cnn``, ``resnet10``, ``resnet18`` or ``densenet121``.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        k: neighbours for precision / recall / density / coverage.
        feature_epochs: epochs when the feature net is trained (it is cached per dataset).
        retrain_features: ignore a cached feature net.
        c2st_folds: cross-validation folds of the two-sample test.
        c2st_steps: at least this many optimisation steps per C2ST fold.
        c2st_volume_stride: the two-sample CNN's first stride on 3D volumes (1: full resolution).
        progress: show progress bars.
        console: a Rich console for them.

    Raises:
        MedganError: unreadable inputs, mismatched shapes or classes, too few samples, a bad ``arch``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medgan.data.dataset import class_slugs, load_dataset
    from medgan.metrics.c2st import C2STConfig
    from medgan.metrics.evaluate import check_compatible, evaluate_detailed, load_synthetic
    from medgan.metrics.features import feature_cache_path, get_feature_extractor
    from medgan.metrics.report import (
        save_c2st_extremes,
        save_class_grid,
        save_memorisation_pairs,
        summary_markdown,
    )
    from medgan.networks.classifier import ARCHS
    from medgan.utils import atomic_dir, check_memory, check_not_input, check_out_folder, write_text_atomic

    if arch not in ARCHS:
        raise MedganError(f"unknown --arch {arch!r}; allowed: {', '.join(ARCHS)}")
    if n is not None and n < 1:
        raise MedganError(f"--n must be a positive number of samples per class, got {n}")
    console = console if console is not None else Console(quiet=not progress)
    source = synthetic.checkpoint_path if isinstance(synthetic, Generator) else synthetic

    # Section. Inputs, checked before any training so that mistakes fail fast.
    dataset = load_dataset(real)
    if out is not None:  # never replace an input; a folder can be made there
        check_out_folder(out)
        check_not_input(out, {"the real dataset": dataset.path, "the synthetic set": source})
    if n is not None:  # the synthetic images, their float copies and features are held in memory
        pixels = int(np.prod(dataset.info.size)) * dataset.info.channels
        check_memory(16 * n * max(dataset.info.num_classes, 1) * pixels, f"--n {n} synthetic images per class",
                     "lower --n")
    syn = load_synthetic(Path(source), dataset, n_per_class=n, seed=seed, device=device)
    names = list(dataset.info.class_names)
    check_compatible(dataset.channel_first("train"), dataset.labels["train"], syn.images, syn.labels, names, k=k)

    def compute() -> tuple[Any, Any]:
        # Section. Feature net (trained once per dataset and cached), with a progress bar.
        cache = feature_cache_path(dataset.info.sha256, arch, epochs=feature_epochs, seed=seed)
        cached = cache.is_file() and not retrain_features
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=cached or not progress,
        ) as bar:
            task = bar.add_task(f"training the {arch} feature net on {dataset.info.name}", total=feature_epochs)
            extractor = get_feature_extractor(
                dataset, arch, device=device, seed=seed, epochs=feature_epochs, retrain=retrain_features,
                progress=lambda row: bar.update(
                    task, advance=1, description=f"feature net: val balanced acc {row['val_balanced_accuracy']:.2f}"
                ),
            )
        # Section. Metrics.
        with console.status("computing features and metrics"):
            result = evaluate_detailed(
                dataset, (syn.images, syn.labels), extractor=extractor, k=k, seed=seed, device=device,
                c2st=C2STConfig(folds=c2st_folds, min_steps=c2st_steps, seed=seed, device=device,
                                volume_stride=c2st_volume_stride),
            )
        return extractor, result

    if out is None:
        _, result = compute()
        return EvaluateResult(metrics=result.metrics, out=None, class_names=names)

    out = Path(out)
    written: list[str] = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        extractor, result = compute()
        metrics = result.metrics

        # Section. Files: metrics, summary, per-class grids (and the C2ST's extremes), memorisation pairs.
        record = {
            "metrics": metrics,
            "real": str(dataset.path),
            "real_sha256": dataset.info.sha256,
            "synthetic": syn.source,
            "class_names": names,
            "k": k,
            "seed": seed,
            "feature_net": {
                key: extractor.info.get(key)
                for key in ("arch", "arch_kwargs", "epochs", "selected_epoch", "seed", "val_balanced_accuracy",
                            "test_accuracy", "test_balanced_accuracy", "cache_path")
            },
        }
        write_text_atomic(tmp / "metrics.json", json.dumps(record, indent=2) + "\n")
        notes = [
            f"real: `{dataset.path.name}` ({dataset.info.name}, sha256 {dataset.info.sha256[:12]}…), "
            f"train split as reference, test split for the memorisation audit",
            f"synthetic: `{syn.source}` ({len(syn.images)} images)",
            f"feature space: `{arch}` classifier trained on the real train split "
            f"(test accuracy {extractor.scores.get('accuracy', float('nan')):.3f}, "
            f"balanced {extractor.scores.get('balanced_accuracy', float('nan')):.3f}); k = {k}",
        ]
        write_text_atomic(
            tmp / "summary.md",
            summary_markdown(metrics, names, title=f"medgan evaluate: {dataset.info.name}", notes=notes),
        )
        written += ["metrics.json", "summary.md"]
        for c, (name, slug) in enumerate(zip(names, class_slugs(names), strict=True)):
            save_class_grid(
                tmp / f"grid_class_{slug}.png",
                result.real_images[result.real_labels == c],
                syn.images[syn.labels == c],
                title=f"{dataset.info.name}: class {name} (left real train, right synthetic)",
                seed=seed,
            )
            written.append(f"grid_class_{slug}.png")
            if slug in result.c2st_rankings:
                save_c2st_extremes(
                    tmp / f"c2st_extremes_class_{slug}.png", result.c2st_rankings[slug],
                    result.real_images[result.real_labels == c], syn.images[syn.labels == c],
                    title=f"{dataset.info.name}: class {name}, what the two-sample CNN saw "
                          f"(C2ST AUC {metrics[f'c2st/auc/class_{slug}']:.3f})",
                )
                written.append(f"c2st_extremes_class_{slug}.png")
        if result.audit is not None:
            save_memorisation_pairs(tmp / "memorisation_pairs.png", result.audit, syn.images, result.real_images)
            written.append("memorisation_pairs.png")
    paths = {name: out / name for name in written if (out / name).is_file()}
    return EvaluateResult(metrics=metrics, out=out, paths=paths, class_names=names)


# Section. The benchmark.


@dataclass
class BenchmarkRun:
    """What :func:`benchmark` returns.

    Attributes:
        out: the benchmark folder.
        report: ``report.md`` (``None`` when this call wrote no report, e.g. with ``only=``).
        results_path: ``results.json`` (``None`` likewise).
        results: its content: per-arm metrics with confidence intervals, comparisons, verdict.
        lifts: ``{(arm, baseline): {metric: {"diff", "ci_low", "ci_high", "p_bootstrap", "significant", ...}}}``,
            the paired differences of the report (e.g. ``("real+synthetic", "real")``); differences
            are fractions (0.05 = 5 points).
        verdict: the plain-language answer of the report.
        ran: the (arm, seed) runs trained by this call.
        skipped: the (arm, seed) runs found finished and reused.
    """

    out: Path
    report: Path | None
    results_path: Path | None
    results: dict[str, Any] | None
    lifts: dict[tuple[str, str], dict[str, dict[str, Any]]]
    verdict: str | None
    ran: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)

    def lift(self, arm: str = "real+synthetic", baseline: str = "real", metric: str = "balanced_accuracy") -> float:
        """The mean paired difference ``arm - baseline`` of ``metric`` (a fraction); NaN when not reported."""
        return float(self.lifts.get((arm, baseline), {}).get(metric, {}).get("diff", math.nan))


def benchmark(
    config: str | Path | None = None,
    *,
    quick: bool = False,
    out: str | Path | None = None,
    checkpoint: str | Path | Generator | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    report_only: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    console: Any = None,
    tensorboard: bool = False,
) -> BenchmarkRun:
    """Run (or resume) the real-vs-synthetic classifier benchmark, as ``medgan benchmark`` does (it calls this).

    Args:
        config: a benchmark YAML (default ``configs/benchmark/default.yaml``).
        quick: apply the config's ``quick:`` section (a smoke test in minutes).
        out: the output folder (default: the config's ``out``).
        checkpoint: a GAN (checkpoint, run folder or :class:`Generator`) instead of training one.
        overrides: config keys to change, as ``--set``: ``{"seeds": 3, "classifier.epochs": 10}``.
        only: do only these parts: ``"gan"``, or ``"ARM:SEED"`` such as ``"real+synthetic:3"`` (no report).
        report_only: aggregate the finished runs into the report; train nothing.
        overwrite: start again in an existing output folder.
        progress: show progress bars.
        console: a Rich console for them (default: stderr).
        tensorboard: also write TensorBoard event files (as config key ``logger: tensorboard``): the GAN's
            training in ``OUT/gan/tensorboard``, every classifier's curves in ``OUT/tensorboard``.

    Raises:
        MedganError: a bad config, data, target class or checkpoint; a folder holding another benchmark.
        KeyboardInterrupt, medgan.training.loop.TrainingInterrupted: interrupted; finished runs are kept.
    """
    from rich.console import Console

    from medgan.benchmark.config import load_benchmark_config
    from medgan.benchmark.plan import JobPlan
    from medgan.benchmark.runner import run_benchmark
    from medgan.training.loggers import check_logger
    from medgan.training.loop import TrainingInterrupted

    if only and report_only:
        raise MedganError("--only and --report-only do not go together")
    # JSON values are YAML, so a mapping's values keep their types through the --set parser.
    items = ([f"{k}={json.dumps(v)}" for k, v in flatten_keys(overrides).items()] if isinstance(overrides, Mapping)
             else list(overrides or []))
    if tensorboard:
        items.append("logger=tensorboard")
    cfg = load_benchmark_config(config, quick=quick, overrides=items)
    check_logger(cfg.logger)  # a missing tensorboard package is refused before anything trains
    plan = JobPlan.parse(list(only), cfg) if only else JobPlan.everything()
    folder = Path(out) if out is not None else Path(cfg.out)
    if isinstance(config, (str, Path)):  # --overwrite would delete the config file
        from medgan.utils import check_not_input

        check_not_input(folder, {"the config": config})
    ckpt = checkpoint.checkpoint_path if isinstance(checkpoint, Generator) else checkpoint
    try:
        result = run_benchmark(cfg, out=folder, checkpoint=ckpt, plan=plan, report_only=report_only,
                               overwrite=overwrite, progress=progress, quick=quick,
                               console=console if console is not None else Console(stderr=True, quiet=not progress))
    except (KeyboardInterrupt, TrainingInterrupted) as exc:
        exc.benchmark_out = folder  # type: ignore[union-attr]  # where the finished runs are kept
        raise
    res = result.results
    if cfg.logger == "tensorboard":
        from medgan.benchmark.tensorboard import log_benchmark

        log_benchmark(result.out, res)
    lifts: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    if res is not None:
        for comp in res.get("comparisons", []):
            lifts[(comp["arm"], comp["baseline"])] = comp["metrics"]
    has_report = res is not None
    return BenchmarkRun(
        out=result.out, report=result.out / "report.md" if has_report else None,
        results_path=result.out / "results.json" if has_report else None, results=res, lifts=lifts,
        verdict=res["verdict"].get("answer") if res is not None else None, ran=list(result.ran),
        skipped=list(result.skipped),
    )

