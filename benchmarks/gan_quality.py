"""Class consistency and diversity of a trained generator, recomputed from any checkpoint.

The two figures the GAN issues set as bars for a run on real data:

- class consistency: a logistic regression fitted on the real training pixels labels 1000 G_ema
  samples (drawn in the training split's class proportions); the share it assigns to their
  conditioning class should be within 15 points of its accuracy on the real test split;
- diversity: per class, the mean pairwise L2 distance between 500 G_ema samples (pixels in
  [0, 1]) over the same figure for the real training images of that class; it should be >= 0.6.
  A collapsed generator fails this even when its class consistency looks good.

Usage:
    python benchmarks/gan_quality.py --checkpoint runs/cgan_breastmnist --data breastmnist \
        --out benchmarks/results/cgan_breastmnist_quality.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch


def mean_pairwise_l2(x: np.ndarray, max_n: int = 500, seed: int = 0) -> float:
    """Mean L2 distance over all pairs of (at most ``max_n``) flattened images in [0, 1]."""
    rng = np.random.default_rng(seed)
    if len(x) > max_n:
        x = x[rng.choice(len(x), max_n, replace=False)]
    t = torch.from_numpy(x.reshape(len(x), -1).astype(np.float64))
    d = torch.cdist(t, t)
    n = len(t)
    return float(d.sum() / (n * (n - 1)))


def class_consistency(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      synth_x: np.ndarray, synth_y: np.ndarray) -> dict[str, float]:
    """Fit pixel logistic regression on real train; score real test and the synthetic samples."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    clf = LogisticRegression(max_iter=3000, C=0.1)
    clf.fit(train_x.reshape(len(train_x), -1), train_y)
    pred_test = clf.predict(test_x.reshape(len(test_x), -1))
    pred_syn = clf.predict(synth_x.reshape(len(synth_x), -1))
    return {
        "real_test_accuracy": float((pred_test == test_y).mean()),
        "real_test_balanced_accuracy": float(balanced_accuracy_score(test_y, pred_test)),
        "synthetic_consistency": float((pred_syn == synth_y).mean()),
        "synthetic_balanced_consistency": float(balanced_accuracy_score(synth_y, pred_syn)),
    }


def evaluate_checkpoint(checkpoint: str, data: str, n_consistency: int = 1000, n_diversity: int = 500,
                        seed: int = 0) -> dict:
    """All figures for one checkpoint, as a JSON-ready dict."""
    from medgan.data.dataset import load_dataset
    from medgan.synth.sampling import iter_samples, load_generator

    ds = load_dataset(data)
    gen = load_generator(checkpoint, "cpu")
    if gen.dataset.get("sha256") != ds.info.sha256:
        raise SystemExit(f"checkpoint was trained on {gen.dataset.get('name')}, not on {data}")
    to01 = lambda a: a.astype(np.float32) / 255.0  # noqa: E731
    train_x, train_y = to01(ds.channel_first("train")), ds.labels["train"]
    test_x, test_y = to01(ds.channel_first("test")), ds.labels["test"]
    k = ds.info.num_classes
    freq = np.bincount(train_y, minlength=k) / len(train_y)
    per_class_n = np.maximum(np.round(freq * n_consistency).astype(int), 1)

    def draw(c: int, n: int, s: int) -> np.ndarray:
        return to01(np.concatenate(list(iter_samples(gen, c, n, seed=s, batch_size=250))))

    t0 = time.perf_counter()
    synth = [draw(c, int(per_class_n[c]), seed) for c in range(k)]
    cons = class_consistency(train_x, train_y, test_x, test_y, np.concatenate(synth),
                             np.concatenate([np.full(len(s), c) for c, s in enumerate(synth)]))
    diversity = {}
    for c, name in enumerate(ds.info.class_names):
        fake = draw(c, n_diversity, seed + 1)
        real = train_x[train_y == c]
        d_fake, d_real = mean_pairwise_l2(fake), mean_pairwise_l2(real)
        diversity[name] = {"synthetic": d_fake, "real": d_real, "ratio": d_fake / d_real}
    return {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": gen.checkpoint_sha256,
        "dataset": ds.info.name,
        "dataset_sha256": ds.info.sha256,
        "class_consistency": cons,
        "consistency_gap_points": 100 * (cons["real_test_accuracy"] - cons["synthetic_consistency"]),
        "consistency_pass": abs(cons["real_test_accuracy"] - cons["synthetic_consistency"]) <= 0.15,
        "diversity": diversity,
        "diversity_pass": all(v["ratio"] >= 0.6 for v in diversity.values()),
        "eval_seconds": time.perf_counter() - t0,
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    result = evaluate_checkpoint(args.checkpoint, args.data, seed=args.seed)
    result["command"] = " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
