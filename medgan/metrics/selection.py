"""Which of several training runs to keep: the one whose masks lie nearest the real masks.

A GAN trained on a few hundred 3D masks is fragile across training seeds: the committed
AdrenalMNIST3D config meets its class-signal target (TSTR >= 0.90x real-only) on two seeds of
thirteen, and on others draws fragments, masks several times the real size, or the class sizes
backwards. Figures that need no classifier and no held-out data show those outright failures:
pieces per mask and, per class, the mask's size and how well size alone tells the class, against
the real *training* masks (:func:`medgan.metrics.evaluate.value_metrics`), summed into one
:func:`~medgan.metrics.evaluate.mask_distance`. Among the runs that did not fail outright the
distance does not reliably find the one with the best class signal (held-out test in
``benchmarks/results/gan_quality.md``, "Choosing among 3D training seeds"): measure the kept run's
TSTR before relying on it.

Each run is sampled as ``benchmarks/gan_quality.py`` samples it: the real train split's class
counts, class ``c`` under seed ``seed + 1000 c``, so the figures here equal that script's.

A per-class run (``per_class: true``) is picked the same way over every combination of its class GANs' kept
checkpoints: each class is drawn once per kept checkpoint, as its composite would draw it, and the nearest
combination becomes the run's checkpoint (:func:`select_checkpoint`).

Example:
    >>> ranked = rank_runs(["runs/adrenal_s0", "runs/adrenal_s1", "runs/adrenal_s2"])
    >>> ranked[0].run  # the run to keep
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medgan.data.dataset import PreparedDataset, load_dataset
from medgan.errors import MedganError
from medgan.metrics.evaluate import mask_distance, piece_caution, size_cautions, value_metrics
from medgan.synth.sampling import LoadedGenerator, iter_samples, load_generator, sample_counts
from medgan.training.checkpoint import RunFolder, list_checkpoints, load_checkpoint
from medgan.training.perclass import (
    composite_checkpoint,
    is_per_class,
    member_runs,
    read_base,
    write_composite,
)
from medgan.utils import write_text_atomic


@dataclass(frozen=True)
class RunScore:
    """One run's mask figures and its distance to the real masks.

    Args:
        run: the run folder or checkpoint as given.
        checkpoint: the checkpoint file that was sampled.
        distance: :func:`~medgan.metrics.evaluate.mask_distance` (lower is nearer the real masks).
        metrics: the ``values/*`` figures and the ``mask_distance*`` parts.
        cautions: the sentences of :func:`~medgan.metrics.evaluate.size_cautions` and
            :func:`~medgan.metrics.evaluate.piece_caution` for this run.
    """

    run: str
    checkpoint: str
    distance: float
    metrics: dict[str, float]
    cautions: list[str]


def score_run(gen: LoadedGenerator, ds: PreparedDataset, run: str, seed: int = 0) -> RunScore:
    """The mask figures of one loaded generator against ``ds``'s real training masks.

    Raises:
        MedganError: the generator was not trained on ``ds``, or is unconditional, or ``ds`` is not mask data.
    """
    gen.check_trained_on(ds.info, "the data", gen.checkpoint_path)
    if gen.num_classes == 0:
        raise MedganError("the generator is unconditional; the mask distance compares the classes' sizes, so it "
                          "needs a class-conditional GAN", gen.checkpoint_path)
    real_y = np.asarray(ds.labels["train"]).reshape(-1)
    syn_x, syn_y = sample_counts(gen, np.bincount(real_y, minlength=gen.num_classes), seed=seed)
    return _score_draws(syn_x, syn_y, ds, run, gen.checkpoint_path)


def _score_draws(syn_x: np.ndarray, syn_y: np.ndarray, ds: PreparedDataset, run: str, checkpoint: str) -> RunScore:
    """The mask figures of synthetic masks drawn at the train split's class counts, against its real masks."""
    real_x, real_y = ds.channel_first("train"), np.asarray(ds.labels["train"]).reshape(-1)
    names = list(ds.info.class_names)
    figures = value_metrics(real_x, syn_x, real_labels=real_y, synthetic_labels=syn_y, class_names=names)
    distance = mask_distance(figures, names)
    if not distance:
        raise MedganError(f"{ds.info.name} is not mask data (its two commonest values do not cover its voxels); "
                          "the mask distance ranks generators of binary masks only", checkpoint)
    cautions = size_cautions(figures, names)
    pieces = piece_caution(figures)
    return RunScore(run=run, checkpoint=checkpoint, distance=distance["mask_distance"],
                    metrics={**figures, **distance}, cautions=cautions + ([pieces] if pieces else []))


def rank_runs(runs: Sequence[str | Path], data: str | Path | PreparedDataset | None = None, *, seed: int = 0,
              device: str = "cpu", on_run: Callable[[str], None] | None = None) -> list[RunScore]:
    """Score each run's checkpoint (latest, or the one training selected) by its mask distance; nearest first.

    Args:
        runs: run folders (as :func:`medgan.training.checkpoint.sampling_checkpoint` resolves them) or checkpoint
            files, all trained on the same data.
        data: the real dataset (default: the one the first run was trained on, from its config).
        seed: the sampling seed (0 reproduces ``gan_quality.py``'s figures).
        device: where the generators run.
        on_run: called with each run's name once it is scored (a progress bar's advance).

    Raises:
        MedganError: no runs, the same run twice, a run that cannot be loaded, trained on other data, unconditional,
            or data that is not binary masks.
    """
    names = [str(r) for r in runs]
    if not names:
        raise MedganError("no runs to rank: name two or more run folders or checkpoints")
    if len({Path(r).resolve() for r in names}) < len(names):
        raise MedganError("the same run is named twice; name each run once")
    ds = data if isinstance(data, PreparedDataset) else None
    scores = []
    for run in names:
        gen = load_generator(run, device)
        if ds is None:
            ds = load_dataset(data) if data is not None else load_dataset(gen.config["data"],
                                                                           size=gen.config.get("data_size"))
        scores.append(score_run(gen, ds, run, seed))
        if on_run is not None:
            on_run(run)
    return sorted(scores, key=lambda s: s.distance)


def select_checkpoint(run_dir: str | Path, data: str | Path | PreparedDataset | None = None, *, seed: int = 0,
                      device: str = "cpu", on_run: Callable[[str], None] | None = None) -> list[RunScore]:
    """Rank one run's kept checkpoints by their mask distance and record the nearest in ``RUN/selected.json``.

    What ``select_checkpoint: true`` does after training: a guard against a late runaway of D, which can
    break a 3D mask generator's masks in its last hundred steps (``gan_quality.md``, "D reads the mask's
    depth, over five training seeds"). A run folder is then sampled from the recorded checkpoint
    (:func:`medgan.training.checkpoint.sampling_checkpoint`). Reads the real training split only.

    Returns:
        The checkpoints' scores, nearest first.

    Raises:
        MedganError: no checkpoints, or what :func:`rank_runs` refuses.
    """
    folder = RunFolder(Path(run_dir))
    if is_per_class(folder.root):
        return _select_per_class(folder, data, seed=seed, device=device, on_run=on_run)
    ckpts = list_checkpoints(folder.root)
    if not ckpts:
        raise MedganError("no checkpoints to select from (expected checkpoints/step_*.pt)", folder.root)
    ranked = rank_runs(ckpts, data, seed=seed, device=device, on_run=on_run)
    record = {"checkpoint": str(Path(ranked[0].checkpoint).relative_to(folder.root)),
              "by": "mask distance (medgan select), real training split", "seed": seed,
              "ranking": [{"checkpoint": str(Path(s.checkpoint).relative_to(folder.root)),
                           "distance": round(s.distance, 4),
                           "pieces_per_mask": round(s.metrics.get("values/components_synthetic", float("nan")), 3)}
                          for s in ranked]}
    write_text_atomic(folder.selection, json.dumps(record, indent=2) + "\n")
    return ranked


MAX_COMBINATIONS = 1296
"""The most combinations of kept member checkpoints a per-class pick scores (6 kept per class, 4 classes)."""


def _select_per_class(folder: RunFolder, data: str | Path | PreparedDataset | None, *, seed: int, device: str,
                      on_run: Callable[[str], None] | None) -> list[RunScore]:
    """A per-class run's pick: every combination of the members' kept checkpoints, by the mask distance.

    Class ``c`` is drawn from its member exactly as the composite draws it (``sample_counts``: seed
    ``seed + 1000 c``), once per kept checkpoint; each combination's figures are those of its classes' draws
    together. The nearest combination is written as the run's composite (:func:`write_composite`) and recorded in
    ``selected.json`` with the ranking.
    """
    base = read_base(folder.root)
    names = [str(n) for n in base["class_names"]]
    kept = [list_checkpoints(run) for run in member_runs(folder.root, names)]
    for name, ckpts in zip(names, kept, strict=True):
        if not ckpts:
            raise MedganError(f"class '{name}' has no checkpoints to select from", folder.root)
    total = math.prod(len(k) for k in kept)
    if total > MAX_COMBINATIONS:
        raise MedganError(f"{total} combinations of the class GANs' kept checkpoints is more than the per-class pick "
                          f"scores ({MAX_COMBINATIONS}); set keep_checkpoints lower", folder.root)
    ds = data if isinstance(data, PreparedDataset) else load_dataset(
        data if data is not None else base["config"]["data"], size=None if data is not None else
        base["config"].get("data_size"))
    counts = np.bincount(np.asarray(ds.labels["train"]).reshape(-1), minlength=len(names))
    loaded = [[load_checkpoint(p) for p in ckpts] for ckpts in kept]
    latest = [members[-1] for members in loaded]
    draws: list[list[np.ndarray]] = []
    for c, members in enumerate(loaded):
        draws.append([])
        for k, member in enumerate(members):
            chosen = [member if i == c else latest[i] for i in range(len(names))]
            gen = load_generator(composite_checkpoint(chosen, base, str(kept[c][k])), device)
            gen.check_trained_on(ds.info, "the data", folder.root)
            draws[c].append(np.concatenate(list(iter_samples(gen, c, int(counts[c]), seed=seed + 1000 * c))))
    scored = []
    for combo in itertools.product(*(range(len(k)) for k in kept)):
        picked = [str(kept[c][k].relative_to(folder.root)) for c, k in enumerate(combo)]
        syn_x = np.concatenate([draws[c][k] for c, k in enumerate(combo)])
        syn_y = np.concatenate([np.full(len(draws[c][k]), c, np.int64) for c, k in enumerate(combo)])
        scored.append((_score_draws(syn_x, syn_y, ds, str(folder.root), " + ".join(picked)), combo))
        if on_run is not None:
            on_run(" + ".join(picked))
    scored.sort(key=lambda item: item[0].distance)
    best, combo = scored[0]
    path = write_composite(folder.root, [kept[c][k] for c, k in enumerate(combo)])
    ranked = [dataclasses.replace(best, checkpoint=str(path))] + [s for s, _ in scored[1:]]
    record = {"checkpoint": str(path.relative_to(folder.root)),
              "by": "mask distance (medgan select), real training split, over the class GANs' kept checkpoints",
              "seed": seed, "members": dict(zip(names, best.checkpoint.split(" + "), strict=True)),
              "ranking": [{"members": s.checkpoint.split(" + "), "distance": round(s.distance, 4),
                           "pieces_per_mask": round(s.metrics.get("values/components_synthetic", float("nan")), 3)}
                          for s, _ in scored]}
    write_text_atomic(folder.selection, json.dumps(record, indent=2) + "\n")
    return ranked
