"""cerberus.reweight: a trained student's head weights chosen again on development splits, without training."""

from __future__ import annotations

import json

import pytest
import torch

from as2.data import DataError, Question, save
from as2.runs import read_run, write_run
from cerberus import predict, reweight
from cerberus.modeling import CONFIG_NAME, CerberusStudent, StudentConfig

# per-head logits of the correct candidate c0 and of c1, c2: right or wrong, with a wide or a narrow margin
WIDE_RIGHT, NARROW_RIGHT = (4.0, 0.0, -1.0), (1.0, 0.5, 0.0)
WIDE_WRONG, NARROW_WRONG = (-1.0, 1.5, 0.5), (0.0, 0.5, 0.3)


def _student(tiny_bert, path, weights):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    config = StudentConfig(head_names=["t1", "t2"], body_layers=1, head_weights=weights)
    model = CerberusStudent.from_encoder(str(tiny_bert), config)
    model.save_pretrained(path, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    return path


def _split(tmp_path, name, t1, t2):
    """Four questions, c0 correct; the heads' logits per question from ``t1`` and ``t2`` (one triple each)."""
    questions = []
    for i in range(4):
        q = Question(f"q{i}", f"question {i}?")
        for j in range(3):
            q.add(f"c{j}", f"sentence {i} {j}", int(j == 0))
        questions.append(q)
    save(questions, tmp_path / name)
    paths = []
    for head, logits in (("t1", t1), ("t2", t2)):
        run = {f"q{i}": {f"c{j}": logits[i][j] for j in range(3)} for i in range(4)}
        paths.append(str(write_run(tmp_path / f"{name}.s.{head}.trec", run, f"s.{head}")))
    return str(tmp_path / name), paths


def test_two_splits_choose_the_mix_neither_head_reaches_alone(tiny_bert, tmp_path):
    """Bug caught: a choice made on the first split only (t1 is perfect there) or scored with the trained
    weights (0.9 / 0.1 lose split b)."""
    model = _student(tiny_bert, tmp_path / "model", [0.9, 0.1])
    # split a: t1 always right, t2 right on half; split b: t1 always wrong, t2 always right. On the 0.1 grid,
    # a alone is ranked perfectly from t1 1.0 down to 0.3 (0.5 / 0.5 the most even), b from t1 0.4 down to 0
    a, runs_a = _split(tmp_path, "a", [WIDE_RIGHT] * 4, [NARROW_RIGHT] * 2 + [NARROW_WRONG] * 2)
    b, runs_b = _split(tmp_path, "b", [WIDE_WRONG] * 4, [WIDE_RIGHT] * 4)
    out = tmp_path / "rw.json"
    args = ["--model", str(model), "--data", a, b, "--run", *runs_a, *runs_b, "--out", str(out)]
    result = reweight.main(args)

    assert result["weights"] == {"t1": 0.4, "t2": 0.6}  # perfect on both; the most even of those
    assert result["per_split"] == pytest.approx([1.0, 1.0]) and result["map"] == pytest.approx(1.0)
    assert result["trained_weights"] == pytest.approx({"t1": 0.9, "t2": 0.1})
    assert result["trained_per_split"][0] == pytest.approx(1.0) and result["trained_per_split"][1] < 1.0
    third = 1 / 3  # AP of the correct candidate ranked last of three
    assert result["heads_alone"]["t1"] == pytest.approx([1.0, third])
    assert result["heads_alone"]["t2"] == pytest.approx([(1 + 1 + third + third) / 4, 1.0])
    assert json.loads(out.read_text())["weights"] == result["weights"]
    assert json.loads((model / CONFIG_NAME).read_text())["head_weights"] == [0.9, 0.1]  # no --save: untouched
    alone = reweight.main([*args[:3], a, "--run", *runs_a, "--out", str(tmp_path / "a.json")])
    assert alone["weights"] == {"t1": 0.5, "t2": 0.5}  # split a alone would choose otherwise


def test_saved_weights_are_the_models_combination(tiny_bert, tiny_split, tmp_path):
    """Bug caught: --save writing weights that the model does not load or apply (predict's combined score)."""
    model = _student(tiny_bert, tmp_path / "model", [])
    base = ["--model", str(model), "--data", str(tiny_split), "--max_length", "32", "--name", "s"]
    predict.main([*base, "--out", str(tmp_path / "before")])
    runs = [str(tmp_path / "before" / f"s.{h}.trec") for h in ("t1", "t2")]
    args = ["--model", str(model), "--data", str(tiny_split), "--out", str(tmp_path / "rw.json")]
    result = reweight.main([*args, "--run", *runs, "--save", "--step", "0.25"])
    chosen = [result["weights"]["t1"], result["weights"]["t2"]]
    assert result["saved"] and result["map"] >= result["trained_map"]  # equal weights are on the grid
    assert CerberusStudent.from_pretrained(model).config.head_weights == chosen

    predict.main([*base, "--out", str(tmp_path / "after")])
    _, combined = read_run(tmp_path / "after" / "s.trec")
    _, h1 = read_run(tmp_path / "before" / "s.t1.trec")
    _, h2 = read_run(tmp_path / "before" / "s.t2.trec")
    for q, cands in combined.items():
        for c, score in cands.items():
            expected = chosen[0] * torch.sigmoid(torch.tensor(h1[q][c])) + chosen[1] * torch.sigmoid(
                torch.tensor(h2[q][c])
            )
            assert score == pytest.approx(expected.item(), abs=1e-5)


def test_bad_inputs(tiny_bert, tmp_path):
    model = _student(tiny_bert, tmp_path / "model", [])
    a, runs = _split(tmp_path, "a", [WIDE_RIGHT] * 4, [NARROW_RIGHT] * 4)
    args = ["--model", str(model), "--data", a, "--out", str(tmp_path / "rw.json")]
    with pytest.raises(ValueError, match="1 --run files for 1 splits of a 2-head model"):
        reweight.main([*args, "--run", runs[0]])
    other = write_run(tmp_path / "s.t3.trec", read_run(runs[1])[1], "s.t3")  # a head the model lacks
    with pytest.raises(DataError, match=r"0 runs named '<name>.t2'"):
        reweight.main([*args, "--run", runs[0], str(other)])
    with pytest.raises(ValueError, match="step must divide 1"):
        reweight.main([*args, "--run", *runs, "--step", "0.3"])
    with pytest.raises(FileNotFoundError, match="not a saved student"):
        reweight.main(
            ["--model", str(tmp_path), "--data", a, "--run", *runs, "--out", str(tmp_path / "x.json")]
        )
    one = _split(tmp_path, "one", [WIDE_RIGHT] * 4, [WIDE_RIGHT] * 4)[1]
    cfg = json.loads((model / CONFIG_NAME).read_text())
    (model / CONFIG_NAME).write_text(json.dumps({**cfg, "head_names": ["t1"]}))
    with pytest.raises(ValueError, match="one head"):
        reweight.main([*args, "--run", one[0]])
