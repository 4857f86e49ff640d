"""The cycle family's networks: two translators G(x, y) and two MONAI patch discriminators D(x, y), 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from medgan.networks import build_networks
from medgan.networks.cycle import CycleDiscriminator, CycleGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("arch", ["resnet", "unet"])
@pytest.mark.parametrize(("spatial_dims", "size"), [(2, 28), (3, 8)])
def test_translators_keep_the_shape_and_patch_scores_are_per_image(arch, spatial_dims, size):
    G = CycleGenerator(
        channels=1, size=size, spatial_dims=spatial_dims, arch=arch, base_channels=4, n_blocks=1
    )
    D = CycleDiscriminator(
        channels=1, size=size, spatial_dims=spatial_dims, base_channels=4, num_layers=2 if size >= 12 else 1
    )
    x = torch.rand(3, 1, *(size,) * spatial_dims) * 2 - 1
    for to in (0, 1):
        out = G(x, to)
        assert out.shape == x.shape
        assert out.abs().max() <= 1.0  # tanh output, in the images' range
    scores = D(x, 0)
    assert scores.ndim == 2 and scores.shape[0] == 3
    if spatial_dims == 2:
        assert scores.shape[1] == 25  # two layers: a 5x5 grid of patches at 28²


def test_the_two_directions_are_different_networks():
    G = CycleGenerator(channels=1, size=16, base_channels=4, n_blocks=1)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert not torch.allclose(G(x, 0), G(x, 1))
    D = CycleDiscriminator(channels=1, size=16, base_channels=4)
    assert not torch.allclose(D(x, 0), D(x, 1))


def test_per_image_domains_route_each_image_to_its_network():
    G = CycleGenerator(channels=1, size=16, base_channels=4, n_blocks=1).eval()
    D = CycleDiscriminator(channels=1, size=16, base_channels=4).eval()
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    y = torch.tensor([1, 0, 0, 1])
    out, scores = G(x, y), D(x, y)
    for i, d in enumerate(y.tolist()):
        torch.testing.assert_close(out[i], G(x[i : i + 1], d)[0])
        torch.testing.assert_close(scores[i], D(x[i : i + 1], d)[0])
    with pytest.raises(ValueError, match="domain labels must be 0"):
        G(x, torch.tensor([0, 1, 2, 0]))


def test_a_size_that_the_downsamplings_do_not_divide_is_padded_and_cropped_back():
    G = CycleGenerator(channels=3, size=10, base_channels=4, n_down=2, n_blocks=1)
    assert G.canvas == 12
    assert G(torch.zeros(2, 3, 10, 10), 1).shape == (2, 3, 10, 10)


def test_build_networks_makes_the_cycle_family_and_bad_options_name_the_allowed_values():
    common = {"channels": 1, "size": 16, "spatial_dims": 2}
    G, D = build_networks(
        {
            "family": "cycle",
            "generator": {**common, "base_channels": 4, "n_blocks": 1},
            "discriminator": {**common, "base_channels": 4},
        }
    )
    assert isinstance(G, CycleGenerator) and isinstance(D, CycleDiscriminator)
    with pytest.raises(ValueError, match="allowed: resnet, unet"):
        CycleGenerator(arch="vit", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allowed: instance, batch"):
        CycleDiscriminator(norm="layer", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly 2 domains"):
        CycleGenerator(num_classes=3, **common)
    with pytest.raises(ValueError, match=r"too deep for 8-pixel images; use at most 1 \(cycle.d_layers\)"):
        CycleDiscriminator(channels=1, size=8, spatial_dims=3, num_layers=2)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_a_binary_translator_emits_masks_and_gradients_pass_through(spatial_dims):
    torch.manual_seed(0)
    G = CycleGenerator(1, 10, spatial_dims=spatial_dims, base_channels=4, max_channels=8, n_down=2, n_blocks=1,
                       binary=True)
    x = torch.where(torch.rand(2, 1, *[10] * spatial_dims) > 0.5, 1.0, -1.0)
    out = G(x, 1)
    assert out.shape == x.shape and set(out.unique().tolist()) <= {-1.0, 1.0}
    G.binary = False
    assert torch.equal(out.detach(), torch.where(G(x, 1).detach() >= 0, 1.0, -1.0))
    G.binary = True
    G(x, 1).mean().backward()
    assert all(p.grad is not None for p in G.nets[1].parameters())
    assert all(p.grad is None for p in G.nets[0].parameters())
