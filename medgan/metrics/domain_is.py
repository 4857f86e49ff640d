"""An Inception-Score-like figure computed with the domain classifier ("domain IS").

The Inception Score (Salimans et al. 2016) is ``exp(E_x KL(p(y|x) || p(y)))``: high when each image
gets a confident class prediction (``p(y|x)`` peaked) and the predictions spread over the classes
(``p(y)`` flat). medgan computes it with the classifier behind the domain feature space
(:mod:`medgan.metrics.features`), trained on the real training split, instead of Inception-v3.

What it can and cannot say (docs/metrics.md has the longer version):

- It lies in ``[1, K]`` for ``K`` classes: with the two classes of BreastMNIST the best possible
  value is 2. It is not comparable across datasets with different class counts.
- It rewards images that the classifier is sure about, not realistic ones: a generator that draws
  caricatures of each class can beat the real images. Compare with ``domain_is/real_test``, the
  same figure on real held-out images.
- It ignores diversity within a class: one image per class, copied, scores the maximum for a
  balanced set. It never looks at the real images, so it cannot see a distribution mismatch.
- Its class balance enters through ``p(y)``: a synthetic set with the real data's class imbalance
  scores below ``K`` even if perfect.
"""

from __future__ import annotations

import numpy as np
import torch

from medgan.data.scaling import to_model_input
from medgan.metrics.features import FeatureExtractor

__all__ = ["class_probabilities", "domain_is_metrics", "inception_score"]


def inception_score(probs: np.ndarray) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` of class probabilities ``(N, K)``; ``p(y)`` is their mean.

    One figure over the whole set (no splits). 1 when every row is the same distribution; ``K`` at
    most, reached by one-hot rows spread evenly over the ``K`` classes.

    Example:
        >>> inception_score(np.eye(2)[[0, 1, 0, 1]])
        2.0
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probs must be a non-empty (N, K) array, got shape {p.shape}")
    p = np.clip(p, 1e-12, None)
    p = p / p.sum(axis=1, keepdims=True)
    marginal = p.mean(axis=0)
    kl = (p * (np.log(p) - np.log(marginal))).sum(axis=1)  # (N,)
    return float(np.exp(kl.mean()))


@torch.no_grad()
def class_probabilities(extractor: FeatureExtractor, images: np.ndarray) -> np.ndarray | None:
    """The domain classifier's softmax ``(N, K)`` for uint8 ``images`` ``(N, C, *spatial)``.

    ``None`` when the extractor has no classifier behind it (Inception features).
    """
    classifier = getattr(extractor.net, "classifier", None)
    if classifier is None:
        return None
    classifier.eval()
    out = [
        torch.softmax(
            classifier(to_model_input(images[i : i + extractor.batch_size]).to(extractor.device)).double(), 1
        )
        for i in range(0, len(images), extractor.batch_size)
    ]
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, 0))


def domain_is_metrics(
    extractor: FeatureExtractor, synthetic: np.ndarray, real_reference: np.ndarray | None = None
) -> dict[str, float]:
    """``domain_is`` of ``synthetic`` and ``domain_is/real_test`` of the held-out real images.

    Args:
        extractor: the domain feature extractor (its classifier gives ``p(y|x)``).
        synthetic: uint8 ``(M, C, *spatial)``.
        real_reference: uint8 real held-out images (the test split), or ``None``.

    Returns:
        ``{"domain_is", "domain_is/real_test", "domain_is/max"}`` (``max`` = the class count, the
        upper bound); empty when the extractor has no classifier or there are no synthetic images.
    """
    probs = class_probabilities(extractor, np.asarray(synthetic))
    if probs is None or len(probs) == 0:
        return {}
    out = {"domain_is": inception_score(probs), "domain_is/max": float(probs.shape[1])}
    if real_reference is not None and len(real_reference):
        ref = class_probabilities(extractor, np.asarray(real_reference))
        assert ref is not None
        out["domain_is/real_test"] = inception_score(ref)
    return out
