"""The JSON a results page is built from: read with a clear error, copied beside the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from as2.config import write_json

PEER_SPLITS = {"dev": "WikiQA dev", "test": "WikiQA test", "selqa_dev": "SelQA dev (out of domain)"}


EXTRA_SPLITS = ("dev", "selqa_dev")  # MAP columns beside the test metrics, where reports exist


def read_json(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist (run the stage that writes it first)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from e


def copy_beside(path: Path, copy: Path) -> None:
    """Copy an input JSON beside the page (unless the page is being regenerated from that very copy)."""
    if Path(path).resolve() != copy.resolve():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)


def read_splits(folder: str, copies: Path, splits=tuple(PEER_SPLITS)) -> dict[str, dict]:
    """``{split: as2.evaluate report}`` found as ``FOLDER/<split>/report.json``, copied beside the page."""
    found = {}
    for split in splits:
        path = Path(folder) / split / "report.json"
        if path.is_file():
            found[split] = read_json(str(path))
            copy_beside(path, copies / split / "report.json")
    if not found:
        raise FileNotFoundError(f"{folder}: no <split>/report.json for any of {', '.join(splits)}")
    return found


def read_folder(folder: str, copies: Path) -> dict[str, dict]:
    """``{name: JSON}`` of every ``FOLDER/<name>.json``, copied beside the page."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no <name>.json")
    found = {}
    for path in files:
        found[path.stem] = read_json(str(path))
        copy_beside(path, copies / path.name)
    return found


TRAINED = ("teachers/*/summary.json", "students/*/summary.json", "twin/summary.json", "peers/*/summary.json")


def read_training(path: str, copy: Path) -> dict[str, dict]:
    """``{"<stage>/<model>": summary.json}`` of the models a bench trained, copied beside the page as one file.

    ``path`` is the bench's folder (the summaries of its ``teachers/``, ``students/``, ``twin/`` and ``peers/``)
    or such a copy (a JSON file), so that the page regenerates from its copies."""
    p = Path(path)
    if p.is_file():
        copy_beside(p, copy)
        return read_json(str(p))
    found = {
        str(s.parent.relative_to(p)): read_json(str(s))
        for pattern in TRAINED
        for s in sorted(p.glob(pattern))
    }
    if not found:
        raise FileNotFoundError(f"{p}: no summary.json under {', '.join(TRAINED)}")
    copy.parent.mkdir(parents=True, exist_ok=True)
    write_json(copy, found)
    return found
