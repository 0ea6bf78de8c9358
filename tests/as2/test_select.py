"""as2.select: greedy forward selection of the ensemble's members on a development split."""

from __future__ import annotations

import json

import pytest

from as2 import select
from as2.data import Question, save
from as2.runs import write_run


def _dev(tmp_path):
    # four clean questions, candidate c0 correct in q0, q1 and c2 correct in q2, q3
    questions = []
    for i in range(4):
        q = Question(f"q{i}", f"question {i}?")
        for j in range(3):
            q.add(f"c{j}", f"sentence {i} {j}", int(j == (0 if i < 2 else 2)))
        questions.append(q)
    save(questions, tmp_path / "dev")
    return tmp_path / "dev"


def _runs(tmp_path):
    # good: the correct candidate first everywhere (MAP 1); half: right on q0, q1 only; bad: always last
    right = {"q0": "c0", "q1": "c0", "q2": "c2", "q3": "c2"}
    runs = {
        "half": {q: {"c0": 3.0, "c1": 2.0, "c2": 1.0} for q in right},
        "good": {q: {c: (5.0 if c == right[q] else float(k)) for k, c in enumerate(["c0", "c1", "c2"])} for q in right},
        "bad": {q: {c: (-5.0 if c == right[q] else float(k)) for k, c in enumerate(["c0", "c1", "c2"])} for q in right},
    }  # fmt: skip
    paths = []
    for name, run in runs.items():
        write_run(tmp_path / f"{name}.trec", run, name)
        paths.append(str(tmp_path / f"{name}.trec"))
    return paths


def test_greedy_starts_from_the_best_and_stops_without_gain(tmp_path, capsys):
    dev, runs = _dev(tmp_path), _runs(tmp_path)
    out = tmp_path / "sel.json"
    result = select.main(["--data", str(dev), "--out", str(out), "--run", *runs, "--min_members", "1"])
    assert result["members"] == ["good"]  # nothing fused with a perfect run beats MAP 1
    assert result["map"] == pytest.approx(1.0)
    assert result["steps"][0]["good"] == pytest.approx(1.0)
    assert result["steps"][0]["half"] == pytest.approx(
        (1 + 1 + 1 / 3 + 1 / 3) / 4
    )  # AP 1 on q0, q1; 1/3 on q2, q3
    assert len(result["steps"]) == 2  # the second round found no improvement
    assert json.loads(out.read_text())["members"] == ["good"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == "good"


def test_min_members_forces_the_best_partner(tmp_path):
    dev, runs = _dev(tmp_path), _runs(tmp_path)
    result = select.main(["--data", str(dev), "--out", str(tmp_path / "s.json"), "--run", *runs])
    assert result["members"][0] == "good" and len(result["members"]) == 2
    second = result["steps"][1]
    assert result["members"][1] == max(second, key=second.get)
    assert second["half"] > second["bad"]  # fusing with the inverted run hurts most


def test_bad_options(tmp_path):
    runs = _runs(tmp_path)
    with pytest.raises(ValueError, match="at least two"):
        select.main(["--data", "x", "--out", "y", "--run", runs[0]])
    with pytest.raises(ValueError, match="min_members"):
        select.main(["--data", "x", "--out", "y", "--run", *runs, "--min_members", "3", "--max_members", "2"])
