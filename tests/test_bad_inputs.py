"""Bad input through the command line: exit 2, one line naming the file (and line or field), nothing written.

One table: each case writes a small bad file, runs an entry point as a user would (``as2.config.cli`` with
``sys.argv``, the same path as ``python -m ...``) and checks what the user sees and what is left on disk.
"""

from __future__ import annotations

import re
import sys

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


CASES = {
    # case: (build(tmp_path) -> (main, argv), words the one line must hold)
    "label not 0/1 (CRLF file)": (
        lambda t: convert(t, wikiqa(t, ROW.format(j=0, text="a b", label="yes"), crlf=True)),
        ["WikiQA-bad.tsv", "line 2", "Label"],
    ),
    "missing column": (
        lambda t: convert(
            t, _write(t / "WikiQA-bad.tsv", HEADER.replace("\tLabel", "") + "Q1\tq\tD\tT\tD-0\ts\n")
        ),
        ["WikiQA-bad.tsv", "Label"],
    ),
    "empty file": (lambda t: convert(t, _write(t / "WikiQA-bad.tsv", "")), ["WikiQA-bad.tsv"]),
    "empty sentence": (
        lambda t: convert(
            t, wikiqa(t, ROW.format(j=0, text=" ", label="1") + ROW.format(j=1, text="x", label="0"))
        ),
        ["WikiQA-bad.tsv", "line 2"],
    ),
    "duplicate candidate id": (
        lambda t: convert(
            t, wikiqa(t, ROW.format(j=0, text="a", label="1") + ROW.format(j=0, text="b", label="0"))
        ),
        ["WikiQA-bad.tsv", "D1-0"],
    ),
    "run: unknown question id": (
        lambda t: evaluate(t, run_file(t, "Q9 Q0 c1 1 0.5 sys\n")),
        ["r.trec", "Q9"],
    ),
    "run: NaN score": (
        lambda t: evaluate(t, run_file(t, "Q1 Q0 c1 1 nan sys\n")),
        ["r.trec", "line 1", "score"],
    ),
    "run: five fields": (
        lambda t: fuse(t, run_file(t, "Q1 Q0 c1 1 0.5\n")),
        ["r.trec", "line 1", "6 fields"],
    ),
    "run: two names": (
        lambda t: fuse(t, run_file(t, "Q1 Q0 c1 1 0.5 a\nQ1 Q0 c2 2 0.4 b\n")),
        ["r.trec", "line 2", "name"],
    ),
}


def _write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    build, words = CASES[case]
    main, argv = build(tmp_path)
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli(main)
    lines = [x for x in capsys.readouterr().err.splitlines() if not re.match(r"\d\d:\d\d:\d\d INFO ", x)]
    err = "\n".join(lines)  # what remains once progress logging is set aside
    assert exit_info.value.code == 2, err
    assert len(lines) == 1 and err.startswith("error: "), err
    assert all(w in err for w in words), (words, err)
    assert not (tmp_path / "out").exists()
