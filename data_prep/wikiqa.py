"""WikiQA (Yang, Yih and Meek, EMNLP 2015): the original ``WikiQA-{train,dev,test}.tsv`` files.

Columns (header line): QuestionID, Question, DocumentID, DocumentTitle, SentenceID, Sentence, Label.
The files have CRLF line endings and sentences with bare double quotes, so they are split on tabs with no
quote handling (:mod:`as2.tsv`). The rows of a question are contiguous; qid = QuestionID and the
candidate id = SentenceID (unique within a question; the same document can serve several questions).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from as2.data import Question
from as2.grouping import Row, group_rows, parse_label
from as2.tsv import read_tsv

COLUMNS = ("QuestionID", "Question", "SentenceID", "Sentence", "Label")


def rows(path: str | os.PathLike) -> Iterator[Row]:
    for line, (qid, question, sid, sentence, label) in read_tsv(path, COLUMNS, header="required"):
        yield Row(line, question, sentence, parse_label(label, f"{path}, line {line}", "Label"), qid, sid)


def read(path: str | os.PathLike, limit_questions: int | None = None) -> list[Question]:
    return group_rows(rows(path), str(path), limit_questions)
