"""``medgan run``: from a folder of scans to an audited synthetic set and a benchmark report.

:func:`~medgan.pipeline.stages.run_pipeline` runs five resumable stages (preprocess, train, evaluate,
export, benchmark) into one output folder and writes ``OUT/index.md``. The training and benchmark
configs are derived from the data (:mod:`~medgan.pipeline.derive`); the export keeps only samples
that pass a quality gate (:mod:`~medgan.pipeline.gate`). See docs/run.md.

Importing this package is light; the stages import torch and MONAI when they run.
"""

from __future__ import annotations
