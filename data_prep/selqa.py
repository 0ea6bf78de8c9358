"""SelQA (Jurczyk, Zhai and Choi, 2016), answer sentence selection part, in either of its releases.

- TSV (``SelQA-ass-*.tsv``): question, sentence, label; no header in the published files (a first line
  ``question<TAB>sentence<TAB>label`` is accepted and skipped); no ids: consecutive rows with the same
  question text form one question.
- JSON (``SelQA-ass-*.json``): a list of objects with ``"question"``, ``"sentences"`` (the candidates, in
  order) and ``"candidates"`` (indices of the correct sentences); other keys (``"section"``,
  ``"article"``, ``"is_paraphrase"``, ``"type"``) are ignored. Errors name the line an object starts on
  and its 1-based position in the list ("line 1, item 3": the published files are one line).

The format is the file extension (``.json`` / ``.tsv``), or else sniffed: a file whose first non-blank
character is ``[`` is JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from as2.data import DataError, Question
from as2.grouping import Row, group_rows, parse_label
from as2.tsv import read_tsv

COLUMNS = ("question", "sentence", "label")
FORMATS = ("tsv", "json")


def detect_format(path: str | os.PathLike) -> str:
    path = Path(path)
    if path.suffix.lower() in (".json", ".tsv"):
        return path.suffix.lower()[1:]
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if head.startswith(b"[") else "tsv"


def tsv_rows(path: str | os.PathLike) -> Iterator[Row]:
    for line, (question, sentence, label) in read_tsv(path, COLUMNS, header="optional"):
        yield Row(line, question, sentence, parse_label(label, f"{path}, line {line}", "label"))


def _json_items(path: Path) -> Iterator[tuple[int, int, Any]]:
    """``(1-based item number, line it starts on, item)`` for each element of the top-level JSON list."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    decoder = json.JSONDecoder()
    line, counted = 1, 0  # line of position `counted`

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def fail(pos: int, what: str) -> DataError:
        return DataError(f"{path}, line {text.count(chr(10), 0, pos) + 1}: {what}")

    pos = skip(0)
    if not text.startswith("[", pos):
        raise fail(pos, "expected a JSON list of questions")
    pos, n = skip(pos + 1), 0
    while not text.startswith("]", pos):
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise fail(e.pos, f"not valid JSON ({e.msg})") from None
        line, counted, n = line + text.count("\n", counted, pos), pos, n + 1
        yield n, line, item
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif not text.startswith("]", pos):
            raise fail(pos, "expected ',' or ']' after a question")


def json_rows(path: str | os.PathLike) -> Iterator[Row]:
    path = Path(path)
    for n, line, item in _json_items(path):
        where = f"{path}, line {line}, item {n}"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected an object, got {type(item).__name__}")
        for key, kind in (("question", str), ("sentences", list), ("candidates", list)):
            if key not in item:
                raise DataError(f"{where}: missing field {key!r}")
            if not isinstance(item[key], kind):
                raise DataError(
                    f"{where}: field {key!r} is a {type(item[key]).__name__}, expected {kind.__name__}"
                )
        sentences = item["sentences"]
        correct = set()
        for index in item["candidates"]:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(sentences):
                raise DataError(
                    f"{where}: field 'candidates' holds {index!r}, not an index into its "
                    f"{len(sentences)} 'sentences'"
                )
            correct.add(index)
        if not sentences:
            raise DataError(f"{where} (question '{n - 1}'): field 'sentences' is empty (zero candidates)")
        # Each object is one question even if the next has the same text: give it its own id.
        for i, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise DataError(
                    f"{where}: field 'sentences' item {i} is a {type(sentence).__name__}, expected str"
                )
            yield Row(line, item["question"], sentence, int(i in correct), qid=str(n - 1))


def read(
    path: str | os.PathLike, format: str | None = None, limit_questions: int | None = None
) -> list[Question]:
    """Read either release; ``format`` (``"tsv"`` / ``"json"``) overrides the detection."""
    format = format or detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"SelQA format must be one of {FORMATS}, got {format!r}")
    rows = json_rows(path) if format == "json" else tsv_rows(path)
    return group_rows(rows, str(path), limit_questions)
