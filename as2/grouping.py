"""Rows to questions: the grouping that every reader shares.

A reader turns its format into a stream of :class:`Row` (one candidate each, with its 1-based source line)
and :func:`group_rows` folds consecutive rows into :class:`~as2.data.Question` objects:

- with a question id, consecutive rows with the same id form one question; an id that comes back after
  another question is a new question with the same id, which :func:`as2.data.validate` then rejects;
- without one, consecutive rows with the same question text form one question, whose id is its 0-based
  position in the file (a text that comes back later starts a new question with a new id);
- without a candidate id, a candidate's id is ``<qid>-<i>``, ``i`` its 0-based position in the question.

:func:`parse_label` turns a label cell into 0/1 with an error naming file, line and field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from as2.data import DataError, Question

BINARY = {0: 0, 1: 1}


class Row(NamedTuple):
    """One candidate as a reader finds it; ``qid`` / ``cid`` are ``None`` where the format has none."""

    line: int
    question: str
    text: str
    label: int
    qid: str | None = None
    cid: str | None = None


def parse_label(value: Any, where: str, field: str = "label", mapping: Mapping[int, int] = BINARY) -> int:
    """Map a label cell (``"1"``, ``1``, ``1.0``, ``True``) through ``mapping`` to 0/1.

    ``where`` names the file and line (``"train.tsv, line 7"``); ``field`` the column at fault.
    """
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    if (
        isinstance(number, bool)
        or isinstance(number, float)
        and math.isfinite(number)
        and number.is_integer()
    ):
        number = int(number)
    if not isinstance(number, int) or number not in mapping:
        expected = " or ".join(str(k) for k in sorted(mapping))
        raise DataError(f"{where}: field {field!r} is {value!r}, expected {expected}")
    return mapping[number]


def group_rows(rows: Iterable[Row], source: str, limit_questions: int | None = None) -> list[Question]:
    """Fold consecutive rows into questions (see the module docstring); stop after ``limit_questions``."""
    return list(iter_questions(rows, source, limit_questions))


def iter_questions(
    rows: Iterable[Row], source: str, limit_questions: int | None = None
) -> Iterator[Question]:
    """:func:`group_rows` as a stream: each question as soon as its last row is read (memory: one question).

    Raises :class:`DataError` if the rows of one question id disagree on the question text, or if there
    are no rows at all.
    """
    current: Question | None = None
    started = 0
    for row in rows:
        if current is not None and (
            row.qid == current.qid if row.qid is not None else row.question == current.question
        ):
            if row.qid is not None and row.question != current.question:
                raise DataError(
                    f"{source}, line {row.line} (question {row.qid!r}): field 'question' is "
                    f"{row.question!r}, but line {current.line} of the same question id has {current.question!r}"
                )
        else:
            if current is not None:
                yield current
            if limit_questions is not None and started >= limit_questions:
                return
            qid = row.qid if row.qid is not None else str(started)
            current = Question(qid=qid, question=row.question, line=row.line)
            started += 1
        cid = row.cid if row.cid is not None else f"{current.qid}-{len(current.cids)}"
        current.add(cid, row.text, row.label, row.line)
    if current is None:
        raise DataError(f"{source}: no rows to convert")
    yield current
