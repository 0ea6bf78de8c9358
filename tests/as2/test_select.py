"""as2.select: greedy forward selection of the ensemble's members on a development split."""

from __future__ import annotations

import json

import pytest

from as2 import fuse, select
from as2.data import DataError, Question, save
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
    args = ["--data", str(dev), "--out", str(tmp_path / "s.json"), "--run", *runs, "--weights", "equal"]
    result = select.main(args)
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


def test_weight_grid_is_exact_and_starts_even():
    grid = select.weight_grid(3, 0.1)
    assert len(grid) == 66  # compositions of 10 tenths into 3 parts: C(12, 2)
    assert all(abs(sum(w) - 1) < 1e-9 and min(w) >= 0 for w in grid)
    assert (0.1, 0.2, 0.7) in grid  # a point that a float test sum(w) == 1.0 drops
    assert grid[0] == (0.3, 0.3, 0.4)  # the most even weighting comes first
    assert select.weight_grid(2, 0.25) == [(0.5, 0.5), (0.25, 0.75), (0.75, 0.25), (0.0, 1.0), (1.0, 0.0)]


# two runs whose equal-weight fusion is no better than the best of them (MAP 0.75), but whose fusion with
# weights 0.8 / 0.2 is (0.875): correct candidates c0, c1, c2, c0 in q0..q3
_WEIGHTED = {
    "a": {"q0": {"c0": 6.0, "c1": 6.0, "c2": 0.0}, "q1": {"c0": 4.0, "c1": 8.0, "c2": 7.0},
          "q2": {"c0": 6.0, "c1": 4.0, "c2": 7.0}, "q3": {"c0": 5.0, "c1": 9.0, "c2": 3.0}},
    "b": {"q0": {"c0": 8.0, "c1": 2.0, "c2": 4.0}, "q1": {"c0": 2.0, "c1": 1.0, "c2": 9.0},
          "q2": {"c0": 4.0, "c1": 8.0, "c2": 9.0}, "q3": {"c0": 2.0, "c1": 4.0, "c2": 1.0}},
}  # fmt: skip


def _weighted(tmp_path):
    questions = []
    for i in range(4):
        q = Question(f"q{i}", f"question {i}?")
        for j in range(3):
            q.add(f"c{j}", f"sentence {i} {j}", int(j == i % 3))
        questions.append(q)
    save(questions, tmp_path / "dev")
    paths = []
    for name, run in _WEIGHTED.items():
        write_run(tmp_path / f"{name}.trec", run, name)
        paths.append(str(tmp_path / f"{name}.trec"))
    return str(tmp_path / "dev"), paths


def test_optimized_weights_beat_the_best_member_where_equal_weights_do_not(tmp_path):
    dev, runs = _weighted(tmp_path)
    args = ["--data", dev, "--run", *runs, "--min_members", "1"]
    equal = select.main([*args, "--out", str(tmp_path / "e.json"), "--weights", "equal"])
    assert equal["members"] == ["a"] and equal["map"] == pytest.approx(0.75)  # fusing b adds nothing
    best = select.main([*args, "--out", str(tmp_path / "o.json")])
    assert best["members"] == ["a", "b"]
    assert best["weights"] == {"a": pytest.approx(0.8), "b": pytest.approx(0.2)}
    assert best["map"] == pytest.approx(0.875)
    assert best["steps"][0] == {"a": pytest.approx(0.75), "b": pytest.approx(17 / 24)}

    # as2.fuse --selection fuses with those weights, whatever the order of the runs given
    from as2.evaluate import main as evaluate

    out = tmp_path / "ens.trec"
    summary = fuse.main(
        ["--run", runs[1], runs[0], "--out", str(out), "--selection", str(tmp_path / "o.json")]
    )
    assert summary["method"] == "wsum" and summary["weights"] == [pytest.approx(0.2), pytest.approx(0.8)]
    report = evaluate(["--data", dev, "--run", str(out), "--out", str(tmp_path / "eval")])
    assert report["runs"]["ensemble"]["map"] == pytest.approx(0.875)


