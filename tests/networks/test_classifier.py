"""The MONAI classifier factory and the penultimate-feature wrapper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan.networks.classifier import ARCHS, FeatureNet, SmallCNN, build_classifier

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


CASES = [
    ("cnn", 2, 28, 64), ("cnn", 3, 28, 64),
    ("resnet10", 2, 28, 512), ("resnet10", 3, 28, 512),
    ("resnet18", 2, 28, 512), ("resnet18", 3, 16, 512),
    ("densenet121", 2, 32, 1024), ("densenet121", 3, 32, 1024),
]


@pytest.mark.parametrize(("arch", "dims", "size", "features"), CASES)
def test_logits_and_features(arch: str, dims: int, size: int, features: int) -> None:
    torch.manual_seed(0)
    net = build_classifier(arch, spatial_dims=dims, in_channels=1, num_classes=3).eval()
    fnet = FeatureNet(net)
    x = torch.randn(2, 1, *([size] * dims))
    with torch.no_grad():
        assert net(x).shape == (2, 3)
        assert fnet(x).shape == (2, features)
    assert fnet.num_features == features
    # The wrapper adds no parameters of its own and does not register the head twice.
    assert fnet.state_dict().keys() == {f"classifier.{k}" for k in net.state_dict()}


def test_rgb_input() -> None:
    net = build_classifier("cnn", 2, in_channels=3, num_classes=7).eval()
    assert net(torch.zeros(4, 3, 28, 28)).shape == (4, 7)


def test_features_are_the_head_input() -> None:
    torch.manual_seed(0)
    net = SmallCNN(2, 1, 2, channels=(8, 16)).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        feats = FeatureNet(net)(x)
        torch.testing.assert_close(feats, net.forward_features(x))
        torch.testing.assert_close(net.head(feats), net(x))


def test_cnn_is_size_agnostic() -> None:
    net = SmallCNN(2, 1, 2).eval()
    assert net(torch.zeros(1, 1, 64, 64)).shape == (1, 2)
    assert net(torch.zeros(1, 1, 28, 28)).shape == (1, 2)


def test_gradients_flow_through_feature_net() -> None:
    fnet = FeatureNet(build_classifier("cnn", 2, 1, 2))
    fnet(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None for n, p in fnet.named_parameters() if "head" not in n)


def test_unknown_arch_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: cnn, resnet10, resnet18, densenet121") as info:
        build_classifier("vit", 2, 1, 2)
    assert "'vit'" in str(info.value)
    assert ARCHS == ("cnn", "resnet10", "resnet18", "densenet121")


def test_bad_spatial_dims() -> None:
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        build_classifier("cnn", 1, 1, 2)


def test_kwargs_reach_the_constructor() -> None:
    net = build_classifier("cnn", 2, 1, 2, channels=(4, 8))
    assert FeatureNet(net).num_features == 8
    res = build_classifier("resnet10", 2, 1, 2, no_max_pool=True)
    assert isinstance(res.maxpool, nn.Identity) or res.no_max_pool


def test_feature_net_needs_a_linear_head() -> None:
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        FeatureNet(nn.Sequential(nn.Conv2d(1, 2, 3)))
