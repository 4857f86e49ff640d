"""Does the classifier two-sample test see how an image was resized? Real 28² against the same images resized from 64².

MedMNIST's 28² and 64² files were both made from the larger source images. This resizes each 64² train image to 28²
with several filters and runs the C2ST (residual view, image view) of the real 28² train images against each arm.
Both sides show the same anatomy, so the AUC measures the resize filter's own signature: a filter that scores near 0.5
is the data's own (or indistinguishable from it); one well above it leaves a texture the C2ST reads as synthetic, which
is what a generator that area-averages (``model.g_supersample``) or upsamples its way to 28² must also avoid.

Usage:
    python benchmarks/resize_filter_check.py --data breastmnist \
        --out benchmarks/results/gan_quality/resize_filter_check.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from medgan.data.dataset import load_dataset
from medgan.metrics.c2st import C2STConfig, c2st

PIL_FILTERS = {"PIL bilinear (antialiased)": Image.BILINEAR, "PIL bicubic (antialiased)": Image.BICUBIC,
               "PIL box (area)": Image.BOX, "PIL nearest": Image.NEAREST}


def resize_arms(large: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """uint8 ``(N, H, W)`` grey images -> uint8 ``(N, 1, size, size)`` per filter: PIL's, and torch's antialiased
    bilinear and area resizes (what a generator could apply in its forward pass)."""
    out = {name: np.stack([np.asarray(Image.fromarray(i).resize((size, size), f)) for i in large])
           for name, f in PIL_FILTERS.items()}
    t = torch.from_numpy(large).float()[:, None]
    bilinear = {"mode": "bilinear", "antialias": True, "align_corners": False}
    for name, kw in (("torch bilinear (antialiased)", bilinear), ("torch area (windows of whole pixels)", {"mode": "area"})):
        out[name] = F.interpolate(t, size=(size, size), **kw)[:, 0].round().clamp(0, 255).numpy()
    # What model.g_supersample does at factor 2: an image at twice the size (here the 64² image resized to 2 x size
    # as the data was), then the mean of each 2 x 2 cell (area) or the antialiased bilinear filter.
    double = F.interpolate(t, size=(2 * size, 2 * size), **bilinear)
    out["2x size, then 2 x 2 mean (g_supersample area)"] = F.avg_pool2d(double, 2)[:, 0].round().clamp(0, 255).numpy()
    out["2x size, then antialiased bilinear (g_supersample bilinear)"] = (
        F.interpolate(double, size=(size, size), **bilinear)[:, 0].round().clamp(0, 255).numpy())
    return {k: v.astype(np.uint8)[:, None] for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="breastmnist", help="a 2D grey MedMNIST set whose 64² file is present")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    small = np.asarray(load_dataset(args.data).channel_first("train"))
    large = np.asarray(load_dataset(args.data, size=64).channel_first("train"))[:, 0]
    rows = []
    for name, arm in resize_arms(large, small.shape[-1]).items():
        row = {"filter": name, "mae_grey_levels": round(float(np.abs(arm.astype(float) - small).mean()), 2)}
        for view in ("residual", "image"):
            start = time.time()
            r = c2st(small, arm, C2STConfig(views=(view,), seed=0))
            row[f"auc_{view}"], row[f"auc_std_{view}"] = round(r["auc"], 3), round(r["auc_std"], 3)
            row[f"seconds_{view}"] = round(time.time() - start, 1)
        row["n_per_side"] = int(r["n_per_side"])
        rows.append(row)
        print(row, flush=True)
    record = {"data": args.data, "threads": args.threads, "c2st": "C2STConfig(folds=5, seed=0), one view at a time",
              "command": f"python benchmarks/resize_filter_check.py --data {args.data} --out {args.out}", "rows": rows}
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
