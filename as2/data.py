"""The AS2 data contract: one question per row, stored as an Arrow dataset (``datasets.save_to_disk``).

Schema of a converted split (every stage reads and writes this, nothing else):

===============  ===================  =====================================================
column           type                 meaning
===============  ===================  =====================================================
``qid``          ``string``           question id, unique within the split
``question``     ``string``           question text, non-empty
``cids``         ``list[string]``     candidate ids, unique within the question
``candidates``   ``list[string]``     candidate sentences, non-empty, aligned with ``cids``
``labels``       ``list[int8]``       1 = correct answer, 0 = not, aligned with ``cids``
``<teacher>``    ``list[float32]``    optional: one column per teacher, named after it,
                                      holding its logit for each candidate
===============  ===================  =====================================================

Every column that is not one of the five above is a teacher-score column, and its name is the teacher's
name everywhere else (config key, student head, run name, report row).

Protocols select the questions that are scored:

- ``raw``: every question;
- ``clean``: only questions with at least one positive and one negative candidate (the standard AS2 test
  protocol: WikiQA's "filtered" references, TREC-QA's clean set).

:func:`validate` checks a list of :class:`Question` (as a loader builds them, with the source file and line
of each candidate) and raises :class:`DataError` naming the file, the line and the field at fault.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BASE_COLUMNS = ("qid", "question", "cids", "candidates", "labels")
PROTOCOLS = ("clean", "raw")
SUMMARY_FILE = "as2.json"  # written beside the Arrow files: source, counts


class DataError(ValueError):
    """Bad input data; the message names the file, the line (or row) and the field."""


@dataclass
class Question:
    """One question with its candidates, as loaders build it and the dataset stores it.

    ``lines`` (1-based source line of each candidate) and ``line`` (of the question) exist only for error
    messages; they are not stored.
    """

    qid: str
    question: str
    cids: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    line: int | None = None
    lines: list[int | None] = field(default_factory=list)

    def add(self, cid: str, text: str, label: int, line: int | None = None) -> None:
        self.cids.append(cid)
        self.candidates.append(text)
        self.labels.append(label)
        self.lines.append(line)


def _where(source: str, line: int | None, qid: str | None = None) -> str:
    where = f"{source}, line {line}" if line is not None else source
    return f"{where} (question {qid!r})" if qid is not None else where


def validate(questions: Iterable[Question], source: str = "<data>") -> None:
    """Check the contract; raise :class:`DataError` at the first violation, naming file, line and field."""
    for _ in checked(questions, source):
        pass


def checked(questions: Iterable[Question], source: str = "<data>") -> Iterator[Question]:
    """Each question once it passed the contract's checks (:func:`validate`, one question at a time)."""
    seen: dict[str, int | None] = {}  # question ids: the only state kept across questions
    for q in questions:
        qwhere = _where(source, q.line, q.qid)
        if not str(q.qid).strip():
            raise DataError(f"{_where(source, q.line)}: field 'qid' is empty")
        if q.qid in seen:
            first = f" (first seen at line {seen[q.qid]})" if seen[q.qid] is not None else ""
            raise DataError(f"{qwhere}: field 'qid' duplicates question id {q.qid!r}{first}")
        seen[q.qid] = q.line
        if not q.question or not q.question.strip():
            raise DataError(f"{qwhere}: field 'question' is empty")
        n = len(q.cids)
        if n == 0:
            raise DataError(f"{qwhere}: question has zero candidates")
        if len(q.candidates) != n or len(q.labels) != n:
            raise DataError(
                f"{qwhere}: fields 'cids', 'candidates', 'labels' differ in length "
                f"({n}, {len(q.candidates)}, {len(q.labels)})"
            )
        lines = q.lines if len(q.lines) == n else [None] * n
        cids_seen: set[str] = set()
        for cid, text, label, line in zip(q.cids, q.candidates, q.labels, lines, strict=True):
            where = _where(source, line if line is not None else q.line, q.qid)
            if not str(cid).strip():
                raise DataError(f"{where}: field 'cid' is empty")
            if cid in cids_seen:
                raise DataError(f"{where}: field 'cid' duplicates candidate id {cid!r} within the question")
            cids_seen.add(cid)
            if not text or not text.strip():
                raise DataError(f"{where}: field 'candidate' (candidate {cid!r}) is empty")
            if label not in (0, 1) or isinstance(label, float) and not float(label).is_integer():
                raise DataError(f"{where}: field 'label' (candidate {cid!r}) is {label!r}, expected 0 or 1")
        for name, scores in q.scores.items():
            if name in BASE_COLUMNS:
                raise DataError(f"{qwhere}: teacher name {name!r} clashes with a base column")
            if scores is None or len(scores) != n:
                got = "no scores" if scores is None else f"{len(scores)} scores"
                raise DataError(f"{qwhere}: field {name!r} (teacher scores) has {got} for {n} candidates")
            for cid, s, line in zip(q.cids, scores, lines, strict=True):
                if s is None or not math.isfinite(float(s)):
                    where = _where(source, line if line is not None else q.line, q.qid)
                    raise DataError(f"{where}: field {name!r} (teacher score of candidate {cid!r}) is {s!r}")
        yield q


