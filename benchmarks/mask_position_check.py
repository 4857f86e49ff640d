"""Does the 3D two-sample CNN read where a synthetic mask sits, or its shape?

AdrenalMNIST3D's masks are crops centred on the gland: their centres of mass lie within about 0.2 voxels of the
volume's centre on every axis. This draws from one 3D mask GAN (each mask's largest connected component kept, as
``model.g_keep_largest`` does), prints shape statistics of real and synthetic masks per class (volume, surface
share, extents, centre of mass), and runs the classifier two-sample test as the benchmark report does (both sides
at the real class mix, 2 folds, the first layer strided) on the draws as they are and shifted by whole voxels so
each centre of mass sits at the real masks' mean centre. The AUC that remains after the shift is what the shape,
not the position, gives away.

Usage:
    python benchmarks/mask_position_check.py runs/q/adrenal/checkpoints/step_000500.pt \
        --out benchmarks/results/gan_quality/mask_position.json
"""

from __future__ import annotations

import json
import time

import numpy as np
from keep_largest_check import parse_mask_gan_args  # sibling script
from scipy import ndimage

from medgan.data.dataset import load_dataset
from medgan.data.scaling import to_model_input, to_uint8_array
from medgan.metrics.c2st import C2STConfig, c2st, matched_proportions
from medgan.networks.layers import recentre as recentre_masks
from medgan.synth.sampling import load_generator, sample_classes


def centre_of_mass(mask: np.ndarray) -> np.ndarray:
    """Voxel coordinates of a boolean mask's centre of mass (NaN for an empty mask)."""
    idx = np.nonzero(mask)
    return np.array([a.mean() for a in idx]) if len(idx[0]) else np.full(mask.ndim, np.nan)


def shape_stats(mask: np.ndarray) -> dict[str, float]:
    """Volume, surface share (voxels removed by one erosion, over the volume), extents and centre of mass."""
    vol = float(mask.sum())
    surface = vol - float(ndimage.binary_erosion(mask).sum())
    idx = np.nonzero(mask)
    ext = [float(a.max() - a.min() + 1) if len(a) else 0.0 for a in idx]
    com = centre_of_mass(mask)
    out = {"volume": vol, "surface_share": surface / max(vol, 1.0)}
    out.update({f"extent_{ax}": e for ax, e in zip("zyx", ext, strict=True)})
    out.update({f"centre_{ax}": float(c) for ax, c in zip("zyx", com, strict=True)})
    return out


def recentre(u8: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Shift each uint8 mask ``(N, 1, D, H, W)`` by whole voxels (zero fill) so its centre of mass is nearest
    ``target``: the rule of ``model.g_recentre`` (:func:`medgan.networks.layers.recentre`), applied after sampling."""
    return to_uint8_array(recentre_masks(to_model_input(u8), [float(c) for c in target]))


def summarise(masks: np.ndarray) -> dict[str, list[float]]:
    """Mean and standard deviation of :func:`shape_stats` over boolean masks ``(N, D, H, W)``."""
    rows = [shape_stats(m) for m in masks]
    return {k: [round(float(np.nanmean([r[k] for r in rows])), 3), round(float(np.nanstd([r[k] for r in rows])), 3)]
            for k in rows[0]}


def main() -> None:
    args = parse_mask_gan_args(__doc__)
    ds = load_dataset(args.data)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    real = np.asarray(real_x)[:, 0] > 127
    labels = np.asarray(real_y).ravel()
    target = np.nanmean([centre_of_mass(m) for m in real if m.any()], axis=0)
    gen = load_generator(args.checkpoint, "cpu")
    gen.keep_largest_component = True
    x, y, _ = sample_classes(gen, args.n_per_class, seed=0, device="cpu")
    syn_labels = np.asarray(y).ravel()
    record: dict[str, object] = {"checkpoint": str(args.checkpoint), "n_per_class": args.n_per_class,
                                 "threads": args.threads, "keep_largest": True, "real_mean_centre": target.round(3).tolist(),
                                 "c2st": "C2STConfig(folds=2, seed=0), real class mix"}
    for cls in np.unique(labels):
        record[f"shape_class_{int(cls)}"] = {"real": summarise(real[labels == cls]),
                                            "synthetic": summarise(np.asarray(x)[syn_labels == cls, 0] > 127)}
    for name, arr in (("as_drawn", np.asarray(x)), ("recentred", recentre(np.asarray(x), target))):
        t0 = time.perf_counter()
        keep_real, keep_syn = matched_proportions(real_y, y, 1000, 0)
        res = c2st(real_x[keep_real], arr[keep_syn], C2STConfig(folds=2, seed=0, device="cpu"))
        centres = np.array([centre_of_mass(m[0] > 127) for m in arr])
        record[name] = {"c2st_auc": res["auc"], "auc_std": res["auc_std"], "n_per_side": res["n_per_side"],
                        "centre_sd": np.nanstd(centres, axis=0).round(3).tolist(),
                        "seconds": round(time.perf_counter() - t0, 1)}
        print(name, record[name], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
