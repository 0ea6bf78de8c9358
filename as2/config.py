"""One config helper for every entry point: a flat dataclass, YAML file as defaults, CLI flags override.

Each entry point declares a dataclass whose fields all have a default and a one-line help
(``field(default=..., metadata={"help": "..."})``) and validates itself in ``__post_init__``.
:func:`parse` builds transformers' ``HfArgumentParser`` from it:

- ``--config FILE.yaml`` supplies values (unknown keys are errors, naming the file and the key); its strings
  may name environment variables, ``${VAR}`` or ``${VAR:-default}`` (a variable that is not set and has no
  default is left as written), so one config serves any output folder (the Makefile exports ``DEMO``, ``WQ``);
- every field is also a flag (``--max_length 128``, lists as ``--run a b``, mappings as JSON); flags win
  over the YAML file;
- ``--local_rank`` (injected by the ``deepspeed`` launcher) is accepted and returned beside the config.

:func:`save_resolved` writes the final values beside the outputs, so a run can be reproduced.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message says which and what was expected."""


def _json_mapping(value: Any) -> dict:
    """Type of a ``dict`` field: a mapping from YAML, or JSON text on the command line."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return value


_ENV_REF = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_env(value: Any) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` in the strings of ``value`` (lists and mappings too) replaced."""
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: os.environ.get(m[1], m[2] if m[2] is not None else m[0]), value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return expand_env(data)


def _bool(value: Any) -> bool:
    """A YAML boolean: true/false, yes/no, on/off, 1/0 (as text or number)."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y", "t"):
        return True
    if text in ("0", "false", "no", "off", "n", "f"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _yaml_value(action: argparse.Action, value: Any, where: str) -> Any:
    """A YAML value converted by the same ``type`` the flag uses (argparse converts only string defaults)."""
    if value is None or action.type is None:
        return value
    if action.const is True:  # a boolean field (``--flag`` alone means true)
        action = copy.copy(action)
        action.type = _bool
    try:
        if action.nargs == "+":
            return [action.type(v) for v in (value if isinstance(value, list | tuple) else [value])]
        return action.type(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{where}: {action.dest}={value!r} is not valid ({e})") from e


def _join_repeated(argv: list[str], list_flags: set[str]) -> list[str]:
    """``--run a --run b`` read as ``--run a b`` (argparse would keep only the last occurrence of a list flag)."""
    groups: list[list[str]] = []
    first: dict[str, list[str]] = {}
    current: list[str] | None = None  # the list flag whose values the next bare tokens extend
    for token in argv:
        if token.startswith("--"):
            current = first.get(token) if token in list_flags else None
            if current is not None:
                continue  # a repeated list flag: its values join the first occurrence
            groups.append([token])
            if token in list_flags:
                current = first[token] = groups[-1]
        elif current is not None:
            current.append(token)
        else:
            groups.append([token])
    return [token for group in groups for token in group]


def parse(cls: type[T], argv: list[str] | None = None, description: str | None = None) -> tuple[T, int]:
    """Parse ``argv`` into ``cls`` with :class:`transformers.HfArgumentParser`; returns ``(config, local_rank)``.

    The YAML file of ``--config`` becomes the parser's defaults, so flags win over it.
    """
    from transformers import HfArgumentParser  # imported here: evaluation entry points need no transformers

    parser = HfArgumentParser(cls, description=description, formatter_class=argparse.RawTextHelpFormatter)
    for action in parser._actions:
        if action.type is dict:  # a mapping field: JSON text on the command line
            action.type = _json_mapping
    parser.add_argument("--config", help="YAML file of defaults; flags given here override it")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    list_flags = {s for a in parser._actions if a.nargs == "+" for s in a.option_strings}
    argv = _join_repeated(list(sys.argv[1:] if argv is None else argv), list_flags)
    config_file = parser.parse_known_args(argv)[0].config
    if config_file:
        data = load_yaml(config_file)
        actions: dict[str, argparse.Action] = {}
        for a in parser._actions:  # a field's own flag, not the --no_<field> HfArgumentParser adds after it
            if a.dest not in ("help", "config", "local_rank"):
                actions.setdefault(a.dest, a)
        unknown = sorted(set(data) - set(actions))
        if unknown:
            raise ConfigError(f"{config_file}: unknown key(s) {unknown}; known keys: {sorted(actions)}")
        parser.set_defaults(**{k: _yaml_value(actions[k], v, config_file) for k, v in data.items()})
    try:
        cfg, extra = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    except (TypeError, ValueError) as e:  # __post_init__ checks, or flags no field knows
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e
    local_rank = extra.local_rank
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
    return cfg, local_rank


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_resolved(cfg: Any, out_dir: str | os.PathLike, name: str = "config.yaml") -> Path:
    """Write the resolved config (every field, after overrides) beside the outputs."""
    out = Path(out_dir) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return out


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file so that readers see either the old content or the complete new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def setup_logging(rank: int = 0, level: int = logging.INFO) -> None:
    """Entry points call this once: rank 0 logs at ``level``, other ranks only warnings."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=level if rank == 0 else logging.WARNING,
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("datasets", "transformers", "sentence_transformers", "numba", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def cli(main) -> None:
    """Run an entry point's ``main()`` from the command line: input errors become one line and exit 2.

    ``main`` itself raises (tests call it directly); here a user sees ``error: <file, line, field ...>``
    instead of a traceback for a bad config, a bad input file or a missing path.
    """
    from as2.data import DataError

    try:
        main()
    except (ConfigError, DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
