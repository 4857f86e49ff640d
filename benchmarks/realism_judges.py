"""Does a set picked by a realism critic look more real to judges other than the critic's own kind?

``gan_quality.py --realism K`` keeps, per class, the draws that a critic (the C2ST's CNN, trained on the
real train images against other draws) scores most real. The C2ST then trains the same kind of CNN, so
a lower C2ST may say only that the set was chosen against that network. This script draws the plain set
and the critic's set from one checkpoint and scores both per class with three other judges:

- ``heldout``: the C2ST against the held-out real images (val + test), which the critic never saw;
- ``wide_seed7``: the C2ST's CNN twice as wide with another seed (the same kind, other weights);
- ``cnn_judge``: the benchmark's ``cnn`` classifier (another architecture) as a two-sample test
  (5 folds, near-duplicate real images kept in one fold, out-of-fold ROC AUC);

and the diversity of the whole set in the domain feature space (FID, precision, recall, density, coverage).

Usage:
    python benchmarks/realism_judges.py runs/cgan_breastmnist --data breastmnist --out runs/judges.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from medgan.data.dataset import class_slugs, load_dataset
from medgan.data.scaling import to_model_input
from medgan.metrics.c2st import C2STConfig, _folds, c2st
from medgan.metrics.evaluate import evaluate
from medgan.networks.classifier import build_classifier
from medgan.synth.translate import load_model

try:  # run as a script from the repository root
    from gan_quality import realism_rejected_like, sample_like
except ImportError:  # imported as benchmarks.realism_judges
    from benchmarks.gan_quality import realism_rejected_like, sample_like


def cnn_judge_auc(real: np.ndarray, synthetic: np.ndarray, seed: int = 0, folds: int = 5, epochs: int = 30) -> float:
    """Out-of-fold ROC AUC of the benchmark's ``cnn`` classifier telling ``real`` from ``synthetic`` (balanced sides)."""
    n = min(len(real), len(synthetic))
    rng = np.random.default_rng(seed)
    a, b = real[rng.choice(len(real), n, replace=False)], synthetic[rng.choice(len(synthetic), n, replace=False)]
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.int64)
    split, _ = _folds(x, y.astype(np.float32), C2STConfig(folds=folds, seed=seed), False)
    scores = np.zeros(len(x))
    for k, (tr, te) in enumerate(split):
        torch.manual_seed(100 + k)
        shuffle = torch.Generator().manual_seed(100 + k)
        net = build_classifier("cnn", x.ndim - 2, x.shape[1], 2)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x_tr, y_tr = torch.from_numpy(x[tr]), torch.from_numpy(y[tr])
        for _ in range(max(epochs, math.ceil(300 / math.ceil(len(tr) / 64)))):
            net.train()
            for idx in torch.randperm(len(tr), generator=shuffle).split(64):
                loss = F.cross_entropy(net(to_model_input(x_tr[idx])), y_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            out = net(to_model_input(torch.from_numpy(x[te])))
        scores[te] = (out[:, 1] - out[:, 0]).numpy()
    return float(roc_auc_score(y, scores))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--realism", type=float, default=8.0, metavar="K", help="as gan_quality.py --realism")
    p.add_argument("--realism-fit", type=float, default=4.0, metavar="F", help="as gan_quality.py --realism-fit")
    p.add_argument("--out", type=Path, default=None, help="append the record here (JSON lines)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    ds = load_dataset(args.data)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    held_x = np.concatenate([ds.channel_first("val"), ds.channel_first("test")])
    held_y = np.concatenate([ds.labels["val"], ds.labels["test"]])
    counts = np.bincount(real_y, minlength=ds.info.num_classes).tolist()
    gen = load_model(args.checkpoint, "cpu")
    gen.check_trained_on(ds.info, "--data", args.checkpoint)
    sets = {"plain": sample_like(gen, counts, seed=0),
            "critic": realism_rejected_like(gen, real_x, real_y, counts, 0, args.realism, args.realism_fit)}
    record: dict = {"checkpoint": str(args.checkpoint), "data": ds.info.name, "realism": args.realism,
                    "realism_fit": args.realism_fit, "threads": args.threads}
    for name, (syn_x, syn_y) in sets.items():
        t0, row = time.time(), {}
        for c, slug in enumerate(class_slugs(list(ds.info.class_names))):
            s = syn_x[syn_y == c]
            row[f"heldout/{slug}"] = c2st(held_x[held_y == c], s)["auc"]
            row[f"wide_seed7/{slug}"] = c2st(real_x[real_y == c], s, C2STConfig(width=32, seed=7))["auc"]
            row[f"cnn_judge/{slug}"] = cnn_judge_auc(real_x[real_y == c], s)
        domain = evaluate(ds, (syn_x, syn_y), metrics=["prdc", "fid"], per_class=False)
        row.update({k: v for k, v in domain.items() if k in ("fid", "precision", "recall", "density", "coverage")})
        row["wall_s"] = round(time.time() - t0, 1)
        record[name] = row
        print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    if args.out is not None:
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
