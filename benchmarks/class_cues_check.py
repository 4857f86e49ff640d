"""Which class cues do a mask generator's draws carry? Size alone, and a few hand shape features, each as a TSTR.

The CNN's TSTR (``gan_quality.py --tstr-only``) says how much class signal a generator's draws carry, not what it
is. This fits two small models on the draws and scores them on the real test split, beside the same models fitted
on the real train split (what each cue is worth in real data):

- **size**: a balanced logistic regression on the log of the mask's share of the volume;
- **shape**: the same on :func:`mask_margin_check.shape_features` (volume, pieces, surface share, the three
  principal spreads, flatness, the deepest and mean depth), standardised.

If a run's CNN TSTR sits at its size-only figure, its draws carry the class through size and nothing else; if the
real-train size model already reads about what the CNN TSTR does, a generator can only pass it by drawing class
differences of shape. Each record also holds every shape feature's class AUC (real train, or the draws), which
says which class difference a generator draws wrong. The draws are ``gan_quality.py``'s (the train split's class counts, ``seed=0``), so the
figures pair with its TSTR records. No network is trained; 250-300 s per run at one `nice`d thread beside a
2-thread training job (2026-12-06), most of it the shape features.

Usage:
    python benchmarks/class_cues_check.py runs/q/adrenal_st05_s0 runs/q/adrenal_st05_s1 --threads 1 \\
        --out benchmarks/results/gan_quality/class_cues_s45.jsonl
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from gan_quality import emit, sample_like  # sibling scripts
from mask_margin_check import FEATURES, shape_features
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from medgan.data.dataset import load_dataset
from medgan.synth.translate import load_model

CUES = ("size", "shape")


def cue_features(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per cue, the ``(N, F)`` features of ``(N, 1, D, H, W)`` uint8 masks (foreground above 127)."""
    masks = np.asarray(images)[:, 0] > 127
    share = masks.reshape(len(masks), -1).mean(1)
    return {"size": np.log(share + 1e-4)[:, None],
            "shape": np.array([shape_features(m) for m in masks], dtype=np.float64)}


def cue_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    """Balanced accuracy on ``test`` of a class-balanced logistic regression fitted on ``train`` (standardised)."""
    if len(np.unique(train_y)) < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    model.fit(train, train_y)
    return float(balanced_accuracy_score(test_y, model.predict(test)))


def feature_class_auc(shape: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Per shape feature, the ROC AUC with which it alone tells class 1 from class 0 (0.5 = no signal)."""
    if len(np.unique(y)) < 2:
        return {}
    return {name: float(roc_auc_score(y, shape[:, j])) for j, name in enumerate(FEATURES)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="mask GAN run folders (or checkpoints) trained on --data")
    p.add_argument("--data", default="adrenalmnist3d")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="append one JSON line per run (and one for real) here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    train_y, test_y = np.asarray(ds.labels["train"]).ravel(), np.asarray(ds.labels["test"]).ravel()
    real, test = cue_features(ds.channel_first("train")), cue_features(ds.channel_first("test"))
    emit({"run": "real train", "data": ds.info.name, "threads": args.threads,
          **{f"{cue}/test_balanced_accuracy": cue_accuracy(real[cue], train_y, test[cue], test_y) for cue in CUES},
          "feature_class_auc": feature_class_auc(real["shape"], train_y)},
         args.out)
    counts = np.bincount(train_y).tolist()
    for run in args.runs:
        t0 = time.time()
        gen = load_model(run, "cpu")
        gen.check_trained_on(ds.info, "--data", run)
        syn_x, syn_y = sample_like(gen, counts, 0)
        syn = cue_features(syn_x)
        emit({"run": str(run), "data": ds.info.name, "threads": args.threads,
              **{f"{cue}/test_balanced_accuracy": cue_accuracy(syn[cue], syn_y, test[cue], test_y) for cue in CUES},
              "feature_class_auc": feature_class_auc(syn["shape"], syn_y), "wall_s": round(time.time() - t0, 1)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
