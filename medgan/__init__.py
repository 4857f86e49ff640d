"""medgan: augment scarce medical imaging data with GANs, and measure whether it helps.

The public Python API (docs/api.md) is re-exported here lazily, so ``import medgan`` stays light
and the command-line tools do not pay for it.

``medgan.benchmark`` is both the package :mod:`medgan.benchmark` and the function
:func:`medgan.api.benchmark`: importing a subpackage binds its name on the parent, so a plain
function of that name would be replaced by the package as soon as anything imported
``medgan.benchmark.config``. Instead the package is made callable (calling it calls
:func:`medgan.api.benchmark`) whenever it is bound here, and ``medgan.benchmark.runner`` and
friends keep working.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from medgan.version import __version__

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names come from __getattr__
    from medgan.api import (
        BenchmarkRun,
        EvaluateResult,
        Generator,
        SyntheticDataset,
        TrainResult,
        benchmark,
        evaluate,
        load_generator,
        train,
    )

__all__ = [
    "BenchmarkRun",
    "EvaluateResult",
    "Generator",
    "SyntheticDataset",
    "TrainResult",
    "__version__",
    "benchmark",
    "evaluate",
    "load_generator",
    "train",
]
_API = frozenset(__all__) - {"__version__"}


class _CallablePackage(types.ModuleType):
    """The class of the :mod:`medgan.benchmark` package: calling it runs :func:`medgan.api.benchmark`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from medgan.api import benchmark as run

        return run(*args, **kwargs)


class _Facade(types.ModuleType):
    """The class of this module: binds the ``benchmark`` subpackage as a callable package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "benchmark" and type(value) is types.ModuleType:
            value.__class__ = _CallablePackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade


def __getattr__(name: str) -> Any:
    """Import :mod:`medgan.api` (and torch) on the first access to one of its names."""
    if name == "benchmark":
        import medgan.benchmark  # noqa: F401  # binds the callable package (see the module doc)

        return globals()["benchmark"]
    if name in _API:
        from medgan import api

        value = getattr(api, name)
        globals()[name] = value  # later accesses skip this function
        return value
    raise AttributeError(f"module 'medgan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