def test_fuse_selection_must_name_the_runs(tmp_path):
    dev, runs = _weighted(tmp_path)
    sel = tmp_path / "o.json"
    select.main(["--data", dev, "--run", *runs, "--min_members", "1", "--out", str(sel)])
    write_run(tmp_path / "c.trec", _WEIGHTED["a"], "c")
    with pytest.raises(DataError, match=r"members \['a', 'b'\] but the runs to fuse are \['a', 'c'\]"):
        fuse.main(
            [
                "--run",
                runs[0],
                str(tmp_path / "c.trec"),
                "--out",
                str(tmp_path / "x"),
                "--selection",
                str(sel),
            ]
        )
    with pytest.raises(ValueError, match="not both"):
        fuse.main(["--run", *runs, "--out", "x", "--selection", str(sel), "--weights", "1", "1"])
    with pytest.raises(ValueError, match="step must divide 1"):
        select.main(["--data", dev, "--run", *runs, "--out", "x", "--step", "0.3"])


def _second_split(tmp_path):
    # another domain: "bad" (inverted on the first split) is perfect here and "good" inverted
    folder = tmp_path / "other"
    folder.mkdir()
    questions = []
    for i in range(4):
        q = Question(f"s{i}", f"other question {i}?")
        for j in range(3):
            q.add(f"c{j}", f"other sentence {i} {j}", int(j == 1))
        questions.append(q)
    save(questions, folder / "dev")
    runs = {
        "half": {
            f"s{i}": {"c0": 3.0, "c1": 2.0 + (i < 2) * 2, "c2": 1.0} for i in range(4)
        },  # right on s0, s1
        "good": {f"s{i}": {"c0": 1.0, "c1": -5.0, "c2": 2.0} for i in range(4)},
        "bad": {f"s{i}": {"c0": 1.0, "c1": 5.0, "c2": 2.0} for i in range(4)},
    }
    paths = []
    for name in ("bad", "good", "half"):  # another order than the first split's: matched by name
        write_run(folder / f"{name}.trec", runs[name], name)
        paths.append(str(folder / f"{name}.trec"))
    return str(folder / "dev"), paths


def test_several_splits_choose_on_the_mean_of_their_metric(tmp_path):
    dev, runs = _dev(tmp_path), _runs(tmp_path)
    other, other_runs = _second_split(tmp_path)
    out = tmp_path / "sel.json"
    args = ["--data", str(dev), other, "--run", *runs, *other_runs, "--min_members", "1", "--out", str(out)]
    both = select.main(args)
    one = select.main(
        ["--data", str(dev), "--run", *runs, "--min_members", "1", "--out", str(tmp_path / "1")]
    )
    assert one["members"] == ["good"]  # perfect on the first split alone
    # alone, each of good and bad is perfect on one split and worst on the other: the mean, not one split,
    # decides, and every split's metric of the choice is kept
    first = both["steps"][0]
    assert first["half"] == pytest.approx(((1 + 1 + 1 / 3 + 1 / 3) / 4 + (1 + 1 + 1 / 2 + 1 / 2) / 4) / 2)
    assert first["good"] == pytest.approx(first["bad"]) == pytest.approx((1 + 1 / 3) / 2)
    assert both["map"] == pytest.approx(sum(both["per_split"]) / 2)
    # "half" is best on the mean, though best on neither split, and no fusion with it does better
    assert both["members"] == ["half"] and both["map"] == pytest.approx(first["half"])
    assert both["per_split"] == [pytest.approx(2 / 3), pytest.approx(3 / 4)]
    saved = json.loads(out.read_text())
    assert saved["data"] == [str(dev), other] and len(saved["split_candidates"]) == 2


def test_several_splits_need_the_same_candidates(tmp_path):
    dev, runs = _dev(tmp_path), _runs(tmp_path)
    other, other_runs = _second_split(tmp_path)
    base = ["--data", str(dev), other, "--out", str(tmp_path / "s.json")]
    with pytest.raises(ValueError, match="5 --run files for 2 --data splits"):
        select.main([*base, "--run", *runs, *other_runs[:2]])
    renamed = tmp_path / "other" / "renamed.trec"
    name, run = "renamed", {f"s{i}": {"c0": 1.0, "c1": 2.0, "c2": 0.0} for i in range(4)}
    write_run(renamed, run, name)
    with pytest.raises(DataError, match=r"split 2 .* named \['bad', 'good', 'renamed'\]"):
        select.main([*base, "--run", *runs, *other_runs[:2], str(renamed)])
