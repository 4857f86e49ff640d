"""NIfTI: one ``.nii.gz`` per grey sample, with the spacing in the affine (the axis convention of DICOM export)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medgan.synth.writers.base import PerFileWriter

__all__ = ["NiftiWriter", "nifti_array_affine"]


def nifti_array_affine(volume: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The NIfTI data array and affine of a medgan volume ``(D, H, W)`` or image ``(H, W)``.

    Axis convention (the one DICOM export uses too): column ``w`` runs along patient x, row ``h``
    along y, slice ``d`` along z, with voxel ``(d, h, w)`` at LPS ``(w·sx, h·sy, d·sz)``. NIfTI
    stores ``(i, j, k) = (w, h, d)``, so the data is transposed to ``(W, H, D)`` and the RAS affine
    is ``diag(-sx, -sy, sz)``; viewers then show each ``(H, W)`` slice as an axial slice, and MONAI
    reads the same array and affine from the NIfTI as from the DICOM series. A 2D image becomes a
    one-slice volume ``(W, H, 1)``.

    Args:
        volume: uint8 ``(D, H, W)`` or ``(H, W)``.
        spacing: mm in array order, ``[sz, sy, sx]`` or ``[sy, sx]``.
    """
    if volume.ndim == 2:
        volume = volume[None]  # (1, H, W)
        spacing = [1.0, *spacing]
    sz, sy, sx = (float(s) for s in spacing)
    data = np.ascontiguousarray(volume.transpose(2, 1, 0))  # (W, H, D)
    affine = np.diag([-sx, -sy, sz, 1.0])
    return data, affine


class NiftiWriter(PerFileWriter):
    """``<slug>/<slug>_<seed>_<index:06d>.nii.gz``; the header names the checkpoint."""

    def write_sample(self, img: np.ndarray, label: int, index: int, rel: str) -> str:
        import nibabel as nib

        data, affine = nifti_array_affine(img[0], self.info.spacing)
        nii = nib.Nifti1Image(data, affine)
        nii.set_qform(affine, code=2)  # "aligned": the same geometry for readers that use the qform
        nii.header.set_xyzt_units("mm")
        nii.header["descrip"] = f"medgan synthetic; ckpt {self.info.checkpoint_sha256[:12]}"[:79]
        name = f"{rel}.nii.gz"
        nib.save(nii, self.out_dir / name)
        return name
