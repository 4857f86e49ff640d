"""Does a trained discriminator know the class? Its class margin on real images, per checkpoint.

For a two-class conditional GAN, the margin ``D(x, 1) - D(x, 0)`` of each real image of a split is read as
a score for class 1, and its ROC AUC against the true labels says how well D's projection term separates
the classes (0.5: D ignores the class). Where this is high and the generator's draws still carry no class
(TSTR at chance), G fails to follow a D that knows the class, rather than D failing to know it.

Usage:
    python benchmarks/d_class_margin.py --data adrenalmnist3d runs/q/adrenal_def_s0 runs/q/adrenal_def_s2 \
        --out benchmarks/results/d_class_margin_3d.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from medgan.data.dataset import load_dataset
from medgan.data.scaling import to_model_input
from medgan.training.checkpoint import load_checkpoint

try:  # run as a script from the repository root
    from gan_quality import load_discriminator
except ImportError:  # imported as benchmarks.d_class_margin
    from benchmarks.gan_quality import load_discriminator


def class_margin(D: torch.nn.Module, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """``D(x, 1) - D(x, 0)`` for each uint8 image ``x``."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = to_model_input(torch.from_numpy(images[i:i + batch]))
            ones = torch.ones(len(x), dtype=torch.long)
            out.append((D(x, ones) - D(x, torch.zeros_like(ones))).reshape(-1).numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="GAN run folders or checkpoints trained on --data")
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the rows here as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    if ds.info.num_classes != 2:
        raise SystemExit(f"d_class_margin.py reads a two-class margin; {ds.info.name} has {ds.info.num_classes} classes")
    rows = []
    for run in args.runs:
        D = load_discriminator(run)
        row: dict = {"run": str(run), "step": load_checkpoint(run).get("step")}
        for split in ("train", "test"):
            margin, y = class_margin(D, ds.channel_first(split)), ds.labels[split]
            row[f"auc_{split}"] = float(roc_auc_score(y, margin))
            row[f"mean_margin_{split}"] = [float(margin[y == c].mean()) for c in (0, 1)]
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out is not None:
        args.out.write_text(json.dumps({"data": ds.info.name, "command": "python benchmarks/d_class_margin.py "
                                        + " ".join(argv if argv is not None else sys.argv[1:]),
                                        "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
