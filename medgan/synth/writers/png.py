"""PNG: one lossless 8-bit file per 2D sample (grey or RGB), marked synthetic in its text chunks."""

from __future__ import annotations

import numpy as np

from medgan.synth.writers.base import PerFileWriter, medgan_version

__all__ = ["PngWriter"]


class PngWriter(PerFileWriter):
    """``<slug>/<slug>_<seed>_<index:06d>.png``: mode L for one channel, RGB for three."""

    def write_sample(self, img: np.ndarray, label: int, index: int, rel: str) -> str:
        from PIL import Image, PngImagePlugin

        # (C, H, W) -> (H, W) grey or (H, W, 3) RGB; compress_level 1: fast, still lossless.
        arr = img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0))
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"medgan {medgan_version()}")
        info.add_text("Description", self.info.marking(label))
        name = f"{rel}.png"
        # uint8 (H, W) becomes mode L, (H, W, 3) mode RGB.
        Image.fromarray(arr).save(self.out_dir / name, format="PNG", compress_level=1, pnginfo=info)
        return name
