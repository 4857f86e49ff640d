"""Fidelity, diversity and memorisation metrics in a domain feature space (2D and 3D).

One file per family: :mod:`~medgan.metrics.features` (the domain feature net, cached),
:mod:`~medgan.metrics.fidelity` (FID / KID via torchmetrics), :mod:`~medgan.metrics.prdc`
(precision / recall / density / coverage), :mod:`~medgan.metrics.memorisation` (nearest-training
audit), :mod:`~medgan.metrics.evaluate` (one call for all of them) and
:mod:`~medgan.metrics.report` (Markdown, Rich and PNG output).

Importing this package is light (numpy only); torch, MONAI and torchmetrics load on first use.

Example:
    >>> from medgan.metrics import evaluate
    >>> evaluate(load_dataset("breastmnist"), (fake_u8, fake_labels))["fid"]
"""

from __future__ import annotations

from typing import Any

from medgan.metrics.evaluate import Evaluation, evaluate, evaluate_detailed, load_synthetic

__all__ = ["Evaluation", "FeatureExtractor", "evaluate", "evaluate_detailed", "get_feature_extractor", "load_synthetic"]


def __getattr__(name: str) -> Any:
    # The feature net needs torch and MONAI: import them only when asked for.
    if name in ("FeatureExtractor", "get_feature_extractor"):
        from medgan.metrics import features

        return getattr(features, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
