"""How a 3D binary-mask GAN draws its masks: the margin of the field it thresholds, and which shape features differ.

A binary generator (``model.g_binary``) emits the sign of its tanh output ``t``. This draws masks from one
checkpoint's G_ema and reports

- the **field's margin**: the median ``t`` over the voxels of each mask's largest connected piece, over its other
  pieces (fragments and stray voxels), and over the background more than three voxels from the largest piece. A
  median near 0 inside the mask means G draws it as a ridge that just pokes through the threshold;
  the draws follow the real train split's class mix, ``--n-per-class`` per class on average;
- **shape features**, real train masks against the draws: per-feature ROC AUC (0.5: the feature does not tell them
  apart) and medians of the volume, the number of pieces (full connectivity), the surface share, the spread along
  the three principal axes (the square roots of the coordinate covariance's eigenvalues), the flatness (the
  smallest eigenvalue over the largest) and the depth of the mask's voxels from the background (Euclidean).

Usage:
    python benchmarks/mask_margin_check.py runs/q/adrenal_def_s9 --n-per-class 200 --threads 1 \
        --out benchmarks/results/gan_quality/mask_margin_s9.json
"""

from __future__ import annotations

import json

import numpy as np
import torch
from keep_largest_check import parse_mask_gan_args  # sibling script
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from medgan.data.dataset import load_dataset
from medgan.networks.layers import center_crop
from medgan.synth.sampling import load_generator

FEATURES = ("volume", "pieces", "surface_share", "axis_1", "axis_2", "axis_3", "flatness", "max_depth", "mean_depth")
_FULL = np.ones((3, 3, 3), dtype=bool)


def shape_features(mask: np.ndarray) -> list[float]:
    """:data:`FEATURES` of one boolean 3D mask (zeros for an empty one)."""
    n = int(mask.sum())
    if n == 0:
        return [0.0] * len(FEATURES)
    _, pieces = ndimage.label(mask, _FULL)
    surface = n - int(ndimage.binary_erosion(mask).sum())
    coords = np.argwhere(mask).astype(np.float64)
    coords -= coords.mean(0)
    ev = np.sort(np.linalg.eigvalsh(coords.T @ coords / n))[::-1].clip(min=0)
    depth = ndimage.distance_transform_edt(mask)[mask]
    return [n, pieces, surface / n, *np.sqrt(ev).tolist(), ev[2] / (ev[0] + 1e-9), float(depth.max()), float(depth.mean())]


def field_margin(field: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Median field over the largest piece, the other pieces and the far background (> 3 voxels from the piece)."""
    largest, others, far = [], [], []
    for f, m in zip(field, mask, strict=True):
        lab, k = ndimage.label(m, _FULL)
        if k == 0:
            continue
        big = 1 + int(np.bincount(lab.ravel())[1:].argmax())
        largest.append(f[lab == big])
        others.append(f[(lab > 0) & (lab != big)])
        far.append(f[ndimage.distance_transform_edt(lab != big) > 3])
    med = {name: float(np.median(np.concatenate(v))) if v and sum(map(len, v)) else float("nan")
           for name, v in (("largest_piece", largest), ("other_pieces", others), ("far_background", far))}
    med["other_piece_share"] = sum(map(len, others)) / max(1, sum(map(len, largest)))
    return med


def main() -> None:
    args = parse_mask_gan_args(__doc__)
    ds = load_dataset(args.data)
    real = np.asarray(ds.channel_first("train"))[:, 0] > 127
    gen = load_generator(args.checkpoint, "cpu")
    G = gen.G.eval()
    captured: dict[str, torch.Tensor] = {}
    G.out_conv.register_forward_hook(lambda module, inputs, out: captured.__setitem__("h", out))
    torch.manual_seed(0)
    n = args.n_per_class
    # The draws follow the real train split's class mix (n per class on average), so a class's size is no tell.
    counts = np.bincount(np.asarray(ds.labels["train"]).ravel(), minlength=max(1, G.num_classes))
    y = torch.arange(len(counts)).repeat_interleave(torch.from_numpy(np.round(counts / counts.sum() * n * len(counts))
                                                                      .astype(np.int64)))
    with torch.no_grad():
        x = G(torch.randn(len(y), G.z_dim), y)
    field = center_crop(captured["h"].tanh(), G.size, G.spatial_dims)[:, 0].numpy()
    masks = x[:, 0].numpy() > 0
    real_f = np.array([shape_features(m) for m in real])
    syn_f = np.array([shape_features(m) for m in masks])
    truth = np.r_[np.zeros(len(real_f)), np.ones(len(syn_f))]
    record: dict[str, object] = {
        "checkpoint": str(args.checkpoint), "draws_per_class": np.bincount(y.numpy()).tolist(), "threads": args.threads,
        "field_margin": field_margin(field, masks) if getattr(G, "binary", False) else None,
        "features": {name: {"auc_synthetic_vs_real": float(roc_auc_score(truth, np.r_[real_f[:, j], syn_f[:, j]])),
                            "median_real": float(np.median(real_f[:, j])), "median_synthetic": float(np.median(syn_f[:, j]))}
                     for j, name in enumerate(FEATURES)},
    }
    print(json.dumps(record, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
