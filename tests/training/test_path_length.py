"""Path-length regularisation: the value on a generator whose Jacobian is known, its running mean, and its state."""

from __future__ import annotations

import math

import pytest
import torch

from medgan.training.loss import GANLoss


class _LinearG(torch.nn.Module):
    """``image = reshape(w @ M)`` with ``w = z @ A`` (a mapping): the Jacobian with respect to ``w`` is ``M``."""

    w_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.M = torch.nn.Parameter(torch.randn(4, 9))
        self.A = torch.nn.Parameter(torch.eye(4))

    def forward(self, z, y=None, return_w=False):
        ws = (z @ self.A).unsqueeze(1)  # (B, 1, w_dim): one layer
        img = (ws[:, 0] @ self.M).reshape(len(z), 1, 3, 3)
        return (img, ws) if return_w else img


def test_path_length_penalty_matches_the_formula_and_trains_the_generator():
    torch.manual_seed(0)
    G = _LinearG()
    loss = GANLoss("nonsaturating", pl_weight=2.0, pl_every=4, pl_decay=0.5)
    z = torch.randn(5, 4)
    torch.manual_seed(1)
    total, stats = loss.path_length_loss(G, z, None)
    # Expected: u ~ N(0, I) / sqrt(9) (the same draw), lengths = ||M u|| per sample.
    torch.manual_seed(1)
    u = torch.randn(5, 1, 3, 3) / math.sqrt(9)
    lengths = (u.reshape(5, 9) @ G.M.detach().T).norm(dim=1)
    pl_mean = 0.5 * lengths.mean()  # lerp(0, mean, 0.5)
    penalty = (lengths - pl_mean).square().mean()
    assert float(stats["pl_mean"]) == pytest.approx(float(pl_mean), rel=1e-5)
    assert float(stats["pl_penalty"]) == pytest.approx(float(penalty), rel=1e-5)
    assert float(total) == pytest.approx(float(penalty) * 2.0 * 4, rel=1e-5)
    total.backward()
    assert G.M.grad is not None and G.M.grad.abs().sum() > 0
    # The running mean is the loss's state: saved and restored exactly.
    state = loss.state_dict()
    fresh = GANLoss("nonsaturating", pl_weight=2.0)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.pl_mean, loss.pl_mean)


def test_path_length_is_lazy_and_off_by_default():
    assert not GANLoss("hinge").pl_due(0)
    lazy = GANLoss("hinge", pl_weight=2.0, pl_every=4)
    assert [s for s in range(10) if lazy.pl_due(s)] == [0, 4, 8]
    with pytest.raises(ValueError, match="pl_weight"):
        GANLoss("hinge", pl_weight=-1.0)
