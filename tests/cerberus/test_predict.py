"""cerberus.predict: one run per head and one combined, for a whole split or a candidate run (cascade)."""

from __future__ import annotations

import json

import pytest
import torch

from as2.data import DataError, load
from as2.runs import read_run, write_run
from cerberus import predict
from cerberus.modeling import CerberusStudent, StudentConfig


@pytest.fixture(scope="module")
def student_dir(tiny_bert, tmp_path_factory):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = CerberusStudent.from_encoder(
        str(tiny_bert), StudentConfig(head_names=["t1", "t2"], body_layers=2)
    )
    out = tmp_path_factory.mktemp("student") / "model"
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    return out


def test_runs_per_head_and_combined(student_dir, tiny_split, tmp_path):
    summary = predict.main(
        [
            "--model",
            str(student_dir),
            "--data",
            str(tiny_split),
            "--out",
            str(tmp_path),
            "--name",
            "stu",
            "--max_length",
            "32",
        ]
    )
    ds = load(tiny_split)
    assert summary["pairs"] == sum(len(c) for c in ds["cids"])
    assert set(summary["runs"]) == {"stu", "stu.t1", "stu.t2"}
    runs = {n: read_run(tmp_path / f"{n}.trec") for n in summary["runs"]}
    assert all(runs[n][0] == n for n in runs)
    _, combined = runs["stu"]
    _, h1 = runs["stu.t1"]
    _, h2 = runs["stu.t2"]
    q, c = ds[0]["qid"], ds[0]["cids"][0]
    mean_prob = (torch.sigmoid(torch.tensor(h1[q][c])) + torch.sigmoid(torch.tensor(h2[q][c]))) / 2
    assert combined[q][c] == pytest.approx(mean_prob.item(), abs=1e-6)
    assert json.loads((tmp_path / "stu.predict.json").read_text())["pairs"] == summary["pairs"]
    assert summary["precision"] == "fp32" and summary["hardware"]["cpu"]  # tests run fp32 (conftest)

    # int8: the same pairs, scores within the quantization error, the precision recorded
    base = ["--model", str(student_dir), "--data", str(tiny_split), "--max_length", "32", "--name", "stu"]
    quant = predict.main([*base, "--out", str(tmp_path / "int8"), "--precision", "int8"])
    assert quant["precision"] == "int8" and quant["pairs"] == summary["pairs"]
    _, q8 = read_run(tmp_path / "int8" / "stu.trec")
    assert max(abs(q8[q][c] - combined[q][c]) for q in combined for c in combined[q]) < 0.05
    with pytest.raises(ValueError, match="precision must be one of"):
        predict.main([*base, "--out", str(tmp_path / "x"), "--precision", "fp8"])


def test_candidates_run_restricts_scoring(student_dir, tiny_split, tmp_path):
    ds = load(tiny_split)
    first = {r["qid"]: {r["cids"][0]: 1.0} for r in ds.select(range(3))}
    write_run(tmp_path / "top1.trec", first, "first_stage")
    summary = predict.main(
        [
            "--model",
            str(student_dir),
            "--data",
            str(tiny_split),
            "--out",
            str(tmp_path / "o"),
            "--candidates",
            str(tmp_path / "top1.trec"),
            "--max_length",
            "32",
        ]
    )
    assert summary["pairs"] == 3
    _, run = read_run(tmp_path / "o" / "cerberus.trec")
    assert {q: set(c) for q, c in run.items()} == {q: set(c) for q, c in first.items()}

    # the top K of a full first-stage run: the same pairs as a run cut to K
    full = {r["qid"]: {c: float(i) for i, c in enumerate(r["cids"])} for r in ds.select(range(3))}
    write_run(tmp_path / "full.trec", full, "first_stage")
    args = ["--model", str(student_dir), "--data", str(tiny_split), "--max_length", "32"]
    summary = predict.main([*args, "--out", str(tmp_path / "k"), "--candidates", str(tmp_path / "full.trec"),
                            "--candidates_k", "2"])  # fmt: skip
    _, run = read_run(tmp_path / "k" / "cerberus.trec")
    assert {q: set(c) for q, c in run.items()} == {r["qid"]: set(r["cids"][-2:]) for r in ds.select(range(3))}
    assert summary["pairs"] == sum(min(2, len(r["cids"])) for r in ds.select(range(3)))
    with pytest.raises(ValueError, match="needs candidates"):
        predict.main([*args, "--out", str(tmp_path / "x"), "--candidates_k", "2"])

    write_run(tmp_path / "bad.trec", {"0": {"nope": 1.0}}, "bad")
    with pytest.raises(DataError, match="not in the data"):
        predict.main(
            [
                "--model",
                str(student_dir),
                "--data",
                str(tiny_split),
                "--out",
                str(tmp_path / "b"),
                "--candidates",
                str(tmp_path / "bad.trec"),
            ]
        )


