"""One config helper for every entry point: a flat dataclass, YAML file as defaults, CLI flags override.

Each entry point declares a dataclass whose fields all have a default and a one-line help
(``field(default=..., metadata={"help": "..."})``) and validates itself in ``__post_init__``.
:func:`parse` builds the argument parser from it:

- ``--config FILE.yaml`` supplies values (unknown keys are errors, naming the file and the key); its strings
  may name environment variables, ``${VAR}`` or ``${VAR:-default}`` (a variable that is not set and has no
  default is left as written), so one config serves any output folder (the Makefile exports ``DEMO``, ``WQ``);
- every field is also a flag (``--max_length 128``); flags win over the YAML file;
- ``--local_rank`` (injected by the ``deepspeed`` launcher) is accepted and returned beside the config.

:func:`save_resolved` writes the final values beside the outputs, so a run can be reproduced.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message says which and what was expected."""


def _bool(text: str) -> bool:
    low = str(text).lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _field_kind(tp: Any) -> tuple[Any, bool]:
    """(scalar type, is_list) of a dataclass field annotation such as ``int``, ``str | None``, ``list[str]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _field_kind(args[0])
    if origin in (list, tuple):
        return (typing.get_args(tp) or (str,))[0], True
    if origin is dict:
        return dict, False
    return tp, False


def _coerce(value: Any, tp: Any, name: str, where: str) -> Any:
    scalar, is_list = _field_kind(tp)
    if value is None:
        return None
    try:
        if is_list:
            items = value if isinstance(value, list | tuple) else [value]
            return [_coerce(v, scalar, name, where) for v in items]
        if scalar is bool:
            return value if isinstance(value, bool) else _bool(value)
        if scalar is dict:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise TypeError("expected a mapping")
            return value
        if scalar in (int, float, str):
            return scalar(value)
        return value
    except (TypeError, ValueError, argparse.ArgumentTypeError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{where}: {name}={value!r} is not a valid {getattr(tp, '__name__', tp)} ({e})"
        ) from e


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


def parse(cls: type[T], argv: list[str] | None = None, description: str | None = None) -> tuple[T, int]:
    """Parse ``argv`` into ``cls``; returns ``(config, local_rank)``."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", help="YAML file of defaults; flags given here override it")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    for f in fields:
        scalar, is_list = _field_kind(hints[f.name])
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f.metadata.get("help", "")}
        if is_list:
            kwargs.update(nargs="*", action="extend")  # --run a --run b and --run a b both work
        elif scalar is bool:
            kwargs.update(nargs="?", const=True, type=_bool)
        parser.add_argument(f"--{f.name}", **kwargs)
    args = vars(parser.parse_args(argv))

    values: dict[str, Any] = {}
    if args.get("config"):
        data = load_yaml(args["config"])
        known = {f.name for f in fields}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{args['config']}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        values.update({k: _coerce(v, hints[k], k, args["config"]) for k, v in data.items()})
    for f in fields:
        if f.name in args:
            values[f.name] = _coerce(args[f.name], hints[f.name], f.name, "command line")
    local_rank = args.get("local_rank")
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
    try:
        return cls(**values), local_rank
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e


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
