"""medgan: augment scarce medical imaging data with GANs, and measure whether it helps."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
