"""One network per class behind a class-conditional interface: what ``per_class: true`` trains and samples.

A per-class run trains one unconditional GAN per class (:mod:`medgan.training.perclass`); its sampling
checkpoint holds their generators side by side as one :class:`PerClassGenerator`, which routes each row of a
batch to the generator of its label. Everything that samples a class-conditional generator (``augment``,
``evaluate``, ``select``, the benchmark) then samples it unchanged: class ``c`` comes from class ``c``'s own
weights, and nothing is shared between the classes.

Example:
    >>> G = PerClassGenerator(num_classes=2, z_dim=64, member_family="residual",
    ...                       members=[dict(z_dim=64, num_classes=0, size=28)] * 2)
    >>> G(torch.randn(4, 64), torch.tensor([0, 0, 1, 1])).shape
    torch.Size([4, 1, 28, 28])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["PerClassDiscriminator", "PerClassGenerator"]


class _PerClass(nn.Module):
    """``members[c]`` built as ``member_family``'s network ``which`` (1: G, 2: D) from ``members[c]``'s kwargs."""

    which = 0

    def __init__(self, num_classes: int, member_family: str, members: list[dict[str, Any]], z_dim: int = 0) -> None:
        super().__init__()
        if num_classes != len(members) or num_classes < 1:
            raise ValueError(f"a per-class network needs one member per class: {num_classes} classes, "
                             f"{len(members)} members")
        from medgan.networks import (  # the family table (it loads this module lazily)
            build_discriminator,
            build_generator,
        )

        build = build_generator if self.which == 1 else build_discriminator
        if any(int(m.get("num_classes", 0)) != 0 for m in members):
            raise ValueError("the members of a per-class network are unconditional (num_classes 0)")
        self.num_classes = num_classes
        self.z_dim = z_dim
        self.members = nn.ModuleList(build(member_family, **m) for m in members)  # type: ignore[arg-type]

    def forward(self, x: Tensor, y: Tensor | None, **kwargs: Any) -> Tensor:
        """Each row through its class's member: ``members[y[i]](x[i])``, in the batch's order.

        Rows of one class go through their member together, so a batch of a single class (how sampling draws)
        computes exactly what that member computes alone.
        """
        if y is None:
            raise ValueError("a per-class network needs the class of every row (y)")
        out: Tensor | None = None
        for c in torch.unique(y).tolist():
            rows = (y == c).nonzero().squeeze(1)
            part = self.members[int(c)](x if len(rows) == len(x) else x[rows], None, **kwargs)
            if len(rows) == len(x):
                return part
            if out is None:
                out = part.new_empty((len(x), *part.shape[1:]))
            out[rows] = part
        assert out is not None
        return out


class PerClassGenerator(_PerClass):
    """One unconditional generator per class; ``G(z, y)`` draws row ``i`` from ``members[y[i]]``."""

    which = 1


class PerClassDiscriminator(_PerClass):
    """One unconditional discriminator per class (kept beside the generators; sampling never calls it)."""

    which = 2

