"""The C2ST with and without near-duplicates kept in one fold, on the same samples of the same GANs.

BreastMNIST's train split holds the same scan more than once (a third of its benign images have a twin
within 10 grey levels RMS). With plain stratified folds a real image's twin sits in another fold, the
two-sample CNN recognises it and scores it real whatever the generator does: the AUC is inflated, most in
the class with the most twins, and the real-vs-real floor is pushed below 0.5 (a held-out image whose twin
is in the train split is scored "train"). This script measures how much, per dataset and GAN:

- the share of each class's train images that have a twin (``near_duplicate_groups`` at ``--twin-rms``);
- for each run: the overall and per-class C2ST and the real-vs-real floor, with plain folds
  (``twin_rms=None``, the test as recorded before 2026-12-05's thirty-seventh session) and grouped
  (the default since), on the very samples ``gan_quality.py`` scores (``sample_like``, seed 0).

Usage:
    python benchmarks/c2st_twins_check.py --data breastmnist runs/q/repro_ss runs/q/breast_ss2_area_s2 \\
        --out benchmarks/results/c2st_twins.json --grids runs/q/twins_grids
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from medgan.data.dataset import class_slugs, load_dataset
from medgan.data.splits import near_duplicate_groups
from medgan.metrics.c2st import C2STConfig, c2st_metrics, c2st_ranking
from medgan.metrics.report import save_c2st_extremes
from medgan.synth.translate import load_model

try:  # run as a script from the repository root
    from gan_quality import sample_like
except ImportError:  # imported as benchmarks.c2st_twins_check
    from benchmarks.gan_quality import sample_like


def twin_shares(images: np.ndarray, labels: np.ndarray, rms: float) -> dict[str, float]:
    """Per class (and ``all``): the share of the images with a twin among the images of that class."""
    out = {}
    for c in np.unique(labels):
        groups = near_duplicate_groups(images[labels == c], rms)
        out[str(int(c))] = float((np.bincount(groups)[groups] > 1).mean())
    groups = near_duplicate_groups(images, rms)
    out["all"] = float((np.bincount(groups)[groups] > 1).mean())
    return out


def save_twin_pairs(images: np.ndarray, path: Path, per_band: int = 6) -> None:
    """Each image beside its nearest neighbour in the same set, six pairs per band of RMS distance (2D, grey)."""
    from PIL import Image

    flat = images.reshape(len(images), -1).astype(np.float32)
    sq = (flat**2).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * flat @ flat.T, 0) / flat.shape[1])
    np.fill_diagonal(dist, np.inf)
    nearest, gap = dist.argmin(1), dist.min(1)
    h, w = images.shape[2:]
    rows = []
    for lo, hi in [(0, 2), (2, 4), (4, 6), (6, 9), (9, 13), (13, 18)]:
        row = np.full((h + 4, per_band * (2 * w + 7)), 255, np.uint8)
        for k, i in enumerate(np.flatnonzero((gap >= lo) & (gap < hi))[:per_band]):
            x0 = k * (2 * w + 7)
            row[:h, x0:x0 + w], row[:h, x0 + w + 1:x0 + 2 * w + 1] = images[i, 0], images[nearest[i], 0]
        rows.append(row)
    grid = np.concatenate(rows)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="GAN run folders or checkpoints trained on --data")
    p.add_argument("--data", required=True, help="registry name, e.g. breastmnist, breastmnist_64, adrenalmnist3d")
    p.add_argument("--folds", type=int, default=5, help="C2ST folds (the 3D rows use 2)")
    p.add_argument("--twin-rms", type=float, default=C2STConfig.twin_rms, help="twins: within this RMS (grey levels)")
    p.add_argument("--out", type=Path, default=None, help="write the records here (JSON)")
    p.add_argument("--grids", type=Path, default=None, help="write each run's per-class C2ST extremes (grouped) here")
    p.add_argument("--pairs", type=Path, default=None,
                   help="write train images beside their nearest train neighbour, by band of RMS distance "
                        "(0-2, 2-4, 4-6, 6-9, 9-13, 13-18 grey levels; a row each), to this PNG (2D grey data)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.time()
    ds = load_dataset(args.data)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    heldout = np.concatenate([ds.channel_first("val"), ds.channel_first("test")])
    slugs = class_slugs(list(ds.info.class_names))
    counts = np.bincount(real_y, minlength=ds.info.num_classes).tolist()
    shares = twin_shares(real_x, real_y, args.twin_rms)
    print(f"{ds.info.name}: train images with a twin within {args.twin_rms} RMS: "
          + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()), flush=True)
    if args.pairs is not None:
        save_twin_pairs(real_x, args.pairs)
    grouped = C2STConfig(folds=args.folds, twin_rms=args.twin_rms)
    plain = dataclasses.replace(grouped, twin_rms=None)
    records = []
    for run in args.runs:
        gen = load_model(Path(run), "cpu")
        gen.check_trained_on(ds.info, "--data", Path(run))
        syn_x, syn_y = sample_like(gen, counts, seed=0)
        rec: dict = {"run": run}
        for name, cfg in (("plain", plain), ("grouped", grouped)):
            rec[name] = c2st_metrics(real_x, real_y, syn_x, syn_y, slugs, heldout, cfg)
        if args.grids is not None:
            for c, slug in enumerate(slugs):
                r, s = real_x[real_y == c], syn_x[syn_y == c]
                auc = rec["grouped"][f"c2st/auc/class_{slug}"]
                save_c2st_extremes(args.grids / f"{Path(run).name}_{slug}.png", c2st_ranking(r, s, grouped), r, s,
                                   f"{ds.info.name}: {ds.info.class_names[c]}, C2ST {auc:.3f} (twins in one fold; "
                                   f"{Path(run).name})")
        records.append(rec)
        line = " | ".join(
            f"{key.removeprefix('c2st/auc/class_') if 'class_' in key else 'overall'} "
            f"{rec['plain'][key]:.3f} -> {rec['grouped'][key]:.3f}"
            for key in ["c2st/auc", *[f"c2st/auc/class_{s}" for s in slugs]]
        )
        print(f"{run}: {line} ({time.time() - t0:.0f} s)", flush=True)
    floor = {name: records[0][name]["c2st/real_vs_real_auc"] for name in ("plain", "grouped")} if records else {}
    if floor:
        print(f"real-vs-real floor: plain {floor['plain']:.3f} -> grouped {floor['grouped']:.3f}")
    if args.out is not None:
        old = json.loads(args.out.read_text()) if args.out.is_file() else {}
        old[ds.info.name] = {
            "twin_rms": args.twin_rms, "folds": args.folds, "train_twin_share": shares, "floor": floor,
            "runs": records, "threads": args.threads, "wall_s": round(time.time() - t0, 1),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(old, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
