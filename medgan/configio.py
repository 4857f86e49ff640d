"""Config dataclasses loaded from YAML: unknown keys and wrong types are errors.

Every command that takes a YAML file owns one dataclass whose fields are exactly the allowed keys.
:func:`load_config` reads the file, applies ``--set key=value`` overrides, checks every value
against the field's type hint and returns the instance. :func:`save_config` writes the resolved
config back (into a run folder), so that a run can be repeated from its own output.

Nested sections are dataclass-typed fields; override them with dotted keys (``--set aug.p=0.2``).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from medgan.errors import MedganError
from medgan.utils import write_text_atomic

T = TypeVar("T")

__all__ = [
    "Bounds",
    "bounded",
    "check_fields",
    "config_to_dict",
    "flatten_keys",
    "load_config",
    "packaged_configs",
    "parse_overrides",
    "save_config",
    "to_dataclass",
]

BOUNDS = "medgan.bounds"
"""The key of a field's :class:`Bounds` in its dataclass field metadata."""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric config field (of each item, for a list or a mapping).

    Declared next to the field with :func:`bounded`; :func:`check_fields` holds every field to it.
    Independently of any bounds, every float must be finite unless ``finite=False``.

    Args:
        ge: the value must be ``>= ge``.
        gt: the value must be ``> gt``.
        le: the value must be ``<= le``.
        lt: the value must be ``< lt``.
        finite: refuse NaN and infinities.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True

    def admits(self, x: float) -> bool:
        """Whether ``x`` lies in the range (NaN lies in none)."""
        if x != x:  # NaN
            return False
        return not (
            (self.ge is not None and not x >= self.ge)
            or (self.gt is not None and not x > self.gt)
            or (self.le is not None and not x <= self.le)
            or (self.lt is not None and not x < self.lt)
        )

    def describe(self) -> str:
        """The range in words: ``positive``, ``at least 1``, ``in [0, 1)``."""
        low = self.gt if self.gt is not None else self.ge
        high = self.lt if self.lt is not None else self.le
        if low is not None and high is not None:
            opening, closing = "(" if self.gt is not None else "[", ")" if self.lt is not None else "]"
            return f"in {opening}{_num(low)}, {_num(high)}{closing}"
        if self.gt == 0:
            return "positive"
        if self.gt is not None:
            return f"above {_num(self.gt)}"
        if self.ge is not None:
            return f"at least {_num(self.ge)}"
        if self.lt is not None:
            return f"below {_num(self.lt)}"
        if self.le is not None:
            return f"at most {_num(self.le)}"
        return "a number"


