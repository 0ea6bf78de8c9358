"""A dataset loaded with ``datasets.load_dataset(name, subset, split=split)``: a hub name, for machines that
reach a hub, or anything else ``load_dataset`` accepts (a local folder of data files, a loading script).

The column mapping works as in :mod:`as2.table`; its defaults fit WikiQA on the hub
(``microsoft/wiki_qa``: question_id, question, document_title, answer, label), which has no candidate ids,
so a candidate's id is ``<qid>-<i>``. A row's "line" in messages is its 1-based index in the split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from as2.data import DataError, Question
from as2.grouping import group_rows
from as2.table import columns, rows_from_records


def _records(ds, wanted: list[str], batch_size: int = 1000) -> Iterator[tuple[int, list[Any]]]:
    line = 0
    for batch in ds.select_columns(wanted).iter(batch_size=batch_size):
        for values in zip(*(batch[col] for col in wanted), strict=True):
            line += 1
            yield line, list(values)


def read(
    name: str,
    subset: str | None = None,
    split: str = "test",
    question_col: str = "question",
    candidate_col: str = "answer",
    label_col: str = "label",
    qid_col: str | None = "question_id",
    cid_col: str | None = None,
    limit_questions: int | None = None,
) -> list[Question]:
    """Load one split with ``datasets.load_dataset`` and group its rows into questions."""
    import datasets

    ds = datasets.load_dataset(name, subset, split=split)
    source = f"{name}[{subset + ':' if subset else ''}{split}]"
    wanted = columns(question_col, candidate_col, label_col, qid_col, cid_col)
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing} (columns: {ds.column_names})")
    rows = rows_from_records(
        _records(ds, wanted), source, question_col, candidate_col, label_col, qid_col, cid_col
    )
    return group_rows(rows, source, limit_questions)