def test_raw_files_rank_like_the_converted_split(student_dir, tiny_split, tmp_path):
    """Bugs caught: questions merged or split when read from a file, candidates out of order, ids invented."""
    ds = load(tiny_split).select(range(4))
    grouped = tmp_path / "questions.jsonl"
    grouped.write_text(
        "".join(
            json.dumps(
                {"qid": r["qid"], "question": r["question"], "candidates": r["candidates"], "cids": r["cids"]}
            )
            + "\n"
            for r in ds
        )
    )
    rows = tmp_path / "pairs.tsv"
    lines = ["qid\tquestion\tcandidate\tcid"]
    lines += [
        f"{r['qid']}\t{r['question']}\t{t}\t{c}"
        for r in ds
        for c, t in zip(r["cids"], r["candidates"], strict=True)
    ]
    rows.write_text("\r\n".join(lines) + "\r\n")  # CRLF as spreadsheets write it
    split = tmp_path / "split"
    from as2.data import from_dataset, save

    save(from_dataset(ds), split)
    base = ["--model", str(student_dir), "--max_length", "32", "--name", "stu"]
    want = read_run(predict.main([*base, "--data", str(split), "--out", str(tmp_path / "a")])["runs"]["stu"])[
        1
    ]
    for i, src in enumerate((grouped, rows)):
        got = read_run(
            predict.main([*base, "--data", str(src), "--out", str(tmp_path / f"r{i}")])["runs"]["stu"]
        )
        assert got[1].keys() == want.keys()
        for q in want:
            assert got[1][q] == pytest.approx(want[q], abs=1e-6)

    # without ids: one question per JSONL line, numbered by position; candidates numbered within it
    bare = tmp_path / "bare.jsonl"
    bare.write_text('{"question": "who was born ?", "candidates": ["he was", "no"]}\n' * 2)
    _, run = read_run(predict.main([*base, "--data", str(bare), "--out", str(tmp_path / "b")])["runs"]["stu"])
    assert {q: sorted(c) for q, c in run.items()} == {"0": ["0-0", "0-1"], "1": ["1-0", "1-1"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "q ?", "candidates": []}\n', "line 1: field 'candidates' must be a non-empty list"),
        (
            '{"question": "q ?", "candidates": ["a"], "cids": ["x", "y"]}\n',
            "line 1: field 'cids' must be a list of 1",
        ),
        ('{"question": 3, "candidates": ["a"]}\n', "line 1: field 'question' must be a string"),
        ('{"query": "q ?", "passage": "a"}\n', "missing column 'question'"),
        ("", "empty file"),
    ],
)
def test_raw_file_errors_name_file_line_and_field(student_dir, tmp_path, text, message):
    src = tmp_path / "bad.jsonl"
    src.write_text(text)
    with pytest.raises(DataError, match=message):
        predict.main(["--model", str(student_dir), "--data", str(src), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_interrupted_prediction_resumes_and_two_ranks_predict_as_one(
    student_dir, tiny_split, tmp_path, monkeypatch, launch, one_thread
):
    """Bugs caught: a rerun after a kill that scores every pair again, chunks lost or merged out of order
    across ranks (a candidate gets another's score), a cache left beside the runs."""

    base = [
        "--model",
        str(student_dir),
        "--data",
        str(tiny_split),
        "--max_length",
        "32",
        "--chunk_pairs",
        "5",
    ]
    one = predict.main([*base, "--out", str(tmp_path / "one")])
    calls, real = [], predict.score_pairs

    def killed(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(predict, "score_pairs", killed)
    with pytest.raises(KeyboardInterrupt):
        predict.main([*base, "--out", str(tmp_path / "resumed")])
    assert not (tmp_path / "resumed" / "cerberus.trec").exists()
    resumed = []
    monkeypatch.setattr(predict, "score_pairs", lambda *a, **k: resumed.append(1) or real(*a, **k))
    again = predict.main([*base, "--out", str(tmp_path / "resumed")])
    assert len(resumed) == -(-one["pairs"] // 5) - 1  # every chunk but the one cached before the kill
    assert read_run(tmp_path / "resumed" / "cerberus.trec") == read_run(tmp_path / "one" / "cerberus.trec")
    assert again["pairs"] == one["pairs"] and not list((tmp_path / "resumed").glob(".*cache*"))

    launch("cerberus/predict.py", *base, "--out", tmp_path / "two", "--precision", "fp32")
    for name in ("cerberus", "cerberus.t1", "cerberus.t2"):
        assert read_run(tmp_path / "two" / f"{name}.trec") == read_run(tmp_path / "one" / f"{name}.trec")
    assert json.loads((tmp_path / "two" / "cerberus.predict.json").read_text())["ranks"] == 2


def test_clean_protocol_ranks_only_the_questions_evaluated(student_dir, tmp_path):
    from as2.data import Question, save

    questions = []
    for qid, labels in (("clean", [0, 1, 0]), ("no_answer", [0, 0]), ("only_answers", [1, 1])):
        q = Question(qid, f"who wrote {qid} ?")
        for j, label in enumerate(labels):
            q.add(f"{qid}-{j}", f"candidate {j} of {qid} about a book", label)
        questions.append(q)
    split = tmp_path / "split"
    save(questions, split, {"source": "synthetic"})
    base = ["--model", str(student_dir), "--data", str(split), "--max_length", "32", "--precision", "fp32"]
    _, raw = read_run(predict.main([*base, "--out", str(tmp_path / "raw")])["runs"]["cerberus"])
    clean = predict.main([*base, "--out", str(tmp_path / "clean"), "--protocol", "clean"])
    _, run = read_run(clean["runs"]["cerberus"])
    assert set(raw) == {"clean", "no_answer", "only_answers"} and set(run) == {"clean"}
    assert clean["pairs"] == 3 and clean["protocol"] == "clean"
    assert run["clean"] == pytest.approx(raw["clean"], abs=1e-6)  # the same scores as in the full run

    # a first-stage run over every question (the cascade's) is cut to the clean ones, not an error
    write_run(tmp_path / "first.trec", raw, "first_stage")
    cascade = predict.main([*base, "--out", str(tmp_path / "c"), "--protocol", "clean",
                            "--candidates", str(tmp_path / "first.trec"), "--candidates_k", "2"])  # fmt: skip
    assert set(read_run(cascade["runs"]["cerberus"])[1]) == {"clean"} and cascade["pairs"] == 2

    unlabelled = tmp_path / "questions.jsonl"
    unlabelled.write_text(json.dumps({"question": "who ?", "candidates": ["a b", "c d"]}) + "\n")
    with pytest.raises(DataError, match="questions.jsonl: no question has both"):
        predict.main([*base, "--data", str(unlabelled), "--out", str(tmp_path / "u"), "--protocol", "clean"])
    with pytest.raises(ValueError, match="protocol must be one of"):
        predict.main([*base, "--out", str(tmp_path / "x"), "--protocol", "filtered"])