def bounded(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    finite: bool = True,
) -> Any:
    """A dataclass field whose numbers must lie in a range, checked by :func:`check_fields`.

    For a list or mapping field the range applies to every item.

    Example:
        >>> @dataclass
        ... class Opt:
        ...     lr: float = bounded(1e-3, gt=0)
        ...     betas: list[float] = bounded(default_factory=lambda: [0.0, 0.99], ge=0, lt=1)
    """
    meta = {BOUNDS: Bounds(ge=ge, gt=gt, le=le, lt=lt, finite=finite)}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def _numbers(value: Any, key: str) -> Iterator[tuple[str, float]]:
    """Every number in ``value`` (a scalar, or nested in lists and mappings), with its dotted key."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield key, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{key}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _numbers(item, f"{key}.{k}")


def check_fields(obj: Any, prefix: str = "") -> None:
    """Hold every numeric field of a config dataclass (nested sections included) to its range.

    Every float must be finite, unless its field is declared with ``finite=False``; a field
    declared with :func:`bounded` must also lie in its range.

    Raises:
        MedganError: naming the first key at fault, its range and the value given.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_fields(value, f"{key}.")
            continue
        bounds: Bounds | None = f.metadata.get(BOUNDS)
        for where, x in _numbers(value, key):
            if isinstance(x, float) and not math.isfinite(x) and (bounds is None or bounds.finite):
                raise MedganError(f"config key '{where}' must be a finite number, got {x}")
            if bounds is not None and not bounds.admits(x):
                tp = hints.get(f.name)
                nullable = get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)
                or_null = " or null" if nullable else ""
                raise MedganError(f"config key '{where}' must be {bounds.describe()}{or_null}, got {x}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return it (ints widen to floats)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise MedganError(f"config key '{key}': {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise MedganError(f"config key '{key}': null is not allowed (expected {_type_name(tp)})")
        non_null = [a for a in args if a is not type(None)]
        if len(non_null) == 1:  # Optional[X]: X's own message is the clearest
            return _coerce(value, non_null[0], key)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except MedganError as exc:
                errors.append(str(exc))
        raise MedganError(f"config key '{key}': {value!r} is not a {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # type: ignore[arg-type]
            return value
        if not isinstance(value, dict):
            raise MedganError(f"config key '{key}': expected a mapping, got {value!r}")
        return to_dataclass(tp, value, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise MedganError(f"config key '{key}': expected a list ({_type_name(tp)}), got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise MedganError(f"config key '{key}': expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise MedganError(f"config key '{key}': expected a mapping, got {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        if kt is int:  # --set section.64=32 gives the key as the string "64"
            value = {int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k: v for k, v in value.items()}
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise MedganError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise MedganError(f"config key '{key}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise MedganError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise MedganError(f"config key '{key}': expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise MedganError(f"config key '{key}': {value!r} is not a {_type_name(tp)}")


def to_dataclass(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from a mapping, rejecting unknown keys and values of the wrong type.

    Args:
        cls: a dataclass type whose fields are the allowed keys.
        data: the mapping, e.g. parsed YAML.
        prefix: dotted path of this section, used in error messages.

    Raises:
        MedganError: on an unknown key (the message lists the allowed ones) or a wrong type.
    """
    if not isinstance(data, dict):
        raise MedganError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MedganError(
            f"unknown config key '{prefix}{unknown[0]}' (allowed: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _coerce(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise MedganError(f"config section '{prefix.rstrip('.') or '<root>'}': {exc}") from None
    if not prefix:  # the root holds every section (nested ones are built first, without the check)
        check_fields(obj)
    post = getattr(obj, "validate", None)
    if callable(post):
        post()
    return obj


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as YAML scalars or lists (``lr=2e-4``, ``x=[1,2]``).

    Raises:
        MedganError: when an item has no ``=`` or an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MedganError(f"bad --set '{item}': expected key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise MedganError(f"bad --set '{item}': the value is not valid YAML") from None
        out[key] = value
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise MedganError(f"bad --set '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] | dict[str, Any] = (),
) -> T:
    """Load a YAML config into ``cls``, then apply overrides.

    Args:
        cls: the config dataclass.
        path: a YAML file; ``None`` starts from the dataclass defaults.
        overrides: ``["key=value", ...]`` as given to ``--set``, or an already parsed mapping.

    Example:
        >>> cfg = load_config(TrainConfig, "configs/train/cgan_breastmnist.yaml", ["steps=100"])
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise MedganError("config file not found", p)
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise MedganError(f"not valid YAML{where}", p) from None
        if loaded is None:  # an empty file (or comments only) would run silently on every default
            raise MedganError("config file is empty: write the keys it should set (every other key keeps its "
                              "default)", p)
        if not isinstance(loaded, dict):
            raise MedganError("a config file must be a mapping of keys to values", p)
        data = loaded
    parsed = parse_overrides(overrides) if not isinstance(overrides, dict) else dict(overrides)
    for key, value in parsed.items():
        _set_dotted(data, key, value)
    return to_dataclass(cls, data)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain Python types (for YAML, JSON and checkpoints)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def flatten_keys(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping of dotted keys (``{"model": {"z_dim": 8}}`` -> ``{"model.z_dim": 8}``);
    an empty mapping stays a value."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    write_text_atomic(Path(path), yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def packaged_configs() -> Path:
    """The ``configs/`` folder that ships with medgan, wherever the command runs from.

    In a source checkout or an editable install it is the checkout's ``configs/``, beside the
    ``medgan`` package; a wheel installs it as ``<prefix>/share/medgan/configs`` (the
    ``data-files`` of ``pyproject.toml``).

    Example:
        >>> (packaged_configs() / "benchmark" / "default.yaml").is_file()
        True
    """
    beside = Path(__file__).resolve().parent.parent / "configs"
    if (beside / "benchmark").is_dir():
        return beside
    return Path(sys.prefix) / "share" / "medgan" / "configs"
