"""TREC run files (``qid Q0 cid rank score name``): the one format in which systems hand over rankings.

Written as ``ranx.Run.save`` writes them (questions sorted by id, candidates by score, ranks from 1), with
equal scores ordered by candidate id and a final newline; written here rather than through ranx, whose writer
compiles numba kernels for each id width (seconds per new corpus). Reading is strict: every line must have
six fields and a finite score, one run name per file, no (qid, cid) twice; errors name file and line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from as2.data import DataError

Scores = dict[str, dict[str, float]]  # qid -> cid -> score
Codes = dict[str, tuple[str, dict[str, str]]]  # qid -> (its stand-in, {cid: its stand-in})

ID_WIDTH = 9


def id_codes(cids: Mapping[str, Iterable[str]]) -> Codes:
    """Fixed-width stand-ins for question and candidate ids, to hand to ranx instead of the real ones.

    ranx holds ids in numpy string arrays whose width (the longest id) is part of the types numba compiles
    its kernels for, so real ids compile the kernels anew for each corpus (~20 s on 2 cores); stand-ins of
    one width reuse those compiled once at install (``as2.warmup``).
    """
    return {
        qid: (f"{i:0{ID_WIDTH}d}", {cid: f"{j:0{ID_WIDTH}d}" for j, cid in enumerate(cands)})
        for i, (qid, cands) in enumerate(cids.items())
    }


def encode_ids(run: Mapping[str, Mapping[str, float]], codes: Codes) -> Scores:
    """``run`` with every id replaced by its stand-in from :func:`id_codes`."""
    return {codes[q][0]: {codes[q][1][c]: s for c, s in cands.items()} for q, cands in run.items()}


def decode_ids(run: Mapping[str, Mapping[str, float]], codes: Codes) -> Scores:
    """The inverse of :func:`encode_ids`."""
    back = {qcode: (qid, {c: cid for cid, c in cmap.items()}) for qid, (qcode, cmap) in codes.items()}
    return {back[q][0]: {back[q][1][c]: s for c, s in cands.items()} for q, cands in run.items()}


def read_run(path: str | os.PathLike) -> tuple[str, Scores]:
    """Read one TREC run file; returns ``(name, {qid: {cid: score}})``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: run file does not exist")
    name: str | None = None
    run: Scores = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise DataError(
                    f"{path}, line {lineno}: expected 6 fields 'qid Q0 cid rank score name', got {len(parts)}"
                )
            qid, _, cid, _, score_text, run_name = parts
            try:
                score = float(score_text)
            except ValueError:
                raise DataError(
                    f"{path}, line {lineno}: field 'score' is {score_text!r}, not a number"
                ) from None
            if not math.isfinite(score):
                raise DataError(f"{path}, line {lineno}: field 'score' is {score_text!r}")
            if name is None:
                name = run_name
            elif run_name != name:
                raise DataError(
                    f"{path}, line {lineno}: field 'name' is {run_name!r} but the file began with {name!r}"
                    " (one run per file)"
                )
            cands = run.setdefault(qid, {})
            if cid in cands:
                raise DataError(f"{path}, line {lineno}: candidate {cid!r} of question {qid!r} appears twice")
            cands[cid] = score
    if name is None:
        raise DataError(f"{path}: run file is empty")
    return name, run


def write_run(path: str | os.PathLike, run: Mapping[str, Mapping[str, float]], name: str) -> Path:
    """Write ``{qid: {cid: score}}`` as a TREC run named ``name``, atomically (questions without candidates
    are left out)."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"run name must be one non-empty word, got {name!r}")
    for qid, cands in run.items():
        for cid, score in cands.items():
            if any(c.isspace() for c in f"{qid}{cid}"):
                raise ValueError(
                    f"ids in a TREC run cannot hold whitespace: question {qid!r}, candidate {cid!r}"
                )
            if not math.isfinite(score):
                raise ValueError(f"score of candidate {cid!r} of question {qid!r} is {score}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for qid in sorted(run):
            ranked = sorted(run[qid].items(), key=lambda cs: (-cs[1], cs[0]))
            f.writelines(f"{qid} Q0 {cid} {r} {float(s)} {name}\n" for r, (cid, s) in enumerate(ranked, 1))
    os.replace(tmp, path)
    return path
