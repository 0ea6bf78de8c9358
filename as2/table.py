"""Any table of (question, candidate, label) rows, with the column names given on the command line.

Formats (from ``format``, else the file extension):

===========  =========================  ===============================================================
format       extensions                 read with
===========  =========================  ===============================================================
``tsv``      ``.tsv``                   :mod:`as2.tsv`: header line, split on tabs, no quoting
``csv``      ``.csv``                   :mod:`csv`, normal quoting (a quoted cell may span lines)
``jsonl``    ``.jsonl``, ``.ndjson``    one JSON object per line
``parquet``  ``.parquet``, ``.pq``      :mod:`pyarrow.parquet` in batches; "line" = 1-based row index
===========  =========================  ===============================================================

Rows are grouped by ``qid_col`` when given (consecutive rows with one id), else by consecutive question
text (see :mod:`as2.grouping`); without ``cid_col`` a candidate's id is ``<qid>-<i>``. Without
``label_col`` every candidate is unlabeled (label 0): input to rank, not to train or evaluate on.

:func:`read_questions` reads the files a user ranks without converting them first (``cerberus.predict``):
a row table with columns ``question`` and ``candidate`` (optional ``qid``, ``cid``, ``label``), or JSONL
with one question per line: ``{"question": ..., "candidates": [...]}`` (optional ``qid``, ``cids``,
``labels``; a line without ``qid`` gets its 0-based position).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from as2.data import DataError, Question
from as2.grouping import Row, group_rows, parse_label
from as2.tsv import read_tsv

FORMATS = ("tsv", "csv", "jsonl", "parquet")
EXTENSIONS = {
    ".tsv": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the table format from {suffix!r}; pass --format, one of {FORMATS}"
        )
    return EXTENSIONS[suffix]


def _records(reader, path: Path) -> Iterator[list[str]]:
    """The records of a ``csv.reader``; its errors (a stray quote, an unclosed field) name file and line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({e})") from None


def _csv_records(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, list[Any]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)  # a stray quote is an error, not text glued across fields
        header: list[str] | None = None
        end = 0  # last physical line consumed, so a record's first line is end + 1
        for record in _records(reader, path):
            line, end = end + 1, reader.line_num
            if not record:
                continue
            if header is None:
                header = record
                for col in columns:
                    if col not in header:
                        raise DataError(f"{path}, line {line}: missing column {col!r} in the header {header}")
                index = [header.index(col) for col in columns]
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{path}, line {line}: expected {len(header)} comma-separated fields "
                    f"({', '.join(header)}), got {len(record)}"
                )
            yield line, [record[i] for i in index]
    if header is None:
        raise DataError(f"{path}: empty file, expected a header line with columns {list(columns)}")


