"""The classifier training loop shared by the metrics' feature space and the benchmark harness.

Images come in as uint8 arrays ``(N, C, *spatial)`` (the channel-first layout of
:meth:`medgan.data.dataset.PreparedDataset.channel_first`) and are scaled batch by batch to the
network convention of the whole project by :func:`medgan.data.scaling.to_model_input`
(re-exported here for the metrics that train classifiers).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from torch import nn

from medgan.data.scaling import to_model_input

__all__ = [
    "ArrayPair",
    "classifier_scores",
    "predict_proba",
    "steps_per_epoch",
    "to_model_input",
    "train_classifier",
]

ArrayPair = tuple[np.ndarray, np.ndarray]
"""``(uint8 images (N, C, *spatial), integer labels (N,))``."""

ClassWeighting = Literal["balanced"] | None


def _check_pair(name: str, pair: ArrayPair) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(pair[0]), np.asarray(pair[1]).reshape(-1).astype(np.int64)
    if images.dtype != np.uint8:
        raise ValueError(f"{name} images must be uint8 (N, C, *spatial), got {images.dtype}")
    if images.ndim not in (4, 5):
        raise ValueError(f"{name} images must be (N, C, H, W) or (N, C, D, H, W), got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split a permutation into batches; a trailing batch of one joins the previous one, because
    batch norm cannot normalise a single sample whose spatial size has been pooled to 1."""
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        # Pop first, then join: ``chunks[-2] = cat([chunks[-2], chunks.pop()])`` assigns after the pop,
        # so it overwrote the first batch (or failed with two batches, e.g. 65 images in batches of 64).
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimisation steps in one pass over ``n`` training images (a trailing batch of one joins the last).

    Example:
        >>> steps_per_epoch(546, 64), steps_per_epoch(65, 64), steps_per_epoch(10, 64)
        (9, 1, 1)
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be >= 1, got {n} and {batch_size}")
    full, rest = divmod(n, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def _batch_stream(n: int, batch_size: int, shuffle: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of consecutive passes, each a fresh seeded permutation (drawn when it starts)."""
    while True:
        yield from _batches(torch.randperm(n, generator=shuffle), batch_size)


@torch.no_grad()
def _logits(model: nn.Module, images: np.ndarray, batch_size: int, device: str | torch.device) -> torch.Tensor:
    """Logits ``(N, K)`` on the CPU, in eval mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        out = [
            model(to_model_input(images[i : i + batch_size]).to(device)).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


def predict_proba(
    model: nn.Module, images: np.ndarray, batch_size: int = 256, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Class probabilities ``(N, K)`` (softmax of the logits) for uint8 images ``(N, C, *spatial)``.

    Args:
        model: a classifier returning logits ``(B, K)``; it is run in eval mode.
        images: uint8 ``(N, C, *spatial)``.
        batch_size: images per forward pass.
        device: where the model lives.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    return torch.softmax(_logits(model, images, batch_size, device), dim=1).double().numpy()


def classifier_scores(proba: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy of predicted probabilities ``(N, K)`` against ``labels``."""
    labels = np.asarray(labels).reshape(-1)
    pred = np.asarray(proba).argmax(axis=1)
    with warnings.catch_warnings():
        # A split that lacks a predicted class makes sklearn warn; the score is still defined.
        warnings.simplefilter("ignore")
        return {
            "accuracy": float(accuracy_score(labels, pred)),
            "balanced_accuracy": float(balanced_accuracy_score(labels, pred)),
        }


def _class_weights(labels: np.ndarray, num_classes: int, mode: ClassWeighting) -> torch.Tensor | None:
    if mode is None:
        return None
    if mode != "balanced":
        raise ValueError(f"class_weighting must be 'balanced' or None, got {mode!r}")
    counts = np.bincount(labels, minlength=num_classes)[:num_classes].astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    # sklearn's "balanced" rule, n / (n_classes * count), over the classes present.
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)


def train_classifier(
    model: nn.Module,
    train: ArrayPair,
    val: ArrayPair,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    extra_train: ArrayPair | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
    class_weighting: ClassWeighting = "balanced",
    weight_decay: float = 1e-4,
    steps: int | None = None,
    eval_every: int | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``model`` with cross-entropy and keep the epoch with the best validation balanced accuracy.

    The budget is ``epochs`` passes over the training data, or, with ``steps``, exactly that many
    optimisation steps whatever the size of the training set (the benchmark's fair budget). Batches
    come from consecutive seeded permutations either way, so ``steps = epochs × steps_per_epoch(n)``
    with ``eval_every = steps_per_epoch(n)`` trains exactly as ``epochs`` does. Validation runs every
    ``eval_every`` steps and after the last one; each validation is one history row (an "epoch").

    Args:
        model: a classifier returning logits ``(B, K)`` (e.g. from
            :func:`medgan.networks.classifier.build_classifier`); trained in place.
        train: ``(uint8 images (N, C, *spatial), labels (N,))``.
        val: the same for the validation split that selects the epoch.
        epochs: passes over the training data.
        batch_size: images per step.
        lr: AdamW learning rate.
        seed: seeds the shuffling generator and torch's global RNG (weights of dropout, random
            transforms) inside a forked RNG, so the caller's RNG state is left untouched.
        device: where to train.
        transform: applied to each float batch ``(B, C, *spatial)`` in ``[-1, 1]`` on ``device``
            before the forward pass (e.g. MONAI random flips / rotations); training only.
        extra_train: more ``(images, labels)`` appended to ``train`` (e.g. synthetic images).
        progress: called after every epoch with that epoch's history row.
        class_weighting: ``"balanced"`` weights the loss by ``n / (K * n_class)`` over the
            training labels; ``None`` for an unweighted loss.
        weight_decay: AdamW weight decay.
        steps: optimisation steps in all (``None``: ``epochs`` passes over the training data).
        eval_every: steps between validations (``None``: one pass with ``steps=None``, else
            ``ceil(steps / epochs)``).

    Returns:
        The model, in eval mode, holding the weights of the selected epoch, and the history: one
        dict per validation with ``epoch`` (its number), ``step`` (optimisation steps so far),
        ``train_loss``, ``val_loss``, ``val_accuracy``, ``val_balanced_accuracy`` and ``selected``
        (1.0 for the kept one).

    Raises:
        ValueError: for non-uint8 images, mismatched lengths, an empty set or a bad option.

    Example:
        >>> net = build_classifier("cnn", 2, 1, 2)
        >>> net, hist = train_classifier(net, (x_tr, y_tr), (x_va, y_va), epochs=5, seed=0)
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if (steps is not None and steps < 1) or (eval_every is not None and eval_every < 1):
        raise ValueError(f"steps and eval_every must be >= 1 or None, got {steps} and {eval_every}")
    if class_weighting not in ("balanced", None):
        raise ValueError(f"class_weighting must be 'balanced' or None, got {class_weighting!r}")

    # Section. Data: uint8 on the CPU, scaled batch by batch.
    x_train, y_train = _check_pair("train", train)
    x_val, y_val = _check_pair("val", val)
    if extra_train is not None:
        x_extra, y_extra = _check_pair("extra_train", extra_train)
        if x_extra.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"extra_train images are {x_extra.shape[1:]}, train images {x_train.shape[1:]}")
        x_train, y_train = np.concatenate([x_train, x_extra]), np.concatenate([y_train, y_extra])
    if len(x_train) < 2 or len(x_val) < 1:
        raise ValueError(f"need at least 2 training and 1 validation images, got {len(x_train)} and {len(x_val)}")
    x_train_t, y_train_t = torch.from_numpy(x_train), torch.from_numpy(y_train)
    per_pass = steps_per_epoch(len(x_train), batch_size)
    if steps is None:
        steps, eval_every = epochs * per_pass, eval_every or per_pass
    elif eval_every is None:
        eval_every = math.ceil(steps / epochs)

    dev = torch.device(device)
    model.to(dev)
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        shuffle = torch.Generator().manual_seed(seed)

        # Section. Loss weights and optimiser.
        num_classes = int(_logits(model, x_train[:2], 2, dev).shape[1])
        if y_train.max() >= num_classes or y_val.max() >= num_classes or min(y_train.min(), y_val.min()) < 0:
            raise ValueError(f"labels must lie in 0..{num_classes - 1} (the model has {num_classes} outputs)")
        weight = _class_weights(y_train, num_classes, class_weighting)
        weight = weight.to(dev) if weight is not None else None
        optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

        history: list[dict[str, float]] = []
        best_key = (-math.inf, -math.inf)
        best_state = copy.deepcopy(model.state_dict())
        best_epoch, epoch = 0, 0
        stream = _batch_stream(len(x_train_t), batch_size, shuffle)
        total, seen = 0.0, 0
        for step in range(1, steps + 1):
            # Section. One optimisation step on the next batch of the shuffled training stream.
            model.train()
            idx = next(stream)
            xb = to_model_input(x_train_t[idx]).to(dev)  # (B, C, *spatial)
            yb = y_train_t[idx].to(dev)
            if transform is not None:
                xb = transform(xb)
            loss = F.cross_entropy(model(xb), yb, weight=weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            if step % eval_every and step != steps:
                continue

            # Section. Validation and epoch selection (balanced accuracy, then lower loss).
            epoch += 1
            logits = _logits(model, x_val, max(batch_size, 256), dev)
            val_loss = float(F.cross_entropy(logits, torch.from_numpy(y_val)))
            scores = classifier_scores(torch.softmax(logits, 1).numpy(), y_val)
            row = {
                "epoch": float(epoch),
                "step": float(step),
                "train_loss": total / max(seen, 1),
                "val_loss": val_loss,
                "val_accuracy": scores["accuracy"],
                "val_balanced_accuracy": scores["balanced_accuracy"],
                "selected": 0.0,
            }
            history.append(row)
            key = (scores["balanced_accuracy"], -val_loss)
            if key > best_key:
                best_key, best_epoch = key, epoch
                best_state = copy.deepcopy(model.state_dict())
            total, seen = 0.0, 0
            if progress is not None:
                progress(row)

    model.load_state_dict(best_state)
    model.eval()
    history[best_epoch - 1]["selected"] = 1.0
    return model, history
