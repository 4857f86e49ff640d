"""Per-class C2ST at equal n: how much of a larger class's higher AUC is the test's extra training data?

The per-class C2ST trains its CNN on all of a class's images, so a class with more images gets a stronger
two-sample test. This script scores each class of a BreastMNIST GAN in full and on three random subsets of
the smallest class's size (147, malignant), with the C2ST settings of ``gan_quality.py``.

Usage:
    python benchmarks/c2st_equal_n_check.py runs/q/breast_ss2_area_s2 [RUN ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from medgan.data.dataset import load_dataset
from medgan.metrics.c2st import C2STConfig, c2st
from medgan.synth.sampling import iter_samples
from medgan.synth.translate import load_model


def main(runs: list[str], subsets: int = 3) -> None:
    """Print, per run and class, the full per-class C2ST and the C2ST on ``subsets`` equal-n subsets."""
    ds = load_dataset("breastmnist")
    x, y = ds.channel_first("train"), ds.labels["train"]
    n_small = int(np.bincount(y).min())
    for run in runs:
        gen = load_model(Path(run), "cpu")
        for c in range(ds.info.num_classes):
            real = x[y == c]
            syn = np.concatenate(list(iter_samples(gen, c, len(real), seed=1000 * c)))
            full = c2st(real, syn, C2STConfig(max_per_side=1000, folds=5, seed=0))["auc"]
            rng = np.random.default_rng(0)
            subs = []
            for r in range(subsets):
                i, j = rng.permutation(len(real))[:n_small], rng.permutation(len(syn))[:n_small]
                subs.append(c2st(real[i], syn[j], C2STConfig(max_per_side=1000, folds=5, seed=r))["auc"])
            print(f"{run} class {c} ({len(real)} images): full {full:.3f}; at n={n_small}: "
                  f"{', '.join(f'{s:.3f}' for s in subs)} (mean {np.mean(subs):.3f})", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1:])
