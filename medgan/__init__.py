"""medgan: augment scarce medical imaging data with GANs, and measure whether it helps.

The public Python API (docs/api.md) is re-exported here lazily, so ``import medgan`` stays light
and the command-line tools do not pay for it.
"""

from __future__ import annotations

from medgan.version import __version__

__all__ = ["__version__"]