def is_clean(labels: Sequence[int]) -> bool:
    """A question counts under the ``clean`` protocol if it has a positive and a negative candidate."""
    return any(label == 1 for label in labels) and any(label == 0 for label in labels)


def apply_protocol(questions: Iterable[Question], protocol: str) -> list[Question]:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    questions = list(questions)
    return questions if protocol == "raw" else [q for q in questions if is_clean(q.labels)]


def sample_negatives(ds, max_negatives: int, seed: int = 0):
    """Keep every positive and at most ``max_negatives`` negatives of each question (a seeded choice).

    A training-cost knob for large teachers: the kept candidates stay in their input order, and every list
    column (ids, texts, labels, teacher scores) is cut alike. The choice depends on ``seed`` and the qid
    only, so it is the same on every rank and in every run.
    """
    import hashlib

    import numpy as np

    if max_negatives < 1:
        raise ValueError(f"max_negatives must be >= 1, got {max_negatives}")
    columns = ["cids", "candidates", "labels", *teacher_names(ds.column_names)]

    def cut(row):
        negatives = [i for i, y in enumerate(row["labels"]) if y == 0]
        if len(negatives) <= max_negatives:
            return row
        key = int.from_bytes(hashlib.sha256(f"{seed}/{row['qid']}".encode()).digest()[:8], "little")
        drop = set(np.random.default_rng(key).permutation(negatives)[max_negatives:].tolist())
        keep = [i for i in range(len(row["labels"])) if i not in drop]
        return {c: [row[c][i] for i in keep] for c in columns}

    return ds.map(cut, desc=f"sampling <= {max_negatives} negatives per question")


STATISTICS = ("questions", "pairs", "positives", "clean_questions", "clean_pairs", "clean_positives")


def statistics(questions: Iterable[Question]) -> dict[str, int]:
    """The counts published for AS2 corpora (questions, pairs, positives, and the same for ``clean``)."""
    counts = dict.fromkeys(STATISTICS, 0)
    for q in questions:
        _count(counts, q)
    return counts


def _count(counts: dict[str, int], q: Question) -> None:
    for prefix in ("", "clean_") if is_clean(q.labels) else ("",):
        counts[f"{prefix}questions"] += 1
        counts[f"{prefix}pairs"] += len(q.cids)
        counts[f"{prefix}positives"] += sum(q.labels)


def teacher_names(column_names: Iterable[str]) -> list[str]:
    """The teacher-score columns of a dataset: every column outside the base contract."""
    return [c for c in column_names if c not in BASE_COLUMNS]


def require_teachers(column_names: Iterable[str], needed: Iterable[str], where: str, what: str) -> None:
    """Raise ``DataError`` naming the split, ``what`` needs them, and the teacher columns it has instead."""
    have = teacher_names(column_names)
    missing = [c for c in needed if c not in have]
    if missing:
        raise DataError(f"{where}: {what} needs teacher column(s) {missing}; the split has {have}")


def features(teachers: Sequence[str] = ()):
    """The contract's ``datasets.Features`` (teacher columns as float32 lists)."""
    import datasets

    features = {
        "qid": datasets.Value("string"),
        "question": datasets.Value("string"),
        "cids": datasets.Sequence(datasets.Value("string")),
        "candidates": datasets.Sequence(datasets.Value("string")),
        "labels": datasets.Sequence(datasets.Value("int8")),
    }
    features.update({name: datasets.Sequence(datasets.Value("float32")) for name in teachers})
    return datasets.Features(features)


def to_dataset(questions: Sequence[Question]):
    """Build a ``datasets.Dataset`` with the contract's schema (teacher columns as float32 lists)."""
    import datasets

    names = sorted({name for q in questions for name in q.scores})
    return datasets.Dataset.from_list([to_row(q, names) for q in questions], features=features(names))


