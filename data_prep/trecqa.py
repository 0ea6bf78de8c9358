"""TREC-QA (Wang, Smith and Mitamura, 2007; the clean/raw splits of Yao et al., 2013) in two layouts.

- The castorini layout (``data/TrecQA/{train-all,raw-dev,raw-test,...}/``): a directory holding
  ``a.toks`` (question), ``b.toks`` (candidate), ``id.txt`` (question id) and ``sim.txt`` (label), one line
  per pair, the four files of equal length. Consecutive lines with the same id form one question.
- A TSV file with a header naming (at least) the columns ``qid``, ``question``, ``answer``, ``label``.

The layout is chosen by the input: a directory is the castorini layout, a file the TSV. Neither has
candidate ids, so a candidate's id is ``<qid>-<i>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from as2.data import DataError, Question
from as2.grouping import Row, group_rows, parse_label
from as2.tsv import read_tsv

CASTORINI_FILES = {"question": "a.toks", "candidate": "b.toks", "qid": "id.txt", "label": "sim.txt"}
COLUMNS = ("qid", "question", "answer", "label")


def _read_lines(path: Path) -> list[str]:
    """Every line of a file (empty ones kept: they count for alignment), without line endings."""
    if not path.is_file():
        raise DataError(
            f"{path}: file does not exist (the castorini layout needs {list(CASTORINI_FILES.values())})"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 ({e.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line ending
    return [s[:-1] if s.endswith("\r") else s for s in lines]


def castorini_rows(directory: str | os.PathLike) -> Iterator[Row]:
    directory = Path(directory)
    columns = {key: _read_lines(directory / name) for key, name in CASTORINI_FILES.items()}
    n = len(columns["question"])
    for key, lines in columns.items():
        if len(lines) != n:
            name, first = CASTORINI_FILES[key], CASTORINI_FILES["question"]
            raise DataError(
                f"{directory / name}, line {min(n, len(lines)) + 1}: field {key!r} misaligned: "
                f"{name} has {len(lines)} lines but {first} has {n} (the four files must have one line per pair)"
            )
    label_file = directory / CASTORINI_FILES["label"]
    for i in range(n):
        label = parse_label(columns["label"][i], f"{label_file}, line {i + 1}")
        qid = columns["qid"][i].strip()
        yield Row(i + 1, columns["question"][i], columns["candidate"][i], label, qid=qid)


def tsv_rows(path: str | os.PathLike) -> Iterator[Row]:
    for line, (qid, question, answer, label) in read_tsv(path, COLUMNS, header="required"):
        yield Row(line, question, answer, parse_label(label, f"{path}, line {line}"), qid=qid.strip())


def read(path: str | os.PathLike, limit_questions: int | None = None) -> list[Question]:
    """Read a castorini split directory or a TSV file."""
    rows = castorini_rows(path) if Path(path).is_dir() else tsv_rows(path)
    return group_rows(rows, str(path), limit_questions)
