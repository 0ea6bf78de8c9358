"""as2.evaluate / as2.metrics: ranx metrics under an explicit protocol and tie rule, checked by hand."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from as2 import evaluate
from as2.config import ConfigError, cli
from as2.data import DataError, Question, save
from as2.metrics import evaluate_runs, rank_question, write_report
from as2.runs import write_run

# q1 and q2 are clean; q3 has only incorrect candidates, q4 only correct ones (both dropped under clean).
LABELS = {
    "q1": {"a": 1, "b": 0, "c": 0},
    "q2": {"d": 0, "e": 1, "f": 0, "g": 1},
    "q3": {"h": 0, "i": 0},
    "q4": {"j": 1, "k": 1},
}
# Run "r" ties a correct and an incorrect candidate at the top of q1 and q2.
R = {
    "q1": {"a": 0.9, "b": 0.9, "c": 0.5},
    "q2": {"d": 0.5, "e": 0.5, "f": 0.1, "g": 0.05},
    "q3": {"h": 0.3, "i": 0.1},
    "q4": {"j": 0.3, "k": 0.1},
}
# Run "s" ranks every correct candidate first, without ties.
S = {
    "q1": {"a": 3.0, "b": 2.0, "c": 1.0},
    "q2": {"e": 4.0, "g": 3.0, "d": 2.0, "f": 1.0},
    "q3": {"h": 2.0, "i": 1.0},
    "q4": {"j": 2.0, "k": 1.0},
}
LOG2_3 = 1.5849625007211562  # log2(3): DCG discount of rank 2
IDCG3_Q2 = 1 + 1 / LOG2_3  # q2 has two correct candidates: ideal DCG@3 = 1 + 1/log2(3) = 1.63093


def make_questions(labels: dict[str, dict[str, int]] = LABELS) -> list[Question]:
    questions = []
    for qid, cands in labels.items():
        q = Question(qid, f"question {qid}?")
        for cid, label in cands.items():
            q.add(cid, f"candidate {cid}.", label)
        questions.append(q)
    return questions


def write_trec(path, name: str, rows: list[tuple[str, str, float]]):
    """A run file in exactly the given line order (write_run would sort it)."""
    path.write_text("".join(f"{q} Q0 {c} {i + 1} {s} {name}\n" for i, (q, c, s) in enumerate(rows)))
    return str(path)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "test"
    save(make_questions(), path, {"source": "hand-made"})
    return path


def test_rank_question_is_strict_and_ignores_input_order():
    q = make_questions()[1]  # d(0) e(1) f(0) g(1)
    scores = {"e": 0.5, "d": 0.5, "f": 0.1}  # g unlisted
    assert rank_question(q, scores, "pessimistic") == ["d", "e", "f", "g"]
    assert rank_question(q, scores, "optimistic") == ["e", "d", "f", "g"]
    assert rank_question(q, dict(reversed(scores.items())), "pessimistic") == ["d", "e", "f", "g"]


def test_clean_pessimistic_by_hand():
    res = evaluate_runs(make_questions(), {"r": R})
    assert (
        res["questions"] == 2
    )  # q3 (no correct) and q4 (no incorrect) are dropped; they may stay in the run
    # pessimistic: q1 ranks b, a, c -> correct at rank 2: P@1 0, AP 1/2, RR 1/2, nDCG@3 1/log2(3) = 0.63093
    # q2 ranks d, e, f, g -> correct at ranks 2, 4: P@1 0, AP (1/2 + 2/4)/2 = 1/2, RR 1/2,
    #   nDCG@3 = (1/log2(3)) / (1 + 1/log2(3)) = 0.38685
    m = res["runs"]["r"]
    assert m["precision@1"] == pytest.approx(0.0)
    assert m["map"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx(0.5)
    assert m["ndcg@3"] == pytest.approx((1 / LOG2_3 + (1 / LOG2_3) / IDCG3_Q2) / 2)  # 0.50889
    assert m["hit_rate@5"] == pytest.approx(1.0)
    assert res["per_question"]["r"]["q1"]["ndcg@3"] == pytest.approx(0.63093, abs=1e-5)
    assert res["per_question"]["r"]["q2"]["ndcg@3"] == pytest.approx(0.38685, abs=1e-5)
    assert list(res["per_question"]["r"]) == ["q1", "q2"]


def test_clean_optimistic_by_hand():
    m = evaluate_runs(make_questions(), {"r": R}, ties="optimistic")["runs"]["r"]
    # optimistic: q1 ranks a, b, c -> P@1 1, AP 1, RR 1, nDCG@3 1
    # q2 ranks e, d, f, g -> correct at ranks 1, 4: P@1 1, AP (1/1 + 2/4)/2 = 3/4, RR 1,
    #   nDCG@3 = 1 / (1 + 1/log2(3)) = 0.61315
    assert m["precision@1"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx((1 + 0.75) / 2)  # 0.875
    assert m["mrr"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((1 + 1 / IDCG3_Q2) / 2)  # 0.80657


def test_raw_counts_questions_without_positive_as_zero():
    res = evaluate_runs(make_questions(), {"r": R}, protocol="raw")
    assert res["questions"] == 4
    # q3 (no correct candidate) scores 0 on every metric, q4 (only correct ones) scores 1 on every metric:
    # P@1 = (0 + 0 + 0 + 1)/4, MAP = (1/2 + 1/2 + 0 + 1)/4, MRR likewise, nDCG@3 = (0.63093 + 0.38685 + 0 + 1)/4
    m = res["runs"]["r"]
    assert m["precision@1"] == pytest.approx(0.25)
    assert m["map"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx(0.5)
    assert m["ndcg@3"] == pytest.approx((1 / LOG2_3 + (1 / LOG2_3) / IDCG3_Q2 + 0 + 1) / 4)  # 0.50445
    assert res["per_question"]["r"]["q3"] == {k: 0.0 for k in res["metrics"]}
    # optimistic under raw: P@1 (1 + 1 + 0 + 1)/4 = 0.75, MAP (1 + 3/4 + 0 + 1)/4 = 0.6875
    m = evaluate_runs(make_questions(), {"r": R}, protocol="raw", ties="optimistic")["runs"]["r"]
    assert (m["precision@1"], m["map"]) == (pytest.approx(0.75), pytest.approx(0.6875))


@pytest.mark.parametrize("reverse", [False, True])
def test_constant_scorer_is_worst_when_pessimistic(tmp_path, reverse):
    # WikiQA-like: the correct candidate is listed first in every question
    questions = make_questions({f"q{i}": {f"q{i}-0": 1, f"q{i}-1": 0, f"q{i}-2": 0} for i in range(3)})
    path = tmp_path / "data"
    save(questions, path)
    rows = [(q.qid, cid, 0.0) for q in questions for cid in q.cids]
    run = write_trec(tmp_path / "const.trec", "const", rows[::-1] if reverse else rows)
    for ties, p1, mrr in (("pessimistic", 0.0, 1 / 3), ("optimistic", 1.0, 1.0)):
        out = tmp_path / ties
        report = evaluate.main(["--data", str(path), "--run", run, "--out", str(out), "--ties", ties])
        # pessimistic: the correct candidate of each question is ranked 3rd of 3 -> P@1 0, RR 1/3 (the worst)
        # optimistic: it is ranked 1st -> P@1 1, RR 1
        assert report["runs"]["const"]["precision@1"] == pytest.approx(p1)
        assert report["runs"]["const"]["mrr"] == pytest.approx(mrr)


def test_unlisted_candidates_rank_last_pessimistically():
    cascade = {"q1": {"b": 0.9}, "q2": {"e": 1.0}}
    for ties in ("pessimistic", "optimistic"):  # the tie rule does not apply to unlisted candidates
        res = evaluate_runs(make_questions(), {"c": cascade}, ties=ties)
        # q1: b, then unlisted c(0) before a(1) -> correct at rank 3: P@1 0, AP 1/3, RR 1/3, nDCG@3 1/log2(4)
        # q2: e, then unlisted d(0), f(0), g(1) -> correct at 1, 4: P@1 1, AP (1 + 2/4)/2 = 3/4, RR 1
        per_q = res["per_question"]["c"]
        assert per_q["q1"]["precision@1"] == 0.0
        assert per_q["q1"]["mrr"] == pytest.approx(1 / 3)
        assert per_q["q1"]["ndcg@3"] == pytest.approx(0.5)
        assert per_q["q2"]["map"] == pytest.approx(0.75)
        assert res["runs"]["c"]["map"] == pytest.approx((1 / 3 + 0.75) / 2)
        assert res["unranked_candidates"]["c"] == 2 + 3


def test_run_ids_absent_from_data_are_errors():
    with pytest.raises(
        DataError, match=r"r\.trec \(run 'r'\): 2 question id\(s\) not in the data: 'zz', 'zy'"
    ):
        evaluate_runs(
            make_questions(), {"r": {**R, "zz": {"a": 1.0}, "zy": {"a": 1.0}}}, sources={"r": "r.trec"}
        )
    with pytest.raises(DataError, match=r"1 candidate id\(s\) not in the data: 'x' of 'q1'"):
        evaluate_runs(make_questions(), {"r": {**R, "q1": {**R["q1"], "x": 0.0}}})
    # a question the protocol leaves out still has to match the data
    with pytest.raises(DataError, match="'x' of 'q3'"):
        evaluate_runs(make_questions(), {"r": {**R, "q3": {"x": 0.0}}})


def test_missing_question_fails_or_scores_zero():
    run = {"q1": {"a": 1.0, "b": 0.0, "c": 0.0}}  # q2 missing
    with pytest.raises(
        DataError, match=r"1 of the 2 questions evaluated under protocol 'clean' have no ranking: 'q2'"
    ):
        evaluate_runs(make_questions(), {"p": run})
    with pytest.raises(DataError, match="ranks none of the 2 questions"):
        evaluate_runs(make_questions(), {"p": {"q3": R["q3"]}}, allow_missing=True)
    res = evaluate_runs(make_questions(), {"p": run}, allow_missing=True)
    # q1: a first -> P@1 1, AP 1; q2 missing -> 0 on every metric and still counted: means (1 + 0)/2
    assert res["questions"] == 2
    assert res["missing_questions"] == {"p": 1}
    assert res["runs"]["p"]["precision@1"] == pytest.approx(0.5)
    assert res["runs"]["p"]["map"] == pytest.approx(0.5)
    assert res["per_question"]["p"]["q2"] == {k: 0.0 for k in res["metrics"]}


def test_main_writes_report_md_and_csv(tmp_path, split, capsys, unpad):
    write_run(tmp_path / "r.trec", R, "r")  # ties within the file come out in some order; it must not matter
    write_run(tmp_path / "s.trec", S, "s")
    out = tmp_path / "eval"
    argv = [
        "--data",
        str(split),
        "--run",
        str(tmp_path / "r.trec"),
        str(tmp_path / "s.trec"),
        "--out",
        str(out),
    ]
    report = evaluate.main(argv)
    assert report == json.loads((out / "report.json").read_text())
    assert report["data"] == str(split)
    assert (report["protocol"], report["ties"], report["stat_test"], report["questions"]) == (
        "clean",
        "pessimistic",
        "fisher",
        2,
    )
    assert report["metrics"] == ["precision@1", "map", "mrr", "ndcg@3", "ndcg@10", "hit_rate@5"]
    assert report["runs"]["r"]["map"] == pytest.approx(0.5)
    assert report["runs"]["s"] == {m: pytest.approx(1.0) for m in report["metrics"]}
    p = report["significance"]["s"]["comparisons"]["r"]["map"]
    assert 0 <= p <= 1
    assert report["significance"]["s"]["win_tie_loss"]["r"]["precision@1"] == {"W": 2, "T": 0, "L": 0}

    md = (out / "report.md").read_text()
    assert "| a | r |" in unpad(md) and "| b | s |" in unpad(md) and "P@1" in md
    assert "Protocol: clean" in md and "ties: pessimistic" in md and "questions: 2" in md
    assert "Fisher's randomization test" in md

    rows = list(csv.DictReader((out / "per_question.csv").open()))
    assert [(r["run"], r["qid"]) for r in rows] == [("r", "q1"), ("r", "q2"), ("s", "q1"), ("s", "q2")]
    assert float(rows[1]["map"]) == pytest.approx(0.5)  # r on q2, by hand above
    assert float(rows[2]["precision@1"]) == 1.0

    printed = capsys.readouterr().out.strip().splitlines()
    assert "| a | r |" in unpad(printed[2])
    summary = json.loads(printed[-1])
    assert summary["questions"] == 2 and summary["runs"]["s"]["mrr"] == pytest.approx(1.0)


def test_main_raw_protocol_is_stated(tmp_path, split):
    write_run(tmp_path / "r.trec", R, "r")
    out = tmp_path / "eval"
    report = evaluate.main(
        ["--data", str(split), "--run", str(tmp_path / "r.trec"), "--out", str(out), "--protocol", "raw"]
    )
    assert report["questions"] == 4 and report["runs"]["r"]["precision@1"] == pytest.approx(0.25)
    assert "Protocol: raw" in (out / "report.md").read_text()
    assert len((out / "per_question.csv").read_text().splitlines()) == 1 + 4


def test_duplicate_run_name_and_bad_config(tmp_path, split):
    write_run(tmp_path / "r1.trec", R, "r")
    write_run(tmp_path / "r2.trec", S, "r")
    base = ["--data", str(split), "--out", str(tmp_path / "eval")]
    with pytest.raises(DataError, match="run name 'r' is already used by"):
        evaluate.main([*base, "--run", str(tmp_path / "r1.trec"), str(tmp_path / "r2.trec")])
    with pytest.raises(ConfigError, match="ties must be one of"):
        evaluate.main([*base, "--run", str(tmp_path / "r1.trec"), "--ties", "random"])
    with pytest.raises(ConfigError, match="stat_test must be one of"):
        evaluate.main([*base, "--run", str(tmp_path / "r1.trec"), "--stat_test", "tukey"])
    with pytest.raises(ConfigError, match="unknown metric 'p@1'"):
        evaluate.main([*base, "--run", str(tmp_path / "r1.trec"), "--metrics", "p@1"])


def test_cli_user_errors_exit_2(tmp_path, split, monkeypatch, capsys):
    write_run(tmp_path / "r.trec", {"q1": R["q1"]}, "r")  # q2 missing
    argv = [
        "as2.evaluate",
        "--data",
        str(split),
        "--run",
        str(tmp_path / "r.trec"),
        "--out",
        str(tmp_path / "e"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        cli(evaluate.main)
    assert exc.value.code == 2
    assert "have no ranking: 'q2'" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*argv, "--allow_missing"])
    cli(evaluate.main)
    assert json.loads((tmp_path / "e" / "report.json").read_text())["missing_questions"] == {"r": 1}


def test_write_report_in_process(tmp_path):
    # other stages call the library directly; the split they score need not be on disk
    res = evaluate_runs(make_questions(), {"s": S}, metrics=["precision@1"])
    report = write_report(res, tmp_path / "out")
    assert report["data"] is None and report["runs"] == {"s": {"precision@1": 1.0}}
    assert (tmp_path / "out" / "per_question.csv").read_text().splitlines()[0] == "run,qid,precision@1"


def test_the_ranx_internals_as2_metrics_relies_on_are_there(unpad):
    """Bug caught: a ranx release that moves what as2.ranx_report uses beyond ranx's documented API (the pin
    in pyproject.toml keeps 0.3.x; this says loudly which piece moved when the pin is raised)."""
    from ranx import Qrels, Run

    from as2 import ranx_report

    assert ranx_report.is_metric("ndcg@10") and ranx_report.is_metric("map")
    assert not ranx_report.is_metric("mapp") and not ranx_report.is_metric("ndcg@x")
    qrels = Qrels({f"q{i}": {"c1": 1} for i in range(8)})
    good = Run({f"q{i}": {"c1": 2.0, "c2": 1.0} for i in range(8)}, name="good")
    bad = Run({f"q{i}": {"c1": 1.0, "c2": 2.0} for i in range(8)}, name="bad")
    # one metric with a cutoff (ranx 0.3.21 raises KeyError when asked for it alone): only it is reported
    report = ranx_report.compare_runs(qrels, [good, bad], ["ndcg@3"], "fisher", 0.05)
    assert report.results == {"good": {"ndcg@3": 1.0}, "bad": {"ndcg@3": pytest.approx(0.6309, abs=1e-4)}}
    assert ranx_report.per_question(qrels, bad, ["precision@1"])["q0"] == {"precision@1": 0.0}
    assert "Fisher" in ranx_report.stat_test_label(report, "fisher")
    rows = unpad(ranx_report.markdown_table(report)).splitlines()
    assert rows[0] == "| # | Model | NDCG@3 |" and len(rows) == 4
    assert rows[2].startswith("| a | good | 1.0000ᵇ |")  # ranx's superscript: a significant gain over b
