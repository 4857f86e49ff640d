"""Would a checkpoint guard that reads thickness keep better checkpoints than ``medgan select``'s mask distance?

Scores every kept checkpoint of each run (``RUN/checkpoints/step_*.pt``) as ``medgan select`` does (its draws:
the train split's class counts, sampling seed 0; :func:`medgan.metrics.evaluate.mask_distance`) and adds two
thickness parts built as the distance's size parts are, from each mask's mean Euclidean depth (the distance
transform of the foreground, averaged over it):

- ``depth_gap``: per class, ``|AUC_syn - AUC_real| / max(|AUC_real - 0.5|, 0.05)`` of the mean depth; averaged;
- ``depths``: per class, the relative error of the mean depth; averaged.

One JSON line per checkpoint (``candidate`` = the distance plus both parts); a run's lines already in ``--out`` are
skipped, so a stopped run resumes. The TSTR of the checkpoints each guard keeps is ``gan_quality.py --tstr-only``'s.
``benchmarks/results/gan_quality.md``, "A pick guard that reads thickness", has the result: the guard changed one
pick of ten. About 25 s a checkpoint at 2 threads (2026-12-07).

Usage:
    python benchmarks/thickness_guard_check.py runs/q/adrenal_st05L_s0 runs/q/adrenal_st05L_s1 \\
        --out runs/q/depthguard_48.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from medgan.data.dataset import load_dataset
from medgan.metrics.evaluate import mask_distance, value_metrics
from medgan.synth.sampling import load_generator, sample_counts
from medgan.training.checkpoint import list_checkpoints


def mean_depth(images: np.ndarray) -> np.ndarray:
    """Each ``(N, 1, *spatial)`` uint8 mask's mean Euclidean depth over its foreground (above 127); 0 when empty."""
    masks = np.asarray(images)[:, 0] > 127
    return np.array([ndimage.distance_transform_edt(m)[m].mean() if m.any() else 0.0 for m in masks])


def depth_parts(real: np.ndarray, real_y: np.ndarray, syn: np.ndarray, syn_y: np.ndarray,
                n_classes: int) -> dict[str, float]:
    """The two thickness parts and, per class, the depth figures they are made of."""
    gaps, levels, figures = [], [], {}
    for c in range(n_classes):
        auc_real, auc_syn = roc_auc_score(real_y == c, real), roc_auc_score(syn_y == c, syn)
        mean_real, mean_syn = real[real_y == c].mean(), syn[syn_y == c].mean()
        gaps.append(abs(auc_syn - auc_real) / max(abs(auc_real - 0.5), 0.05))
        levels.append(abs(mean_syn - mean_real) / mean_real)
        figures.update({f"depth_auc_real/{c}": auc_real, f"depth_auc_syn/{c}": auc_syn,
                        f"depth_real/{c}": mean_real, f"depth_syn/{c}": mean_syn})
    return {"depth_gap": float(np.mean(gaps)), "depths": float(np.mean(levels)), **figures}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="3D mask GAN run folders with kept checkpoints")
    p.add_argument("--data", default="adrenalmnist3d")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="append one JSON line per checkpoint here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    real_x, real_y = ds.channel_first("train"), np.asarray(ds.labels["train"]).reshape(-1)
    names = list(ds.info.class_names)
    real_depth = mean_depth(real_x)
    lines = args.out.read_text().splitlines() if args.out.exists() else []
    done = {json.loads(line)["checkpoint"] for line in lines if line.strip()}
    for run in args.runs:
        tail = run.name.rsplit("_s", 1)[-1]
        seed = int(tail) if tail.isdigit() else None  # the training seed, when the folder is named ..._s<seed>
        for ckpt in list_checkpoints(run):
            if str(ckpt) in done:
                continue
            t0 = time.time()
            gen = load_generator(ckpt, "cpu")
            syn_x, syn_y = sample_counts(gen, np.bincount(real_y, minlength=gen.num_classes), seed=0)
            syn_y = np.asarray(syn_y)
            figures = value_metrics(real_x, syn_x, real_labels=real_y, synthetic_labels=syn_y, class_names=names)
            distance = mask_distance(figures, names)
            depth = depth_parts(real_depth, real_y, mean_depth(syn_x), syn_y, len(names))
            record = {"seed": seed, "checkpoint": str(ckpt), "step": int(Path(ckpt).stem.split("_")[1]), **distance,
                      **depth, "candidate": distance["mask_distance"] + depth["depth_gap"] + depth["depths"],
                      "pieces": figures["values/components_synthetic"], "wall_s": round(time.time() - t0, 1)}
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(run.name, record["step"], f"distance {distance['mask_distance']:.3f}",
                  f"depth gap {depth['depth_gap']:.3f}", f"depths {depth['depths']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