def to_row(q: Question, teachers: Sequence[str]) -> dict[str, Any]:
    """One question as a dataset row; a teacher it has no scores of is a null cell."""
    return {"qid": q.qid, "question": q.question, "cids": q.cids, "candidates": q.candidates, "labels": q.labels,
            **{n: q.scores.get(n) for n in teachers}}  # fmt: skip


def from_dataset(ds) -> list[Question]:
    """The inverse of :func:`to_dataset`."""
    names = teacher_names(ds.column_names)
    out = []
    for row in ds:
        out.append(
            Question(
                qid=row["qid"],
                question=row["question"],
                cids=list(row["cids"]),
                candidates=list(row["candidates"]),
                labels=[int(x) for x in row["labels"]],
                scores={n: list(row[n]) for n in names if row[n] is not None},
            )
        )
    return out


def save(questions: Iterable[Question], out_dir: str | os.PathLike, summary: dict | None = None) -> dict:
    """Validate and write the dataset and ``as2.json`` to ``out_dir`` atomically, one question at a time.

    ``questions`` may be a stream (a reader's generator): each question is checked, counted and appended to
    an Arrow file in batches, so memory holds one batch whatever the corpus size (ASNQ's 20M lines). Teacher
    columns are those of every question of a list, or of the first question of a stream. Everything is written to a
    temporary sibling folder renamed into place last: an interrupted run leaves no folder that looks
    complete, and an existing ``out_dir`` is replaced only once the new one is fully written.
    """
    import datasets
    from datasets.arrow_writer import ArrowWriter

    source = str(summary.get("source", "<data>")) if summary else "<data>"
    stream = checked(questions, source)
    first = next(stream, None)
    if first is None:
        raise DataError(f"{source}: no questions to write")
    # teacher columns: every name of a list of questions; of a stream, the first question's (later ones may
    # lack a teacher, a null cell, but not add one)
    names = sorted(
        {n for q in questions for n in q.scores} if isinstance(questions, Sequence) else first.scores
    )
    counts = dict.fromkeys(STATISTICS, 0)
    out_dir = Path(out_dir)
    arrow = out_dir.parent / f".{out_dir.name}.{os.getpid()}.arrow"  # beside, not inside, the folder it fills
    with atomic_dir(out_dir) as tmp, contextlib.ExitStack() as cleanup:
        cleanup.callback(arrow.unlink, missing_ok=True)
        with ArrowWriter(features=features(names), path=str(arrow), writer_batch_size=1000) as writer:
            for q in itertools.chain([first], stream):
                if not set(q.scores) <= set(names):
                    raise DataError(f"{_where(source, q.line, q.qid)}: teacher columns {sorted(q.scores)}, "
                                    f"beyond the first question's {names}")  # fmt: skip
                _count(counts, q)
                writer.write(to_row(q, names))
            writer.finalize()
        datasets.Dataset.from_file(str(arrow)).save_to_disk(str(tmp))  # read back through a memory map
        stats = {**(summary or {}), **counts}
        (tmp / SUMMARY_FILE).write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def replace_dir(src: Path, dst: Path) -> None:
    """Move a completed folder into place; the old ``dst`` (if any) is removed only after the move."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        dst.rename(old)
    src.rename(dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(out: Path) -> None:
    """Leftovers of writes to ``out`` by processes killed by a signal (their ``finally`` never ran):
    ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` folders and ``.<name>.<pid>.arrow`` files of dead pids."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:(?:tmp|old)-(\d+)|(\d+)\.arrow)")
    for path in out.parent.glob(f".{out.name}.*"):
        match = pattern.fullmatch(path.name)
        if match and not _alive(int(match[1] or match[2])):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike) -> Iterator[Path]:
    """Write a folder aside (``.<name>.tmp-<pid>`` beside it) and move it into place when the block ends
    without error. On an error ``out`` is left as it was and the partial folder removed; a process killed by
    a signal leaves its partial folder beside ``out`` (never ``out`` half written), removed by the next write."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(data_dir: str | os.PathLike):
    """Load a converted split as a ``datasets.Dataset``; a clear error if the folder is not one."""
    import datasets

    data_dir = Path(data_dir)
    if not (data_dir / SUMMARY_FILE).is_file():
        raise DataError(f"{data_dir}: not a converted AS2 split (no {SUMMARY_FILE}); run data_prep.convert")
    ds = datasets.load_from_disk(str(data_dir))
    missing = [c for c in BASE_COLUMNS if c not in ds.column_names]
    if missing:
        raise DataError(f"{data_dir}: missing column(s) {missing}; expected {list(BASE_COLUMNS)}")
    return ds


def load_questions(data_dir: str | os.PathLike) -> list[Question]:
    return from_dataset(load(data_dir))
