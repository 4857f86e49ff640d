"""Is a noise floor, or sharper edges, what a 2D GAN's samples lack? A two-sample test per arm.

PneumoniaMNIST's synthetic radiographs are told from real ones by the C2ST's high-pass residual view (0.99+), and
their residual has less power at the finest scale than real images (gan_quality.md). This draws one class from a
GAN, then runs the classifier two-sample test (residual view alone, and all three views) of the real train images
of that class against the draws as they are, with white Gaussian noise added (standard deviations in grey levels),
and unsharp-masked (the draw plus its difference from a 3 x 3 box blur). If an arm's AUC falls well below the
as-drawn figure, what the generator misses is that noise or that sharpness, and a generator-side fix is in sight.

Usage:
    python benchmarks/noise_floor_check.py runs/q/pneumonia --data pneumoniamnist \
        --class-index 0 --out benchmarks/results/gan_quality/pneu_noise_floor.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from medgan.data.dataset import load_dataset
from medgan.metrics.c2st import C2ST_VIEWS, C2STConfig, c2st
from medgan.synth.sampling import load_generator, sample_classes


def arms(synthetic: np.ndarray, sds: list[float], seed: int = 0) -> dict[str, np.ndarray]:
    """uint8 ``(N, 1, H, W)`` draws: as drawn, plus white noise of each standard deviation, and unsharp-masked."""
    rng = np.random.default_rng(seed)
    x = synthetic.astype(np.float64)
    out = {"as drawn": x}
    for sd in sds:
        out[f"+ white noise sd {sd:g}"] = x + rng.normal(0.0, sd, x.shape)
    out["unsharp 1.0"] = 2.0 * x - ndimage.uniform_filter(x, size=(1, 1, 3, 3))
    return {k: np.clip(np.rint(v), 0, 255).astype(np.uint8) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a 2D GAN (file or run folder)")
    p.add_argument("--data", default="pneumoniamnist")
    p.add_argument("--class-index", type=int, default=0)
    p.add_argument("--n", type=int, default=500, help="images per side")
    p.add_argument("--sds", type=float, nargs="+", default=[2.0, 4.0, 6.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    labels = np.asarray(ds.labels["train"]).ravel()
    real = np.asarray(ds.channel_first("train"))[labels == args.class_index][: args.n]
    x, y, _ = sample_classes(load_generator(args.checkpoint, "cpu"), args.n, seed=0, device="cpu")  # n per class
    synthetic = np.asarray(x)[np.asarray(y).ravel() == args.class_index][: args.n]
    rows = []
    for name, draws in arms(synthetic, args.sds).items():
        for views in (("residual",), C2ST_VIEWS):
            start = time.time()
            r = c2st(real, draws, C2STConfig(views=views, seed=0))
            rows.append({"arm": name, "views": list(views), "auc": round(r["auc"], 3), "auc_std": round(r["auc_std"], 3),
                         "n_per_side": int(r["n_per_side"]), "seconds": round(time.time() - start, 1)})
            print(rows[-1], flush=True)
    record = {"checkpoint": str(args.checkpoint), "data": args.data, "class_index": args.class_index,
              "threads": args.threads, "c2st": "C2STConfig(folds=5, seed=0)", "rows": rows}
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
