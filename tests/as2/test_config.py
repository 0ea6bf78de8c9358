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


@dataclass
class Typed:
    lr: float = field(default=1e-3, metadata={"help": "a rate"})
    steps: int = field(default=0, metadata={"help": "a count"})
    shuffle: bool = field(default=True, metadata={"help": "a switch"})
    runs: list[str] = field(default_factory=list, metadata={"help": "files"})
    spec: dict = field(default_factory=dict, metadata={"help": "a mapping"})


def test_yaml_values_are_converted_like_flags_and_bad_ones_name_the_file(tmp_path):
    """Bug caught: YAML reads `1e-5` as a string, which reached the optimizer as text."""
    path = tmp_path / "c.yaml"
    path.write_text('lr: 1e-5\nsteps: "7"\nshuffle: "no"\nruns: a\n')
    cfg, _ = parse(Typed, ["--config", str(path)])
    assert (cfg.lr, cfg.steps, cfg.shuffle, cfg.runs) == (1e-5, 7, False, ["a"])
    for text, expect in (("shuffle: 0\n", False), ("shuffle: 1\n", True), ("shuffle: false\n", False)):
        path.write_text(text)  # a default-true switch: its own flag's type, not --no_shuffle's
        assert parse(Typed, ["--config", str(path)])[0].shuffle is expect
    path.write_text("shuffle: maybe\n")
    with pytest.raises(ConfigError, match="shuffle='maybe' is not valid"):
        parse(Typed, ["--config", str(path)])
    path.write_text("steps: many\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: steps='many' is not valid"):
        parse(Typed, ["--config", str(path)])


def test_list_flags_repeat_or_take_several_values_and_mappings_read_json():
    """Bug caught: `--run a --run b` kept only b (argparse's last occurrence wins), silently dropping a run."""
    cfg, _ = parse(Typed, ["--runs", "a", "--steps", "3", "--runs", "b", "c", "--no_shuffle"])
    assert cfg.runs == ["a", "b", "c"] and cfg.steps == 3 and cfg.shuffle is False
    cfg, rank = parse(Typed, ["--spec", '{"x": {"path": "p"}}', "--local_rank", "1"])
    assert cfg.spec == {"x": {"path": "p"}} and rank == 1
    with pytest.raises(ConfigError, match="not used"):
        parse(Typed, ["--stpes", "3"])