def _json_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line, object)`` for each non-blank line of a JSONL file."""
    with open(path, encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}, line {line}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}, line {line}: expected a JSON object, got {type(obj).__name__}")
            yield line, obj


def _jsonl_records(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, list[Any]]]:
    for line, obj in _json_objects(path):
        for col in columns:
            if col not in obj:
                raise DataError(f"{path}, line {line}: missing field {col!r}")
        yield line, [obj[col] for col in columns]


def _parquet_records(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, list[Any]]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    for col in columns:
        if col not in names:
            raise DataError(f"{path}: missing column {col!r} (columns: {names})")
    line = 0
    for batch in pf.iter_batches(columns=list(dict.fromkeys(columns))):
        data = batch.to_pydict()
        for i in range(batch.num_rows):
            line += 1
            yield line, [data[col][i] for col in columns]


def records(path: str | os.PathLike, columns: Sequence[str], format: str) -> Iterator[tuple[int, list[Any]]]:
    """``(line, [value of each column])`` for each row of the table."""
    path = Path(path)
    if format == "tsv":
        return read_tsv(path, columns, header="required")
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    if format == "csv":
        return _csv_records(path, columns)
    if format == "jsonl":
        return _jsonl_records(path, columns)
    if format == "parquet":
        return _parquet_records(path, columns)
    raise ValueError(f"table format must be one of {FORMATS}, got {format!r}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def rows_from_records(
    records: Iterator[tuple[int, list[Any]]],
    source: str,
    question_col: str,
    candidate_col: str,
    label_col: str | None,
    qid_col: str | None = None,
    cid_col: str | None = None,
) -> Iterator[Row]:
    """Map records whose values follow :func:`columns` order to rows; shared with :mod:`data_prep.hub`."""
    names = columns(question_col, candidate_col, label_col, qid_col, cid_col)
    for line, values in records:
        value = dict(zip(names, values, strict=True))
        yield Row(
            line,
            _text(value[question_col]),
            _text(value[candidate_col]),
            parse_label(value[label_col], f"{source}, line {line}", label_col) if label_col else 0,
            qid=_text(value[qid_col]).strip() if qid_col else None,
            cid=_text(value[cid_col]).strip() if cid_col else None,
        )


def columns(
    question_col: str,
    candidate_col: str,
    label_col: str | None,
    qid_col: str | None = None,
    cid_col: str | None = None,
) -> list[str]:
    """The distinct columns a mapping reads, in a fixed order."""
    return list(dict.fromkeys(c for c in (question_col, candidate_col, label_col, qid_col, cid_col) if c))


def read(
    path: str | os.PathLike,
    question_col: str,
    candidate_col: str,
    label_col: str | None,
    qid_col: str | None = None,
    cid_col: str | None = None,
    format: str | None = None,
    limit_questions: int | None = None,
) -> list[Question]:
    """Read a TSV/CSV/JSONL/Parquet table with the given column mapping."""
    format = format or detect_format(path)
    wanted = columns(question_col, candidate_col, label_col, qid_col, cid_col)
    rows = rows_from_records(
        records(path, wanted, format), str(path), question_col, candidate_col, label_col, qid_col, cid_col
    )
    return group_rows(rows, str(path), limit_questions)


ROW_COLUMNS = ("question", "candidate")  # required in a row table read by read_questions
OPTIONAL_COLUMNS = ("qid", "cid", "label")


def header(path: str | os.PathLike, format: str) -> list[str]:
    """The column names of a table: its header line, the keys of its first JSON object, its schema."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    if format == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    if format == "jsonl":
        for _, obj in _json_objects(path):
            return list(obj)
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for text in f:
                if text.strip():
                    return text.rstrip("\r\n").split("\t") if format == "tsv" else next(csv.reader([text]))
    raise DataError(f"{path}: empty file")


def _grouped_rows(path: Path) -> Iterator[Row]:
    """Rows of a JSONL file of ``{"question", "candidates"[, "qid", "cids", "labels"]}`` objects."""
    position = 0
    for line, obj in _json_objects(path):
        where = f"{path}, line {line}"
        question, cands = obj.get("question"), obj.get("candidates")
        if not isinstance(question, str):
            raise DataError(f"{where}: field 'question' must be a string, got {type(question).__name__}")
        if not isinstance(cands, list) or not cands or not all(isinstance(c, str) for c in cands):
            raise DataError(f"{where}: field 'candidates' must be a non-empty list of strings")
        n = len(cands)
        cids, labels = obj.get("cids"), obj.get("labels")
        for name, values in (("cids", cids), ("labels", labels)):
            if values is not None and (not isinstance(values, list) or len(values) != n):
                raise DataError(f"{where}: field {name!r} must be a list of {n} values, one per candidate")
        qid = _text(obj["qid"]).strip() if "qid" in obj else str(position)
        position += 1
        for i, text in enumerate(cands):
            label = parse_label(labels[i], where, "labels") if labels is not None else 0
            yield Row(line, question, text, label, qid=qid, cid=_text(cids[i]).strip() if cids else None)


def read_questions(path: str | os.PathLike, format: str | None = None) -> list[Question]:
    """Questions with candidates from a user's file, with or without labels (see the module docstring)."""
    path = Path(path)
    format = format or detect_format(path)
    names = header(path, format)
    if format == "jsonl" and "candidates" in names:
        return group_rows(_grouped_rows(path), str(path))
    missing = [c for c in ROW_COLUMNS if c not in names]
    if missing:
        raise DataError(
            f"{path}: missing column {missing[0]!r} (columns: {names}); expected {list(ROW_COLUMNS)} "
            f"and optionally {list(OPTIONAL_COLUMNS)}, or JSONL lines with 'question' and 'candidates'"
        )
    optional = {c: c if c in names else None for c in OPTIONAL_COLUMNS}
    return read(path, "question", "candidate", optional["label"], optional["qid"], optional["cid"], format)


def load_split(path: str | os.PathLike):
    """A ``datasets.Dataset`` of questions: a converted split folder, or a user's file (:func:`read_questions`)."""
    from as2.data import load, to_dataset, validate

    if Path(path).is_dir():
        return load(path)
    questions = read_questions(path)
    validate(questions, source=str(path))
    return to_dataset(questions)
