"""The data contract: :func:`as2.data.validate` names file, line and field; counts; save/load round trip."""

from __future__ import annotations

import math

import pytest

from as2.data import DataError, Question, apply_protocol, load, load_questions, save, statistics, validate

SRC = "corpus.tsv"


def question(qid: str = "q1", line: int = 2, n: int = 2, labels: list[int] | None = None) -> Question:
    q = Question(qid=qid, question=f"question {qid} ?", line=line)
    for i, label in enumerate(labels if labels is not None else [1] + [0] * (n - 1)):
        q.add(f"{qid}-{i}", f"candidate {i} .", label, line + i)
    return q


def error(questions: list[Question]) -> str:
    with pytest.raises(DataError) as exc:
        validate(questions, SRC)
    return str(exc.value)


def test_valid_questions_pass():
    validate([question("q1"), question("q2", line=4)], SRC)


def test_empty_question_text():
    q = question()
    q.question = "  "
    assert error([q]) == "corpus.tsv, line 2 (question 'q1'): field 'question' is empty"


def test_empty_candidate_text():
    q = question(n=3)
    q.candidates[2] = ""
    msg = error([q])
    assert msg.startswith("corpus.tsv, line 4 (question 'q1'): field 'candidate'") and "'q1-2'" in msg


@pytest.mark.parametrize("label", [2, -1, 0.5, math.nan, "1"])
def test_label_not_binary(label):
    q = question()
    q.labels[1] = label
    msg = error([q])
    assert msg.startswith("corpus.tsv, line 3 (question 'q1'): field 'label'") and "expected 0 or 1" in msg


def test_duplicate_question_id():
    msg = error([question("q1", line=2), question("q2", line=4), question("q1", line=6)])
    assert msg.startswith("corpus.tsv, line 6 (question 'q1'): field 'qid' duplicates question id 'q1'")
    assert "first seen at line 2" in msg


def test_duplicate_candidate_id():
    q = question(n=3)
    q.cids[2] = q.cids[0]
    assert error([q]).startswith(
        "corpus.tsv, line 4 (question 'q1'): field 'cid' duplicates candidate id 'q1-0'"
    )


def test_zero_candidates():
    assert error([Question(qid="q7", question="why ?", line=9)]) == (
        "corpus.tsv, line 9 (question 'q7'): question has zero candidates"
    )


def test_misaligned_fields():
    q = question()
    q.labels.pop()
    assert "fields 'cids', 'candidates', 'labels' differ in length (2, 2, 1)" in error([q])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_teacher_score_not_finite(bad):
    q = question(n=3)
    q.scores["tanda"] = [0.5, bad, 1.0]
    msg = error([q])
    assert msg.startswith("corpus.tsv, line 3 (question 'q1'): field 'tanda'") and "'q1-1'" in msg


@pytest.mark.parametrize("scores", [[0.1], [0.1, 0.2, 0.3], None])
def test_teacher_scores_wrong_length(scores):
    q = question()
    q.scores["tanda"] = scores
    msg = error([q])
    assert msg.startswith("corpus.tsv, line 2 (question 'q1'): field 'tanda' (teacher scores) has")
    assert "for 2 candidates" in msg


def test_teacher_name_clashing_with_base_column():
    q = question()
    q.scores["labels"] = [0.0, 1.0]
    assert "clashes with a base column" in error([q])


def test_statistics_and_protocols():
    qs = [question("a", labels=[1, 0, 0]), question("b", labels=[0, 0]), question("c", labels=[1])]
    assert statistics(qs) == {
        "questions": 3,
        "pairs": 6,
        "positives": 2,
        "clean_questions": 1,
        "clean_pairs": 3,
        "clean_positives": 1,
    }
    assert [q.qid for q in apply_protocol(qs, "clean")] == ["a"]
    assert len(apply_protocol(qs, "raw")) == 3
    with pytest.raises(ValueError):
        apply_protocol(qs, "filtered")


def test_save_load_round_trip(tmp_path):
    qs = [question("a", labels=[1, 0]), question("b", labels=[0, 1])]
    for q in qs:
        q.scores["tanda"] = [2.5, -1.0]
    stats = save(qs, tmp_path / "split", summary={"source": SRC})
    assert stats["source"] == SRC and stats["questions"] == 2
    ds = load(tmp_path / "split")
    assert ds.column_names == ["qid", "question", "cids", "candidates", "labels", "tanda"]
    back = load_questions(tmp_path / "split")
    assert [(q.qid, q.cids, q.candidates, q.labels, q.scores) for q in back] == [
        (q.qid, q.cids, q.candidates, q.labels, q.scores) for q in qs
    ]


def test_save_refuses_invalid_data_and_writes_nothing(tmp_path):
    q = question()
    q.candidates[0] = ""
    with pytest.raises(DataError, match="corpus.tsv, line 2"):
        save([q], tmp_path / "out" / "split", summary={"source": SRC})
    assert not (tmp_path / "out").exists()


def test_load_rejects_a_folder_that_is_not_a_split(tmp_path):
    with pytest.raises(DataError, match="not a converted AS2 split"):
        load(tmp_path)


def test_sample_negatives_keeps_positives_order_and_aligned_columns(tmp_path):
    from as2.data import sample_negatives

    q = question("q1", labels=[0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    q.scores["t"] = [float(i) for i in range(12)]  # score = original position, to check the alignment
    short = question("q2", labels=[1, 0])
    save([q, short], tmp_path / "d")
    ds = load(tmp_path / "d")
    a = sample_negatives(ds, 3, seed=0)
    row = a[0]
    assert sorted(row["labels"]) == [0, 0, 0, 1, 1]
    kept = [int(s) for s in row["t"]]
    assert kept == sorted(kept) and {1, 7} <= set(kept)  # input order, both positives
    assert row["cids"] == [f"q1-{i}" for i in kept] and row["candidates"] == [
        f"candidate {i} ." for i in kept
    ]
    assert a[1] == ds[1]  # fewer negatives than the cap: unchanged
    assert sample_negatives(ds, 3, seed=0)[0] == row  # seeded
    assert sample_negatives(ds, 3, seed=1)[0]["cids"] != row["cids"]  # another seed, another sample
    with pytest.raises(ValueError, match="max_negatives"):
        sample_negatives(ds, 0)


def test_a_write_removes_what_killed_writers_left_beside_its_folder(tmp_path):
    """Bug caught: every build killed by a signal leaving its partial folder (and, for ASNQ, a multi-GB Arrow
    file) beside the output for good, since the next run writes under its own pid."""
    import os

    from as2.data import atomic_dir

    out = tmp_path / "split"
    dead = 2**22 + 12345  # above the kernel's pid limit: no such process
    (tmp_path / f".split.tmp-{dead}").mkdir()
    (tmp_path / f".split.{dead}.arrow").write_bytes(b"x")
    (tmp_path / f".split.tmp-{os.getppid()}").mkdir()  # a live writer's: kept
    (tmp_path / ".splitter.tmp-1").mkdir()  # another folder's
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["split", f".split.tmp-{os.getppid()}", ".splitter.tmp-1"])
