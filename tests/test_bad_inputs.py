"""Bad input through the command line: exit 2, one line naming the file (and line or field), nothing written.

One table: each case writes a small bad file, runs an entry point as a user would (``as2.config.cli`` with
``sys.argv``, the same path as ``python -m ...``) and checks what the user sees and what is left on disk.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from as2.config import cli
from as2.data import Question, save

HEADER = "QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel\n"
ROW = "Q1\twhere was he born ?\tD1\tTitle\tD1-{j}\t{text}\t{label}\n"


def wikiqa(tmp_path, body: str, crlf: bool = False):
    text = HEADER + body
    path = tmp_path / "WikiQA-bad.tsv"
    path.write_bytes(text.replace("\n", "\r\n").encode() if crlf else text.encode())
    return path


def split(tmp_path):
    q = Question("Q1", "where was he born ?")
    q.add("c1", 'he was born in "paris" .', 1)
    q.add("c2", "the river is long .", 0)
    save([q], tmp_path / "split")
    return tmp_path / "split"


def run_file(tmp_path, lines: str):
    path = tmp_path / "r.trec"
    path.write_text(lines)
    return path


def convert(tmp_path, path):
    from data_prep import convert

    return convert.main, ["--source", "wikiqa", "--input", str(path), "--output", str(tmp_path / "out")]


def evaluate(tmp_path, run):
    from as2 import evaluate

    return evaluate.main, ["--data", str(split(tmp_path)), "--run", str(run), "--out", str(tmp_path / "out")]


def fuse(tmp_path, run):
    from as2 import fuse

    good = _write(tmp_path / "good.trec", "Q1 Q0 c1 1 0.9 good\nQ1 Q0 c2 2 0.1 good\n")
    return fuse.main, ["--run", str(good), str(run), "--out", str(tmp_path / "out")]


def convert_source(tmp_path, source: str, path):
    from data_prep import convert

    columns = ["--question_col", "question", "--candidate_col", "candidate", "--label_col", "label"]
    return convert.main, ["--source", source, "--input", str(path), "--output", str(tmp_path / "out"),
                          *(columns if source == "table" else [])]  # fmt: skip


def student(tmp_path, encoder):
    """A saved one-head CERBERUS student of the tiny encoder (a folder ``cerberus.predict`` loads)."""
    from transformers import AutoTokenizer

    from cerberus.modeling import CerberusStudent, StudentConfig

    model = CerberusStudent.from_encoder(str(encoder), StudentConfig(head_names=["a"], body_layers=1))
    model.save_pretrained(tmp_path / "student", tokenizer=AutoTokenizer.from_pretrained(str(encoder)))
    return tmp_path / "student"


def predict(tmp_path, model, data):
    from cerberus import predict

    return predict.main, ["--model", str(model), "--data", str(data), "--out", str(tmp_path / "out")]


def truncated(tmp_path, encoder):
    folder = student(tmp_path, encoder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return folder


def train(tmp_path, encoder):
    """A student whose head names a teacher column the split does not have."""
    from cerberus import train

    ds = Path(__file__).resolve().parents[1] / "configs" / "ds_cpu_fp32.json"
    return train.main, ["--train_data", str(split(tmp_path)), "--model", str(encoder), "--heads", "t9",
                        "--body_layers", "1", "--deepspeed_config", str(ds), "--output_dir", str(tmp_path / "out")]  # fmt: skip


def twin_model(tmp_path, encoder, seed: int = 0):
    """A saved twin of the tiny encoder; ``seed`` > 0 moves its weights a little (another model, same shape)."""
    import torch

    from twin.modeling import TwinConfig, TwinModel

    model = TwinModel.from_encoders(str(encoder), TwinConfig(pooling="mean", crossing="cos", max_length=32))
    if seed:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) * 0.01)
    model.save_pretrained(tmp_path / f"twin{seed}")
    return tmp_path / f"twin{seed}"


def twin_index(tmp_path, encoder, corpus_text: str):
    from twin import index

    corpus = _write(tmp_path / "corpus.tsv", corpus_text)
    return index.main, ["--model", str(twin_model(tmp_path, encoder)), "--corpus", str(corpus),
                        "--out", str(tmp_path / "out"), "--spec", "Flat"]  # fmt: skip


def twin_search_other_model(tmp_path, encoder):
    """An index built with one twin, searched with another (same dimension, other weights)."""
    from twin import index, search

    corpus = _write(tmp_path / "corpus.tsv", "d1\tthe river is long .\nd2\tthe city of paris .\n")
    index.main(["--model", str(twin_model(tmp_path, encoder)), "--corpus", str(corpus), "--out",
                str(tmp_path / "index"), "--spec", "Flat"])  # fmt: skip
    return search.main, ["--model", str(twin_model(tmp_path, encoder, seed=1)), "--data", str(split(tmp_path)),
                         "--mode", "retrieve", "--index", str(tmp_path / "index"), "--k", "2", "--hits", "all", "--out", str(tmp_path / "out")]  # fmt: skip


def select(tmp_path, run):
    from as2 import select

    good = _write(tmp_path / "good.trec", "Q1 Q0 c1 1 0.9 good\nQ1 Q0 c2 2 0.1 good\n")
    return select.main, [
        "--data",
        str(split(tmp_path)),
        "--run",
        str(good),
        str(run),
        "--out",
        str(tmp_path / "out"),
    ]


CASES = {
    # case: (build(tmp_path) -> (main, argv), words the one line must hold)
    "label not 0/1 (CRLF file)": (
        lambda t, e: convert(t, wikiqa(t, ROW.format(j=0, text="a b", label="yes"), crlf=True)),
        ["WikiQA-bad.tsv", "line 2", "Label"],
    ),
    "missing column": (
        lambda t, e: convert(
            t, _write(t / "WikiQA-bad.tsv", HEADER.replace("\tLabel", "") + "Q1\tq\tD\tT\tD-0\ts\n")
        ),
        ["WikiQA-bad.tsv", "Label"],
    ),
    "empty file": (lambda t, e: convert(t, _write(t / "WikiQA-bad.tsv", "")), ["WikiQA-bad.tsv"]),
    "empty sentence": (
        lambda t, e: convert(
            t, wikiqa(t, ROW.format(j=0, text=" ", label="1") + ROW.format(j=1, text="x", label="0"))
        ),
        ["WikiQA-bad.tsv", "line 2"],
    ),
    "duplicate candidate id": (
        lambda t, e: convert(
            t, wikiqa(t, ROW.format(j=0, text="a", label="1") + ROW.format(j=0, text="b", label="0"))
        ),
        ["WikiQA-bad.tsv", "D1-0"],
    ),
    "run: unknown question id": (
        lambda t, e: evaluate(t, run_file(t, "Q9 Q0 c1 1 0.5 sys\n")),
        ["r.trec", "Q9"],
    ),
    "run: NaN score": (
        lambda t, e: evaluate(t, run_file(t, "Q1 Q0 c1 1 nan sys\n")),
        ["r.trec", "line 1", "score"],
    ),
    "run: five fields": (
        lambda t, e: fuse(t, run_file(t, "Q1 Q0 c1 1 0.5\n")),
        ["r.trec", "line 1", "6 fields"],
    ),
    "SelQA: label not 0/1": (
        lambda t, e: convert_source(t, "selqa", _write(t / "SelQA-bad.tsv", "who ?\ta b .\tmaybe\n")),
        ["SelQA-bad.tsv", "line 1", "label"],
    ),
    "table: bare quote in a CSV field": (
        lambda t, e: convert_source(
            t, "table", _write(t / "bad.csv", 'question,candidate,label\nwho ?,"a "b" c,1\n')
        ),
        ["bad.csv", "line"],
    ),
    "table: missing column": (
        lambda t, e: convert_source(t, "table", _write(t / "bad.tsv", "question\tlabel\nwho ?\t1\n")),
        ["bad.tsv", "candidate"],
    ),
    "table: empty question": (
        lambda t, e: convert_source(
            t, "table", _write(t / "bad.tsv", "question\tcandidate\tlabel\n \ta .\t1\n")
        ),
        ["bad.tsv", "line 2", "question"],
    ),
    "predict: JSONL question without candidates": (
        lambda t, e: predict(
            t, student(t, e), _write(t / "q.jsonl", '{"question": "who ?", "candidates": []}\n')
        ),
        ["q.jsonl", "line 1", "candidates"],
    ),
    "predict: missing model folder": (lambda t, e: predict(t, t / "no_model", split(t)), ["no_model"]),
    "predict: truncated safetensors": (
        lambda t, e: predict(t, truncated(t, e), split(t)),
        ["model.safetensors"],
    ),
    "run: inf score": (
        lambda t, e: evaluate(t, run_file(t, "Q1 Q0 c1 1 inf sys\n")),
        ["r.trec", "line 1", "score"],
    ),
    "run: unknown candidate id": (
        lambda t, e: evaluate(t, run_file(t, "Q1 Q0 c9 1 0.5 sys\n")),
        ["r.trec", "c9"],
    ),
    "fuse: NaN score": (
        lambda t, e: fuse(t, run_file(t, "Q1 Q0 c1 1 nan sys\nQ1 Q0 c2 2 0.1 sys\n")),
        ["r.trec", "line 1", "score"],
    ),
    "select: unknown question id": (
        lambda t, e: select(t, run_file(t, "Q9 Q0 c1 1 0.5 sys\n")),
        ["r.trec", "Q9"],
    ),
    "train: head without its teacher column": (lambda t, e: train(t, e), ["split", "t9"]),
    "twin.index: duplicate document id": (
        lambda t, e: twin_index(t, e, "d1\tthe river .\nd1\tthe city .\n"),
        ["corpus.tsv", "line 2", "d1"],
    ),
    "twin.index: empty document text": (
        lambda t, e: twin_index(t, e, "d1\tthe river .\nd2\t \n"),
        ["corpus.tsv", "line 2"],
    ),
    "twin.search: index of another model": (lambda t, e: twin_search_other_model(t, e), ["index", "rebuild"]),
    "run: two names": (
        lambda t, e: fuse(t, run_file(t, "Q1 Q0 c1 1 0.5 a\nQ1 Q0 c2 2 0.4 b\n")),
        ["r.trec", "line 2", "name"],
    ),
}


def _write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, tiny_bert, monkeypatch, capsys):
    build, words = CASES[case]
    main, argv = build(tmp_path, tiny_bert)
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli(main)
    logs = re.compile(
        r"\d\d:\d\d:\d\d INFO |\[\d{4}-\d\d-\d\d [\d:,]+\] \[(INFO|WARNING)\]|\r|Loading weights"
    )
    bar = re.compile(r"\[\d\d:\d\d(<|, )")  # a tqdm progress bar: "... [00:01<00:02, 3.0doc/s]"
    lines = [
        x
        for x in capsys.readouterr().err.splitlines()
        if x.strip() and not logs.match(x) and not bar.search(x)
    ]
    err = "\n".join(lines)  # what remains once progress logging (ours, DeepSpeed's, bars) is set aside
    assert exit_info.value.code == 2, err
    assert len(lines) == 1 and err.startswith("error: "), err
    assert all(w in err for w in words), (words, err)
    assert not (tmp_path / "out").exists()
