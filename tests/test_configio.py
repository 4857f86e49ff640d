"""The YAML config loader: unknown keys, wrong types and bad overrides are errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from medgan.configio import config_to_dict, load_config, parse_overrides, save_config
from medgan.errors import MedganError


@dataclass
class Inner:
    p: float = 0.5
    ops: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class Cfg:
    steps: int = 10
    lr: float = 1e-3
    loss: Literal["hinge", "wgan-gp"] = "hinge"
    name: str | None = None
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def write(tmp_path, data):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_loads_values_and_nested_sections(tmp_path):
    cfg = load_config(Cfg, write(tmp_path, {"steps": 5, "lr": "2e-4", "inner": {"p": 1}}))
    assert cfg.steps == 5
    assert cfg.lr == pytest.approx(2e-4)  # YAML 1.1 reads 2e-4 as a string; still a float here
    assert cfg.inner.p == 1.0 and isinstance(cfg.inner.p, float)
    assert cfg.inner.ops == ["a"]


def test_unknown_key_names_it_and_lists_allowed(tmp_path):
    with pytest.raises(MedganError, match=r"unknown config key 'stepz' \(allowed: .*steps"):
        load_config(Cfg, write(tmp_path, {"stepz": 5}))
    with pytest.raises(MedganError, match=r"unknown config key 'inner.q'"):
        load_config(Cfg, write(tmp_path, {"inner": {"q": 1}}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": "ten"}, "'steps': expected an integer"),
        ({"steps": 1.5}, "'steps': expected an integer"),
        ({"flag": "yes please"}, "'flag': expected true or false"),
        ({"loss": "l2"}, "'loss': 'l2' is not one of 'hinge', 'wgan-gp'"),
        ({"inner": {"ops": "a"}}, "'inner.ops': expected a list"),
        ({"inner": 3}, "'inner': expected a mapping"),
    ],
)
def test_wrong_types_are_errors(tmp_path, data, message):
    with pytest.raises(MedganError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(Cfg, write(tmp_path, data))


def test_overrides_apply_with_dotted_keys(tmp_path):
    cfg = load_config(Cfg, write(tmp_path, {"steps": 5}), ["steps=7", "inner.p=0.25", "name=run1", "inner.ops=[x, y]"])
    assert (cfg.steps, cfg.inner.p, cfg.name, cfg.inner.ops) == (7, 0.25, "run1", ["x", "y"])


def test_bad_override_is_an_error():
    with pytest.raises(MedganError, match="bad --set 'steps': expected key=value"):
        parse_overrides(["steps"])
    with pytest.raises(MedganError, match="unknown config key 'nope'"):
        load_config(Cfg, None, ["nope=1"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(MedganError, match="config file not found"):
        load_config(Cfg, tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1,\n")
    with pytest.raises(MedganError, match="not valid YAML"):
        load_config(Cfg, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(MedganError, match="must be a mapping"):
        load_config(Cfg, lst)


def test_save_round_trips(tmp_path):
    cfg = load_config(Cfg, None, ["steps=3", "inner.ops=[b]"])
    save_config(cfg, tmp_path / "out.yaml")
    again = load_config(Cfg, tmp_path / "out.yaml")
    assert config_to_dict(again) == config_to_dict(cfg)
