"""One writer per output format, behind :class:`~medgan.synth.writers.base.FormatWriter`.

Layout of an output folder (``<slug>`` is the class name made file-safe, see :func:`medgan.data.dataset.class_slugs`)::

    png    <slug>/<slug>_<seed>_<index:06d>.png                :mod:`.png`
    nifti  <slug>/<slug>_<seed>_<index:06d>.nii.gz             :mod:`.nifti`
    dicom  <slug>/<slug>_<seed>_<index:06d>.dcm                :mod:`.dicom` (each sample its own series: a 2D
                                                                Secondary Capture image, or a volume as one
                                                                multi-frame file)
    npz    dataset.npz + dataset.json                           :mod:`.npz` (a prepared dataset, train split only)

:class:`medgan.synth.export.SampleWriter` checks the batches and hands them to the writer of its format.
"""

from __future__ import annotations

from medgan.synth.writers.base import (
    FORMATS,
    ExportFormat,
    ExportInfo,
    FormatWriter,
    cannot_hold,
    check_holds,
    estimate_bytes,
)
from medgan.synth.writers.dicom import DicomWriter
from medgan.synth.writers.nifti import NiftiWriter, nifti_array_affine
from medgan.synth.writers.npz import NpzWriter
from medgan.synth.writers.png import PngWriter

__all__ = [
    "FORMATS",
    "WRITERS",
    "ExportFormat",
    "ExportInfo",
    "FormatWriter",
    "cannot_hold",
    "check_holds",
    "estimate_bytes",
    "nifti_array_affine",
]

WRITERS: dict[str, type[FormatWriter]] = {
    "png": PngWriter,
    "npz": NpzWriter,
    "nifti": NiftiWriter,
    "dicom": DicomWriter,
}
"""The writer class of every format in :data:`FORMATS`."""
