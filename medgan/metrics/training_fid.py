"""FID and the mode-collapse alarm while a GAN trains: the evaluator that ``medgan train`` injects into the loop.

The loop (:mod:`medgan.training.loop`) sits below the metrics layer and never imports it; it calls
whatever :data:`~medgan.training.loop.Evaluator` its caller hands it every ``fid_every`` steps.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.data.dataset import PreparedDataset, class_slugs, load_dataset
from medgan.data.scaling import to_uint8_array
from medgan.errors import MedganWarning
from medgan.metrics.c2st import C2STConfig, c2st_metrics
from medgan.metrics.collapse import collapse_check
from medgan.metrics.evaluate import evaluate, size_cautions
from medgan.metrics.swd import SWDConfig
from medgan.training.config import TrainConfig
from medgan.training.loop import Evaluator

__all__ = ["TRAINING_C2ST", "fid_evaluator", "training_c2st"]


def _warn(message: str) -> None:
    warnings.warn(message, MedganWarning, stacklevel=2)


TRAINING_C2ST = C2STConfig(folds=3, max_per_side=500)
"""The two-sample test run during training (``eval_c2st``): lighter than ``medgan evaluate``'s (5 folds,
1000 per side), so that four evaluations add minutes, not tens of minutes, to a CPU run."""


def training_c2st(ds: PreparedDataset, synth: np.ndarray, labels: np.ndarray | None, seed: int,
                  device: str = "cpu") -> dict[str, float]:
    """The C2ST AUC of ``synth`` against ``ds``'s train split, overall and per class, rounded for the log.

    Args:
        ds: the real data (its train split is the reference).
        synth: synthetic uint8 images ``(N, C, *spatial)``.
        labels: their labels, or None (unconditional: overall only).
        seed: seeds the subsample, the folds and the CNN.
        device: where the CNN trains.

    Returns:
        ``c2st/auc`` and ``c2st/auc/class_<slug>`` (0.5 = indistinguishable, 1 = told apart every time).
    """
    cfg = dataclasses.replace(TRAINING_C2ST, seed=seed, device=device)
    found = c2st_metrics(ds.channel_first("train"), ds.labels["train"], synth, labels,
                         class_slugs(list(ds.info.class_names)), None, cfg)
    return {k: round(v, 4) for k, v in found.items()
            if k == "c2st/auc" or k.startswith("c2st/auc/class_")}


def fid_evaluator(cfg: TrainConfig, dataset: PreparedDataset | None = None,
                  warn: Callable[[str], None] | None = None) -> Evaluator:
    """An evaluator of G_ema's samples against the real training split: what ``cfg.eval_metrics`` names.

    ``fid`` logs the FID in the domain feature space, ``swd`` the pixel-level ``swd/mean``, ``values``
    (mask-like data only) the ``values/*`` figures of :func:`medgan.metrics.evaluate.value_metrics`:
    the share of voxels near the two mask values, the connected pieces per mask and, for a conditional
    GAN, each class's mask size and how well size alone tells the class. A class drawn at the wrong
    size (:func:`medgan.metrics.evaluate.size_cautions`) is also reported through ``warn``.

    With ``cfg.eval_c2st`` it also logs the two-sample CNN's AUC (:func:`training_c2st`), overall and per class.

    With ``cfg.collapse_share > 0`` and ``fid`` in ``cfg.eval_metrics`` it also runs the mode-collapse alarm on the same samples
    (:func:`medgan.metrics.collapse.collapse_check`: per-class pixel diversity and domain-feature
    coverage relative to real images) and logs its ``collapse/*`` keys; an alarmed class is also
    reported through ``warn``.

    Args:
        cfg: the run's config (data, seed, latent size, ``fid_samples``, ``eval_metrics``, conditional or
            not, ``collapse_share``).
        dataset: the training data, if already loaded (default: loaded on first use from ``cfg.data``).
        warn: receives each alarm message (default: a :class:`~medgan.errors.MedganWarning`, which the
            CLI prints as ``warning: ...`` on the console).

    Example:
        >>> train(cfg, evaluator=fid_evaluator(cfg))
    """
    loaded: list[PreparedDataset] = [dataset] if dataset is not None else []

    def fid_now(G_ema: nn.Module, g_kw: dict[str, Any]) -> dict[str, float]:
        if not loaded:
            loaded.append(load_dataset(cfg.data, size=cfg.data_size))
        ds = loaded[0]
        num_classes = ds.info.num_classes if cfg.model.conditional else 0
        device = next(G_ema.parameters()).device
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 777)
        n_cls = max(num_classes, 1)
        per = math.ceil(cfg.fid_samples / n_cls)
        imgs, labs = [], []
        with torch.no_grad():
            for c in range(n_cls):
                z = torch.randn(per, cfg.model.z_dim, generator=gen).to(device)
                y = torch.full((per,), c, device=device, dtype=torch.long) if num_classes else None
                imgs.append(to_uint8_array(G_ema(z, y, **g_kw)))
                labs.append(np.full(per, c))
        synth, synth_labels = np.concatenate(imgs), np.concatenate(labs)
        wanted = [m for m in ("fid", "swd", "values") if m in cfg.eval_metrics]
        if synth.shape[-1] != int(ds.info.size[-1]):  # a progressive stage below the target: nothing is defined yet
            return {m: float("nan") for m in ("fid", "swd/mean") if m.split("/")[0] in wanted}
        # FID, the pixel-level SWD and the mask figures (cheap); the C2ST trains a CNN per call, so it
        # runs only when asked (eval_c2st), in a lighter form than `medgan evaluate`'s.
        metrics = evaluate(ds, (synth, synth_labels), metrics=tuple(wanted), per_class=num_classes > 0,
                           swd=SWDConfig(seed=cfg.seed)) if wanted else {}
        out = {k: float(metrics[k]) for k in ("fid", "swd/mean") if k in metrics}
        out.update({k: round(float(v), 4) for k, v in metrics.items() if k.startswith("values/")})
        for message in size_cautions(out, list(ds.info.class_names)) if num_classes else []:
            (warn or _warn)(message)
        if cfg.eval_c2st:
            out.update(training_c2st(ds, synth, synth_labels if num_classes else None, cfg.seed, str(device)))
        if cfg.collapse_share > 0 and "fid" in wanted:
            from medgan.metrics.features import get_feature_extractor

            extractor = get_feature_extractor(ds)  # the one evaluate() just used (cached per process)
            report = collapse_check(ds.channel_first("train"), ds.labels["train"], synth,
                                    synth_labels if num_classes else None, list(ds.info.class_names),
                                    share=cfg.collapse_share, features=extractor.extract, seed=cfg.seed)
            out.update(report.metrics)
            for message in report.messages:
                (warn or _warn)(message)
        return out

    return fid_now
