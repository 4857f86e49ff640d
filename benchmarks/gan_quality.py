"""Does a trained generator make images a reader cannot tell from real ones, carrying their class?

Measures one checkpoint against its real dataset with the figures of the sample-quality issue:

- C2ST: a small CNN's out-of-fold ROC AUC for real train vs synthetic, per class and overall (the
  synthetic set drawn in the real train split's class counts), with the real-vs-real floor (train
  against val + test) (:mod:`medgan.metrics.c2st`);
- SWD: multi-scale sliced Wasserstein distance per Laplacian level (:mod:`medgan.metrics.swd`);
- TSTR: the benchmark's classifier trained on synthetic images only (the real train split's
  class counts), selected on real val, tested on real test; balanced accuracy over seeds, next to
  the same classifier trained on the real train split (the real-only arm); both also on the test
  images without a near-duplicate in the train split (``*_twin_free``; BreastMNIST: 100 of 156),
  which a real-trained classifier cannot score on by recognising a scan it trained on;
- for mask-like data (3D AdrenalMNIST): the share of voxels near the two mask values;
- with ``--views``: the overall C2ST once per view alone (image, high-pass residual, histogram),
  which says what gives the samples away;
- with ``--mask-views`` (binary masks): the overall C2ST on the masks reduced step by step (each
  mask's largest piece; then blurred; then moved so its centre of mass sits at the centre), real
  and synthetic alike, each beside its real-vs-real floor: which of fragments, edges, position or
  coarse shape gives the masks away;
- with ``--spectrum``: the synthetic/real power per ring of radial frequency, the fine texture
  the samples carry (``spectrum/ratio_fine``: the mean above 0.35 cycles/pixel);
- with ``--tstr-only``: no C2ST or SWD, only the value figures and TSTR (many classifier seeds, cheaply);
- with ``--truncation T``: the latents drawn as ``medgan augment --truncation T`` draws them;
- with ``--size-match K`` (binary masks): each class's masks are those of K times as many draws whose
  foreground sizes follow the class's real training masks: how much of the class signal a
  generator misses is the sizes it draws;
- with ``--d-rejection K``: each class's samples are the 1/K of K times as many that the
  checkpoint's own D scores most real (discriminator rejection sampling in its top-k form, after
  Azadi et al. 2019), to ask whether D's score can pick the realistic draws;
- with ``--realism K``: the same top-k rejection by a critic trained after the GAN (the C2ST's CNN,
  real train images against other draws; ``realism_scores``).

A cycle-family checkpoint (a class translator) is measured on its translations: class c's
synthetic images are the other class's train images translated to c, at most as many as that
class has.

Appends one JSON record per call to ``--out`` (JSON lines) and prints it. The figures table in
``benchmarks/results/gan_quality.md`` is written from these records.

Usage:
    python benchmarks/gan_quality.py --checkpoint runs/cgan_breastmnist --data breastmnist \
        --label "default" --out benchmarks/results/gan_quality.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from medgan.data.dataset import class_slugs, load_dataset
from medgan.data.scaling import to_model_input
from medgan.data.splits import twins_in
from medgan.metrics.c2st import (
    C2STConfig,
    c2st,
    c2st_metrics,
    c2st_ranking,
    c2st_views,
    fit_two_sample_cnn,
    matched_proportions,
    two_sample_logits,
)
from medgan.metrics.evaluate import mask_distance, value_metrics
from medgan.metrics.report import save_c2st_extremes, save_class_grid
from medgan.metrics.swd import swd_metrics
from medgan.networks import build_discriminator
from medgan.networks.classifier import build_classifier
from medgan.synth.sampling import iter_samples, keep_largest_component, sample_counts
from medgan.synth.translate import LoadedTranslator, load_model, translated_pool
from medgan.training.checkpoint import load_checkpoint
from medgan.training.classifier import classifier_scores, predict_proba, train_classifier
from medgan.training.loss import radial_power


def sample_like(gen, counts: list[int], seed: int, truncation: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """G_ema samples with ``counts[c]`` images of class ``c`` (``truncation`` as ``medgan augment --truncation``)."""
    return sample_counts(gen, counts, seed=seed, truncation=truncation)


def load_discriminator(checkpoint: Path) -> torch.nn.Module:
    """The checkpoint's trained D, in eval mode."""
    ckpt = load_checkpoint(checkpoint)
    D = build_discriminator(ckpt["model"]["family"], **ckpt["model"]["discriminator"])
    D.load_state_dict(ckpt["D"])
    return D.eval()


