"""ASNQ (Garg et al., AAAI 2020): ``train.tsv`` / ``dev.tsv`` with question, sentence, label, no header.

Labels 1-4 (whether the sentence lies in the long-answer paragraph and whether it holds the short answer:
1 neither, 2 only the short answer, 3 only the paragraph, 4 both); only 4 is a correct answer (label 1 here,
the rest 0). No ids: consecutive rows with the same question text form one question. The training file has
about 20M lines, so it is streamed line by line and written as it is read (``as2.data.save`` takes the
stream: memory holds one question and one Arrow batch).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from as2.data import Question
from as2.grouping import Row, iter_questions, parse_label
from as2.tsv import read_tsv

COLUMNS = ("question", "sentence", "label")
LABELS = {1: 0, 2: 0, 3: 0, 4: 1}


def rows(path: str | os.PathLike) -> Iterator[Row]:
    for line, (question, sentence, label) in read_tsv(path, COLUMNS, header="none"):
        yield Row(line, question, sentence, parse_label(label, f"{path}, line {line}", "label", LABELS))


def read(path: str | os.PathLike, limit_questions: int | None = None) -> Iterator[Question]:
    """The questions of ``path`` as a stream: ``as2.data.save`` writes them in bounded memory."""
    return iter_questions(rows(path), str(path), limit_questions)
