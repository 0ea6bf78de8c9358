"""as2.config: YAML defaults with environment references, flags override, unknown keys are errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from as2.config import ConfigError, parse


@dataclass
class Cfg:
    data: str = field(default="", metadata={"help": "a folder"})
    teachers: dict = field(default_factory=dict, metadata={"help": "name -> spec"})
    runs: list[str] = field(default_factory=list, metadata={"help": "files"})


def test_yaml_strings_expand_environment_references(tmp_path, monkeypatch):
    """Bug caught: a config that hard-codes its output folder, so `make demo DEMO=x` wrote into runs/demo."""
    path = tmp_path / "c.yaml"
    path.write_text('data: "${OUT:-runs/demo}/data"\nteachers: {a: {path: "${OUT:-runs/demo}/a"}}\n'
                    'runs: ["${UNSET_VAR}/r"]\n')  # fmt: skip
    monkeypatch.delenv("OUT", raising=False)
    monkeypatch.delenv("UNSET_VAR", raising=False)
    cfg, _ = parse(Cfg, ["--config", str(path)])
    assert cfg.data == "runs/demo/data" and cfg.teachers == {"a": {"path": "runs/demo/a"}}
    assert cfg.runs == ["${UNSET_VAR}/r"]  # no default: left as written, for the entry point to resolve
    monkeypatch.setenv("OUT", "/tmp/other")
    cfg, _ = parse(Cfg, ["--config", str(path), "--runs", "x"])
    assert cfg.data == "/tmp/other/data" and cfg.teachers["a"]["path"] == "/tmp/other/a" and cfg.runs == ["x"]
    path.write_text("dta: x\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dta'\]"):
        parse(Cfg, ["--config", str(path)])