def d_rejected_like(gen, checkpoint: Path, counts: list[int], seed: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` images of class ``c``: the ones of ``factor × counts[c]`` draws that D scores most real."""
    D = load_discriminator(checkpoint)
    images, labels = [], []
    for c, n in enumerate(counts):
        pool = np.concatenate(list(iter_samples(gen, c, round(n * factor), seed=seed + 1000 * c)))
        batches = [torch.from_numpy(pool[i:i + 64]) for i in range(0, len(pool), 64)]
        with torch.no_grad():
            scores = np.concatenate([D(to_model_input(b), torch.full((len(b),), c)).reshape(-1).numpy() for b in batches])
        images.append(pool[keep_most_real(scores, n)])
        labels.append(np.full(n, c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def realism_scores(real: np.ndarray, fit: np.ndarray, candidates: np.ndarray, config: C2STConfig | None = None, *,
                   seed: int = 0) -> np.ndarray:
    """How real each candidate looks to a critic: the C2ST's CNN trained on ``real`` against ``fit``.

    Rejection by a trained critic (after Azadi et al. 2019, with a critic trained after the GAN
    rather than the GAN's own D, which R1 keeps too smooth to rank its draws): the critic learns
    what tells this generator's draws (``fit``) from the real images, and scores fresh draws
    (``candidates``, none of them in ``fit``) by it. Keeping the highest-scoring ones
    (:func:`keep_most_real`) drops the draws that carry the generator's tells. The critic is the
    same network as :func:`medgan.metrics.c2st.c2st`'s, so a set picked by it must also be judged
    by other means: on BreastMNIST it lowered the C2ST by 0.05-0.08 per class over five GANs while a
    held-out real set and another network saw no consistent change (``gan_quality.md``), so it is a
    measurement here, not a medgan feature.

    Args:
        real: uint8 ``(N, C, *spatial)``: real images of one class (the GAN's training images).
        fit: uint8 draws of the same class to train the critic on (their loss is balanced against ``real``'s).
        candidates: uint8 draws to score.
        config: the critic's training settings (:class:`medgan.metrics.c2st.C2STConfig`; folds unused).
        seed: seeds the critic.

    Returns:
        float64 ``(len(candidates),)``: the critic's logit that each candidate is real.

    Raises:
        ValueError: empty sets or mismatched image shapes.
    """
    if min(len(real), len(fit)) == 0:
        raise ValueError("realism_scores needs real images and draws to fit the critic on")
    if not real.shape[1:] == fit.shape[1:] == candidates.shape[1:]:
        raise ValueError(f"image shapes differ: real {real.shape[1:]}, fit {fit.shape[1:]}, "
                         f"candidates {candidates.shape[1:]}")
    cfg = config or C2STConfig()
    x = np.concatenate([real, fit])
    y = np.concatenate([np.ones(len(real)), np.zeros(len(fit))]).astype(np.float32)
    net = fit_two_sample_cnn(x, y, cfg, seed=seed, real_weight=len(fit) / len(real))
    return two_sample_logits(net, candidates, cfg.device)


def keep_most_real(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest ``scores`` (ties: the earlier draw), in draw order."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not 0 <= n <= len(scores):
        raise ValueError(f"cannot keep {n} of {len(scores)} draws")
    return np.sort(np.argsort(-scores, kind="stable")[:n])


def realism_rejected_like(gen, real_x: np.ndarray, real_y: np.ndarray, counts: list[int], seed: int,
                          factor: float, fit_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` images of class ``c``: those of ``factor × counts[c]`` draws that a critic scores most real.

    The critic (:func:`realism_scores`) trains on class ``c``'s real train
    images against ``fit_factor ×`` as many other draws (sampling seed ``seed + 500000 + 1000 c``);
    the candidates are the draws ``sample_like`` would make, the first ``counts[c]`` of them the
    same images.
    """
    images, labels = [], []
    for c, n in enumerate(counts):
        fit = np.concatenate(list(iter_samples(gen, c, max(1, round(n * fit_factor)), seed=seed + 500_000 + 1000 * c)))
        pool = np.concatenate(list(iter_samples(gen, c, round(n * factor), seed=seed + 1000 * c)))
        scores = realism_scores(real_x[real_y == c], fit, pool, seed=seed + c)
        images.append(pool[keep_most_real(scores, n)])
        labels.append(np.full(n, c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def match_sizes(candidate_sizes: np.ndarray, target_sizes: np.ndarray) -> np.ndarray:
    """Indices of candidates whose sizes follow ``target_sizes``: one per target, each the nearest unused.

    The targets are taken from the smallest up; each takes the unused candidate nearest its size (the
    smaller one on a tie), so with a pool several times the targets' number the picked sizes follow the
    targets' distribution wherever the pool reaches it. Returned in draw order.

    Raises:
        ValueError: fewer candidates than targets.
    """
    cand = np.asarray(candidate_sizes, dtype=np.float64).reshape(-1)
    targets = np.sort(np.asarray(target_sizes, dtype=np.float64).reshape(-1))
    if len(targets) > len(cand):
        raise ValueError(f"cannot match {len(targets)} sizes from {len(cand)} candidates")
    order = np.argsort(cand, kind="stable")
    free = list(order)  # candidate indices sorted by size; picked ones are removed
    free_sizes = list(cand[order])
    picked = []
    for t in targets:
        j = int(np.searchsorted(free_sizes, t))
        if j == len(free_sizes) or (j > 0 and t - free_sizes[j - 1] <= free_sizes[j] - t):
            j -= 1
        picked.append(free.pop(j))
        free_sizes.pop(j)
    return np.sort(np.array(picked, dtype=np.int64))


def size_matched_like(gen, real_x: np.ndarray, real_y: np.ndarray, counts: list[int], seed: int,
                      factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` masks of class ``c``: of ``factor × counts[c]`` draws, those whose foreground sizes follow
    class ``c``'s real training masks (:func:`match_sizes`; foreground = voxels above 127).

    Rejection on one statistic the real masks carry per class (the 3D glands' size tells the class with
    ROC AUC 0.68): a measurement of how much of a generator's missing class signal is the sizes it draws.
    """
    images, labels = [], []
    for c, n in enumerate(counts):
        pool = np.concatenate(list(iter_samples(gen, c, round(n * factor), seed=seed + 1000 * c)))
        sizes = (pool > 127).reshape(len(pool), -1).sum(1)
        target = (real_x[real_y == c] > 127).reshape(int((real_y == c).sum()), -1).sum(1)
        images.append(pool[match_sizes(sizes, target[:n])])
        labels.append(np.full(n, c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _fit_classifier(train: tuple[np.ndarray, np.ndarray], ds, seed: int, epochs: int):
    """The benchmark classifier (``cnn``, balanced loss) trained on ``train``, its epoch selected on real val."""
    x = ds.channel_first("train")
    torch.manual_seed(seed)
    net = build_classifier("cnn", x.ndim - 2, x.shape[1], ds.info.num_classes)
    return train_classifier(net, train, (ds.channel_first("val"), ds.labels["val"]), epochs=epochs, seed=seed)


def parts_accuracy(train: tuple[np.ndarray, np.ndarray], ds, seed: int, epochs: int,
                   twin: np.ndarray) -> dict[str, float]:
    """One classifier seed's balanced accuracy on the whole test split (``all``), on its images with a
    near-duplicate in the train split (``twin``) and on those without (``clean``)."""
    net, _ = _fit_classifier(train, ds, seed, epochs)
    proba = predict_proba(net, ds.channel_first("test"))
    y = ds.labels["test"]
    return {part: classifier_scores(proba[m], y[m])["balanced_accuracy"] if m.any() else float("nan")
            for part, m in (("all", np.ones_like(twin)), ("twin", twin), ("clean", ~twin))}


def classifier_balanced_accuracy(train: tuple[np.ndarray, np.ndarray], ds, seeds: int, epochs: int,
                                 twin: np.ndarray | None = None) -> dict[str, list[float]]:
    """The benchmark classifier (``cnn``, 40 epochs, balanced loss) trained on ``train``: real-test balanced
    accuracy per seed, on the whole test split (``all``) and on its images without a train twin (``clean``)."""
    twin = np.zeros(len(ds.labels["test"]), dtype=bool) if twin is None else twin
    rows = [parts_accuracy(train, ds, seed, epochs, twin) for seed in range(seeds)]
    return {part: [r[part] for r in rows] for part in ("all", "clean")}


def val_balanced_accuracy(train: tuple[np.ndarray, np.ndarray], ds, seeds: int, epochs: int) -> list[float]:
    """The same classifier's real-val balanced accuracy at its selected epoch, per seed; the test split is not read.

    The checkpoint selection's score: val already selects the classifier's epoch, so the figure is
    optimistic by the same amount for every checkpoint and only their order is used.
    """
    out = []
    for seed in range(seeds):
        _, history = _fit_classifier(train, ds, seed, epochs)
        out.append(max(row["val_balanced_accuracy"] for row in history if row["selected"]))
    return out


def select_checkpoint(run: Path, ds, counts: list[int], seeds: int, epochs: int, t0: float) -> tuple[Path, list[dict]]:
    """The run's periodic checkpoint whose synthetic images train the best classifier on real val (ties: the later).

    Returns the chosen checkpoint and one row per checkpoint (``step``, ``val_balanced_accuracy`` per seed and mean).
    """
    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    if not ckpts:
        raise SystemExit(f"--select-on-val: no step_*.pt checkpoints under {run / 'checkpoints'}")
    rows = []
    for ckpt in ckpts:
        _phase(t0, f"val TSTR of {ckpt.name} ({seeds} classifier seed(s))")
        gen = load_model(ckpt, "cpu")
        if isinstance(gen, LoadedTranslator):
            raise SystemExit("--select-on-val: a class translator (the cycle family) has no class-conditional samples to select on")
        syn = sample_like(gen, counts, seed=0)
        val = val_balanced_accuracy(syn, ds, seeds, epochs)
        rows.append({"step": int(ckpt.stem.split("_")[1]), "val_balanced_accuracy": val,
                     "val_balanced_accuracy_mean": float(np.mean(val))})
    best = max(range(len(rows)), key=lambda k: (rows[k]["val_balanced_accuracy_mean"], k))
    return ckpts[best], rows


def power_ratio(real_x: np.ndarray, syn_x: np.ndarray) -> list[float]:
    """Synthetic over real mean power per ring of radial frequency (0 to 0.5 cycles/pixel, lowest first; mean removed).

    Ring 0 holds only the removed mean at 28 pixels or more, so its ratio is 0 / 0 and reported as 1.
    """
    real = radial_power(torch.from_numpy(real_x).float())
    syn = radial_power(torch.from_numpy(syn_x).float())
    return [1.0 if float(r) == 0 else round(float(s / r), 4) for s, r in zip(syn, real, strict=True)]


MASK_VIEWS = ("raw", "largest", "largest_blur1", "largest_blur2", "centred", "centred_blur2")


def mask_view(u8: np.ndarray, view: str) -> np.ndarray:
    """Binary uint8 masks ``(N, 1, *spatial)`` reduced as ``view`` (one of :data:`MASK_VIEWS`) says.

    ``largest``: each mask's largest connected piece (26-connected); ``centred``: that piece moved by
    whole voxels so its centre of mass sits at the centre of the volume; ``_blurN``: then a Gaussian
    blur of sigma N voxels, rounded back to uint8 (edges and thin structures fade, coarse shape stays).
    """
    from scipy import ndimage

    if view == "raw":
        return u8
    out = keep_largest_component(u8)
    if view.startswith("centred"):
        centre = (np.array(out.shape[2:]) - 1) / 2
        for i in range(len(out)):
            mask = out[i, 0] > 127
            if mask.any():
                shift = np.round(centre - np.array(ndimage.center_of_mass(mask))).astype(int)
                out[i, 0] = ndimage.shift(out[i, 0], shift, order=0, mode="constant", cval=0)
    if "_blur" in view:
        sigma = float(view.rsplit("_blur", 1)[1])
        blurred = np.stack([ndimage.gaussian_filter(v.astype(np.float32), sigma, mode="constant") for v in out[:, 0]])[:, None]
        out = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    return out


def mask_view_metrics(real: np.ndarray, synthetic: np.ndarray, heldout: np.ndarray,
                      config: C2STConfig) -> dict[str, float]:
    """``c2st/mask_view_<view>`` and ``c2st/mask_view_<view>_floor`` (real train vs held-out real) per view."""
    out: dict[str, float] = {}
    cfg = dataclasses.replace(config, views=("image",))
    for view in MASK_VIEWS:
        r = mask_view(real, view)
        out[f"c2st/mask_view_{view}"] = c2st(r, mask_view(synthetic, view), cfg)["auc"]
        out[f"c2st/mask_view_{view}_floor"] = c2st(r, mask_view(heldout, view), cfg, both_real=True)["auc"]
    return out


def run_facts(argv: list[str] | None) -> dict[str, object]:
    """What every record says about how it was taken: torch threads, machine and the command line."""
    return {"threads": torch.get_num_threads(), "machine": f"{platform.platform()}, torch {torch.__version__}",
            "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])}


def emit(record: dict, out: Path | None) -> None:
    """Print ``record`` as one JSON line and append it to ``out`` (JSON lines) when given."""
    text = json.dumps(record)
    print(text, flush=True)
    if out is not None:
        with open(out, "a") as f:
            f.write(text + "\n")


def _phase(t0: float, what: str) -> None:
    """One progress line on stderr: the evaluation takes minutes in 2D and an hour or more in 3D on a CPU."""
    print(f"[{time.time() - t0:7.0f} s] {what}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a run folder or checkpoint .pt")
    p.add_argument("--data", required=True, help="registry name or prepared dataset the GAN was trained on")
    p.add_argument("--data-size", type=int, default=None, help="MedMNIST size (64 for the 64-pixel files)")
    p.add_argument("--label", default="", help="a name for this variant in the record")
    p.add_argument("--seeds", type=int, default=3, help="classifier seeds for TSTR and real-only")
    p.add_argument("--epochs", type=int, default=40, help="classifier epochs")
    p.add_argument("--c2st-max", type=int, default=1000, help="at most this many images per side in C2ST")
    p.add_argument("--c2st-folds", type=int, default=5, help="C2ST cross-validation folds (fewer is faster)")
    p.add_argument("--views", action="store_true",
                   help="also run the overall C2ST on each view alone (image, high-pass residual, histogram): "
                        "what gives the samples away")
    p.add_argument("--mask-views", action="store_true",
                   help="binary masks: also run the overall C2ST on the masks reduced step by step (largest piece, "
                        "blurred, centred), each beside its real-vs-real floor: what gives the masks away")
    p.add_argument("--spectrum", action="store_true",
                   help="also record the synthetic/real power per ring of radial frequency, and its mean above "
                        "0.35 cycles/pixel (spectrum/ratio_fine): how much fine texture the samples carry")
    p.add_argument("--skip-real-only", action="store_true", help="do not retrain the real-only classifier")
    p.add_argument("--tstr-only", action="store_true",
                   help="skip the C2ST and SWD: only the value figures and TSTR (with --seeds classifier seeds), "
                        "to read a generator's class signal over many classifier seeds cheaply")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the real-vs-real C2ST floor (the same for every checkpoint of one dataset: "
                        "take it from that dataset's first record)")
    p.add_argument("--real-only-twin-free", type=float, default=None,
                   help="with --real-only: the real-only balanced accuracy on the test images without a train "
                        "twin, measured before (benchmarks/results/test_leak.json)")
    p.add_argument("--real-only", type=float, default=None,
                   help="the real-only balanced accuracy measured before (same data, seeds and epochs): "
                        "reported and used for the TSTR ratio instead of retraining")
    p.add_argument("--gan-wall-s", type=float, default=None, help="the GAN's training wall time, for the record")
    p.add_argument("--out", type=Path, default=None, help="append the JSON record to this JSON-lines file")
    p.add_argument("--grids", type=Path, default=None,
                   help="write real | synthetic grids, one PNG per class, into this folder (look before recording)")
    p.add_argument("--grids-only", action="store_true", help="write the grids and stop (no metrics)")
    p.add_argument("--select-on-val", action="store_true",
                   help="--checkpoint is a run folder: measure the periodic checkpoint whose samples train the best "
                        "classifier on real val (the test split plays no part in the choice); train with "
                        "--set keep_checkpoints=N to keep N to choose from")
    p.add_argument("--keep-largest", action="store_true",
                   help="sample as model.g_keep_largest: true does (mask cleanup at sampling; training is the same)")
    p.add_argument("--d-rejection", type=float, default=None, metavar="K",
                   help="keep, per class, the 1/K of K times as many samples that the checkpoint's D scores most real")
    p.add_argument("--realism", type=float, default=None, metavar="K",
                   help="keep, per class, the 1/K of K times as many draws that a critic (the C2ST's CNN trained "
                        "on the real images against other draws) scores most real")
    p.add_argument("--realism-fit", type=float, default=4.0, metavar="F",
                   help="with --realism: the critic trains on F draws per real image of the class")
    p.add_argument("--size-match", type=float, default=None, metavar="K",
                   help="binary masks: keep, per class, the masks of K times as many draws whose foreground sizes "
                        "follow the class's real training masks (how much of the missing class signal is size?)")
    p.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="sample as `medgan augment --truncation T` does (latents from the normal truncated to "
                        "[-T, T]; ψ for the style family): does trading diversity for typical draws fool the C2ST?")
    args = p.parse_args(argv)
    if sum(a is not None for a in (args.truncation, args.d_rejection, args.realism, args.size_match)) > 1:
        raise SystemExit("--truncation, --d-rejection, --realism and --size-match: choose one way of picking draws")
    if args.size_match is not None and args.size_match < 1:
        raise SystemExit("--size-match K needs K >= 1 (K times as many draws, those of the real sizes kept)")
    if args.realism is not None and not (args.realism >= 1 and args.realism_fit > 0):
        raise SystemExit("--realism K needs K >= 1 and --realism-fit F > 0")
    if args.tstr_only and (args.views or args.mask_views):
        raise SystemExit("--views and --mask-views are a C2ST per view: they cannot run with --tstr-only")
    if args.truncation is not None and not args.truncation > 0:
        raise SystemExit(f"--truncation must be a positive number, got {args.truncation}")
    if args.d_rejection is not None and args.d_rejection < 1:
        raise SystemExit("--d-rejection K needs K >= 1 (K times as many draws, the best 1/K kept)")

    t0 = time.time()
    ds = load_dataset(args.data, size=args.data_size)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    counts = np.bincount(real_y, minlength=ds.info.num_classes).tolist()
    checkpoint, selection = Path(args.checkpoint), None
    if args.select_on_val:
        load_model(checkpoint, "cpu").check_trained_on(ds.info, "--data", checkpoint)
        checkpoint, selection = select_checkpoint(checkpoint, ds, counts, args.seeds, args.epochs, t0)
    gen = load_model(checkpoint, "cpu")
    gen.check_trained_on(ds.info, "--data", checkpoint)
    if args.keep_largest and not isinstance(gen, LoadedTranslator):
        gen.keep_largest_component = True
    if isinstance(gen, LoadedTranslator):
        # A class translator (the cycle family): class c's images are the other class's train images,
        # translated, so there are at most as many as that class has (C2ST balances its sides anyway).
        syn_x, syn_y = translated_pool(gen, ds, [min(n, counts[1 - c]) for c, n in enumerate(counts)], seed=0)
    elif args.realism is not None:
        syn_x, syn_y = realism_rejected_like(gen, real_x, real_y, counts, 0, args.realism, args.realism_fit)
    elif args.size_match is not None:
        syn_x, syn_y = size_matched_like(gen, real_x, real_y, counts, 0, args.size_match)
    elif args.d_rejection is not None:
        if isinstance(gen, LoadedTranslator):
            raise SystemExit("--d-rejection: a class translator (the cycle family) has no draws to reject")
        syn_x, syn_y = d_rejected_like(gen, checkpoint, counts, seed=0, factor=args.d_rejection)
    else:
        syn_x, syn_y = sample_like(gen, counts, seed=0, truncation=args.truncation)
    heldout = np.concatenate([ds.channel_first("val"), ds.channel_first("test")])
    slugs = class_slugs(list(ds.info.class_names))
    if args.grids is not None:
        args.grids.mkdir(parents=True, exist_ok=True)
        for c, slug in enumerate(slugs):
            save_class_grid(args.grids / f"{slug}.png", real_x[real_y == c], syn_x[syn_y == c],
                            f"{ds.info.name}: {ds.info.class_names[c]} ({args.label or args.checkpoint})", n=16)
    if args.grids_only:
        return 0

    record: dict = {
        "label": args.label,
        "checkpoint": str(checkpoint),
        "data": ds.info.name,
    }
    if selection is not None:
        record["selection_on_val"] = selection
    metrics: dict[str, float] = {}
    c2st_cfg = C2STConfig(max_per_side=args.c2st_max, folds=args.c2st_folds)
    if not args.tstr_only:
        _phase(t0, f"{len(syn_x)} synthetic images; C2ST ({args.c2st_folds} folds: overall, per class"
                   + (")" if args.no_floor else " and real-vs-real)"))
        metrics.update(c2st_metrics(real_x, real_y, syn_x, syn_y, slugs, None if args.no_floor else heldout, c2st_cfg))
    if args.grids is not None and not args.tstr_only:  # what the per-class C2ST saw (its scores are memoised: no second run)
        for c, slug in enumerate(slugs):
            if f"c2st/auc/class_{slug}" in metrics:
                r, s = real_x[real_y == c], syn_x[syn_y == c]
                save_c2st_extremes(args.grids / f"c2st_extremes_{slug}.png", c2st_ranking(r, s, c2st_cfg), r, s,
                                   f"{ds.info.name}: {ds.info.class_names[c]}, C2ST "
                                   f"{metrics[f'c2st/auc/class_{slug}']:.3f} ({args.label or args.checkpoint})")
    if args.views:
        _phase(t0, "C2ST per view (image, residual, histogram)")
        keep_real, keep_syn = matched_proportions(real_y, syn_y, c2st_cfg.max_per_side, c2st_cfg.seed)
        metrics.update(c2st_views(real_x[keep_real], syn_x[keep_syn], c2st_cfg))
    if args.mask_views:
        _phase(t0, f"C2ST per mask view ({', '.join(MASK_VIEWS)}), each with its floor")
        keep_real, keep_syn = matched_proportions(real_y, syn_y, c2st_cfg.max_per_side, c2st_cfg.seed)
        metrics.update(mask_view_metrics(real_x[keep_real], syn_x[keep_syn], heldout, c2st_cfg))
    if args.spectrum:
        ratios = power_ratio(real_x, syn_x)
        record["power_ratio_per_ring"] = ratios
        fine = [r for k, r in enumerate(ratios) if k / len(ratios) * 0.5 >= 0.35]
        metrics["spectrum/ratio_fine"] = float(np.mean(fine))
    if not args.tstr_only:
        _phase(t0, "SWD")
        metrics.update(swd_metrics(real_x, real_y, syn_x, syn_y, slugs, heldout))
    metrics.update(value_metrics(real_x, syn_x, real_labels=real_y, synthetic_labels=syn_y,
                                 class_names=list(ds.info.class_names)))
    metrics.update(mask_distance(metrics, list(ds.info.class_names)))  # medgan select's rule (mask data only)
    _phase(t0, f"TSTR ({args.seeds} classifier seed(s))")
    # The test images with a near-duplicate in the train split: a real-trained classifier can recognise them,
    # a synthetic-trained one cannot, so TSTR is also read on the rest (BreastMNIST: 36 % have a twin).
    twin = twins_in(ds.channel_first("test"), real_x)
    metrics["test/twin_share"] = float(twin.mean())
    tstr = classifier_balanced_accuracy((syn_x, syn_y), ds, args.seeds, args.epochs, twin)
    metrics["tstr/balanced_accuracy"] = float(np.mean(tstr["all"]))
    metrics["tstr/balanced_accuracy_std"] = float(np.std(tstr["all"]))
    record["tstr_per_seed"] = tstr["all"]
    if twin.any():
        metrics["tstr/balanced_accuracy_twin_free"] = float(np.mean(tstr["clean"]))
    if args.real_only is not None:
        metrics["real_only/balanced_accuracy"] = args.real_only
        if args.real_only_twin_free is not None:
            metrics["real_only/balanced_accuracy_twin_free"] = args.real_only_twin_free
        record["real_only_given"] = True
    elif not args.skip_real_only:
        _phase(t0, f"real-only ({args.seeds} classifier seed(s))")
        real_only = classifier_balanced_accuracy((real_x, real_y), ds, args.seeds, args.epochs, twin)
        metrics["real_only/balanced_accuracy"] = float(np.mean(real_only["all"]))
        record["real_only_per_seed"] = real_only["all"]
        if twin.any():
            metrics["real_only/balanced_accuracy_twin_free"] = float(np.mean(real_only["clean"]))
    if "real_only/balanced_accuracy" in metrics:
        metrics["tstr/ratio_to_real_only"] = metrics["tstr/balanced_accuracy"] / metrics["real_only/balanced_accuracy"]
    if {"tstr/balanced_accuracy_twin_free", "real_only/balanced_accuracy_twin_free"} <= metrics.keys():
        metrics["tstr/ratio_to_real_only_twin_free"] = (metrics["tstr/balanced_accuracy_twin_free"]
                                                        / metrics["real_only/balanced_accuracy_twin_free"])
    record.update({
        "metrics": metrics,
        "gan_wall_time_s": args.gan_wall_s,
        "eval_wall_time_s": round(time.time() - t0, 1),
        **run_facts(argv),
    })
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
