"""``python -m data_prep.convert``: each reader on tiny fixtures that reproduce its format's quirks, the errors
bad input gives (naming file, line and field), atomic output, and the published WikiQA counts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from as2 import table
from as2.data import DataError, load, load_questions
from data_prep import hub, selqa, trecqa
from data_prep.convert import main

WIKIQA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wikiqa"

WIKIQA_HEADER = "QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel"
# Line 3 opens a double quote that never closes: the default csv reader swallows lines 4-6 into it.
WIKIQA_ROWS = [
    "Q1\twhat is a cat\tD1\tCat\tD1-0\tThe cat is a small mammal .\t1",
    'Q1\twhat is a cat\tD1\tCat\tD1-1\t"House cat is another name .\t0',
    "Q1\twhat is a cat\tD1\tCat\tD1-2\tCats purr .\t0",
    "Q2\twho wrote hamlet\tD2\tHamlet\tD2-0\tHamlet is a tragedy .\t0",
    'Q2\twho wrote hamlet\tD2\tHamlet\tD2-1\tShakespeare wrote it " in 1600 .\t1',
    "Q3\twhere is rome\tD3\tRome\tD3-0\tRome is a city .\t0",
]


def write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


def run(argv: list[str], capsys) -> dict:
    """Call the entry point; return the JSON object it prints as its last stdout line."""
    main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def fails(argv: list[str], capsys, *parts: str) -> str:
    """Call the entry point expecting bad data: exit status 2, a message holding ``parts``, no traceback."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, (part, err)
    return err


def as_tuples(questions) -> list[tuple]:
    return [(q.qid, q.question, q.cids, q.candidates, q.labels) for q in questions]


# --- WikiQA -------------------------------------------------------------------------------------------


def test_wikiqa_crlf_and_bare_quotes(tmp_path, capsys):
    src = write(tmp_path / "WikiQA-test.tsv", [WIKIQA_HEADER, *WIKIQA_ROWS], newline="\r\n")
    # The quirk is real: Python's default csv reader merges rows here.
    with open(src, newline="") as f:
        assert len(list(csv.reader(f, delimiter="\t"))) < 7
    out = tmp_path / "out"
    stats = run(["--source", "wikiqa", "--input", str(src), "--output", str(out)], capsys)
    assert stats["format"] == "wikiqa" and stats["source"] == str(src)
    assert {k: stats[k] for k in ("questions", "pairs", "positives", "clean_questions", "clean_pairs")} == {
        "questions": 3,
        "pairs": 6,
        "positives": 2,
        "clean_questions": 2,
        "clean_pairs": 5,
    }
    assert as_tuples(load_questions(out)) == [
        (
            "Q1",
            "what is a cat",
            ["D1-0", "D1-1", "D1-2"],
            ["The cat is a small mammal .", '"House cat is another name .', "Cats purr ."],
            [1, 0, 0],
        ),
        (
            "Q2",
            "who wrote hamlet",
            ["D2-0", "D2-1"],
            ["Hamlet is a tragedy .", 'Shakespeare wrote it " in 1600 .'],
            [0, 1],
        ),
        ("Q3", "where is rome", ["D3-0"], ["Rome is a city ."], [0]),
    ]
    assert json.loads((out / "as2.json").read_text())["questions"] == 3
    assert load(out).column_names == ["qid", "question", "cids", "candidates", "labels"]


def test_wikiqa_limit_questions(tmp_path, capsys):
    src = write(tmp_path / "w.tsv", [WIKIQA_HEADER, *WIKIQA_ROWS])
    stats = run(
        [
            "--source",
            "wikiqa",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o"),
            "--limit_questions",
            "2",
        ],
        capsys,
    )
    assert (stats["questions"], stats["pairs"]) == (2, 5)


@pytest.mark.parametrize(
    "row, parts",
    [
        ("Q9\t\tD9\tT\tD9-0\tSome sentence .\t0", ["line 8", "'question' is empty"]),
        ("Q9\twhy\tD9\tT\tD9-0\t \t0", ["line 8", "'candidate'", "is empty"]),
        ("Q9\twhy\tD9\tT\tD9-0\tSome sentence .\t2", ["line 8", "'Label'", "'2'"]),
        ("Q9\twhy\tD9\tT\tD9-0\tSome sentence .", ["line 8", "expected 7", "got 6", "'Label' is missing"]),
        (
            "Q1\twhat is a cat\tD9\tT\tD9-0\tBack again .\t0",
            ["line 8", "'qid'", "duplicates question id 'Q1'"],
        ),
        (
            "Q3\twhere is rome\tD3\tRome\tD3-0\tRome again .\t1",
            ["line 8", "'cid'", "duplicates candidate id 'D3-0'"],
        ),
        ("Q3\twhere is paris\tD3\tRome\tD3-1\tParis .\t1", ["line 8", "'question'", "line 7"]),
    ],
    ids=[
        "empty-question",
        "empty-candidate",
        "label-2",
        "field-count",
        "dup-qid",
        "dup-cid",
        "qid-text-mismatch",
    ],
)
def test_wikiqa_bad_rows(tmp_path, capsys, row, parts):
    src = write(tmp_path / "bad.tsv", [WIKIQA_HEADER, *WIKIQA_ROWS, row], newline="\r\n")
    fails(
        ["--source", "wikiqa", "--input", str(src), "--output", str(tmp_path / "o")], capsys, str(src), *parts
    )
    assert not (tmp_path / "o").exists()


def test_wikiqa_missing_column(tmp_path, capsys):
    src = write(
        tmp_path / "bad.tsv", [WIKIQA_HEADER.replace("\tLabel", ""), WIKIQA_ROWS[0].rsplit("\t", 1)[0]]
    )
    fails(
        ["--source", "wikiqa", "--input", str(src), "--output", str(tmp_path / "o")],
        capsys,
        str(src),
        "line 1",
        "'Label'",
    )


# --- atomic output -----------------------------------------------------------------------------------


def test_failed_conversion_leaves_output_alone(tmp_path, capsys):
    bad = write(tmp_path / "bad.tsv", [WIKIQA_HEADER, *WIKIQA_ROWS, "Q9\twhy\tD9\tT\tD9-0\tx\t7"])
    good = write(tmp_path / "good.tsv", [WIKIQA_HEADER, *WIKIQA_ROWS])
    out = tmp_path / "deep" / "out"
    fails(["--source", "wikiqa", "--input", str(bad), "--output", str(out)], capsys, "line 8")
    assert not out.exists()
    run(["--source", "wikiqa", "--input", str(good), "--output", str(out)], capsys)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fails(["--source", "wikiqa", "--input", str(bad), "--output", str(out)], capsys, "line 8")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no temporary folder left behind


def test_bad_config_exits_2(tmp_path, capsys):
    fails(
        ["--source", "nope", "--input", "x", "--output", str(tmp_path / "o")], capsys, "source must be one of"
    )
    fails(["--source", "wikiqa", "--input", "x", "--output", "o", "--label_col", "y"], capsys, "table or hub")
    fails(
        ["--source", "table", "--input", "x.csv", "--output", "o", "--label_col", "y"],
        capsys,
        "--question_col",
    )
    fails(
        ["--source", "wikiqa", "--input", str(tmp_path / "none.tsv"), "--output", "o"],
        capsys,
        "does not exist",
    )


# --- TREC-QA -----------------------------------------------------------------------------------------


def castorini(tmp_path: Path, ids: list[str], labels: list[str], n_b: int | None = None) -> Path:
    d = tmp_path / "raw-test"
    n = len(ids)
    write(d / "a.toks", [f"question {i}" for i in ids])
    write(d / "b.toks", [f"answer {k}" for k in range(n if n_b is None else n_b)])
    write(d / "id.txt", ids)
    write(d / "sim.txt", labels)
    return d


def test_trecqa_castorini(tmp_path, capsys):
    d = castorini(tmp_path, ["32", "32", "32", "33", "33"], ["0", "1", "0", "0", "0"])
    out = tmp_path / "o"
    stats = run(["--source", "trecqa", "--input", str(d), "--output", str(out)], capsys)
    assert (stats["questions"], stats["pairs"], stats["clean_questions"]) == (2, 5, 1)
    assert as_tuples(load_questions(out)) == [
        ("32", "question 32", ["32-0", "32-1", "32-2"], ["answer 0", "answer 1", "answer 2"], [0, 1, 0]),
        ("33", "question 33", ["33-0", "33-1"], ["answer 3", "answer 4"], [0, 0]),
    ]


def test_trecqa_castorini_misaligned(tmp_path):
    d = castorini(tmp_path, ["1", "1", "2"], ["0", "1", "0"], n_b=2)
    with pytest.raises(DataError) as exc:
        trecqa.read(d)
    msg = str(exc.value)
    assert str(d / "b.toks") in msg and "line 3" in msg and "'candidate'" in msg and "has 2 lines" in msg


def test_trecqa_castorini_bad_label(tmp_path):
    d = castorini(tmp_path, ["1", "1", "2"], ["0", "1", "0.5"])
    with pytest.raises(DataError, match=r"sim\.txt, line 3: field 'label' is '0.5'"):
        trecqa.read(d)


def test_trecqa_tsv(tmp_path):
    src = write(
        tmp_path / "trec.tsv",
        [
            "qid\tquestion\tanswer\tlabel",
            "q1\tWho ?\tHim .\t1",
            "q1\tWho ?\tHer .\t0",
            "q2\tWhen ?\tNow .\t0",
        ],
    )
    assert as_tuples(trecqa.read(src)) == [
        ("q1", "Who ?", ["q1-0", "q1-1"], ["Him .", "Her ."], [1, 0]),
        ("q2", "When ?", ["q2-0"], ["Now ."], [0]),
    ]
    assert [q.lines for q in trecqa.read(src)] == [[2, 3], [4]]


# --- SelQA -------------------------------------------------------------------------------------------


SELQA_ROWS = ["Who ?\tHim .\t1", "Who ?\tHer .\t0", "When ?\tNow .\t0", "Who ?\tThem .\t1"]


@pytest.mark.parametrize("header", [False, True])
def test_selqa_tsv_groups_consecutive_text(tmp_path, capsys, header):
    src = write(
        tmp_path / "SelQA-ass-test.tsv", (["question\tsentence\tlabel"] if header else []) + SELQA_ROWS
    )
    out = tmp_path / "o"
    stats = run(["--source", "selqa", "--input", str(src), "--output", str(out)], capsys)
    assert stats["questions"] == 3
    # "Who ?" comes back after another question: a new question with a new id.
    assert as_tuples(load_questions(out)) == [
        ("0", "Who ?", ["0-0", "0-1"], ["Him .", "Her ."], [1, 0]),
        ("1", "When ?", ["1-0"], ["Now ."], [0]),
        ("2", "Who ?", ["2-0"], ["Them ."], [1]),
    ]


def test_selqa_json(tmp_path, capsys):
    items = [
        {"question": "Who ?", "sentences": ["Him .", "Her .", "It ."], "candidates": [1], "type": 3},
        {"question": "Who ?", "sentences": ["Them ."], "candidates": [], "is_paraphrase": True},
    ]
    src = tmp_path / "selqa-dump"  # no extension: detected from the content
    src.write_text(json.dumps(items))
    out = tmp_path / "o"
    run(["--source", "selqa", "--input", str(src), "--output", str(out)], capsys)
    assert as_tuples(load_questions(out)) == [
        ("0", "Who ?", ["0-0", "0-1", "0-2"], ["Him .", "Her .", "It ."], [0, 1, 0]),
        ("1", "Who ?", ["1-0"], ["Them ."], [0]),
    ]
    items[1]["candidates"] = [4]
    src.write_text(json.dumps(items, indent=2))  # the second object starts on line 14
    with pytest.raises(DataError, match=r"selqa-dump, line 14, item 2: field 'candidates' holds 4"):
        selqa.read(src)
    del items[1]["sentences"]
    (tmp_path / "s.json").write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"s\.json, line 1, item 2: missing field 'sentences'"):
        selqa.read(tmp_path / "s.json")


def test_selqa_bad_label(tmp_path, capsys):
    src = write(tmp_path / "s.tsv", [*SELQA_ROWS, "Why ?\tBecause .\tyes"])
    fails(
        ["--source", "selqa", "--input", str(src), "--output", str(tmp_path / "o")],
        capsys,
        f"{src}, line 5",
        "'label'",
    )


# --- ASNQ --------------------------------------------------------------------------------------------


def test_asnq_labels_and_grouping(tmp_path, capsys):
    src = write(
        tmp_path / "dev.tsv",
        ["who is it\ts1\t1", "who is it\ts2\t4", "who is it\ts3\t3", "what is it\ts4\t2", "who is it\ts5\t4"],
    )
    out = tmp_path / "o"
    stats = run(["--source", "asnq", "--input", str(src), "--output", str(out)], capsys)
    assert (stats["questions"], stats["pairs"], stats["positives"], stats["clean_questions"]) == (3, 5, 2, 1)
    assert as_tuples(load_questions(out)) == [
        ("0", "who is it", ["0-0", "0-1", "0-2"], ["s1", "s2", "s3"], [0, 1, 0]),
        ("1", "what is it", ["1-0"], ["s4"], [0]),
        ("2", "who is it", ["2-0"], ["s5"], [1]),
    ]
    stats = run(
        ["--source", "asnq", "--input", str(src), "--output", str(out), "--limit_questions", "1"], capsys
    )
    assert (stats["questions"], stats["pairs"]) == (1, 3)


@pytest.mark.parametrize("label", ["0", "5", "four"])
def test_asnq_bad_label(tmp_path, capsys, label):
    src = write(tmp_path / "dev.tsv", ["who\ts1\t1", f"who\ts2\t{label}"])
    fails(
        ["--source", "asnq", "--input", str(src), "--output", str(tmp_path / "o")],
        capsys,
        f"{src}, line 2",
        "'label'",
        "1 or 2 or 3 or 4",
    )


# --- tables ------------------------------------------------------------------------------------------

TABLE = [
    {"id": "a", "q": "Who ?", "sid": "x1", "s": 'He said "yes",\nthen left .', "y": 1},
    {"id": "a", "q": "Who ?", "sid": "x2", "s": "Nobody .", "y": 0},
    {"id": "b", "q": "Why ?", "sid": "x1", "s": "Because .", "y": 0},
]
MAPPING = ["--question_col", "q", "--candidate_col", "s", "--label_col", "y"]


def write_table(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(buf.getvalue())
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_table_with_ids(tmp_path, capsys, suffix):
    src = write_table(tmp_path / f"pairs{suffix}", TABLE)
    out = tmp_path / "o"
    stats = run(
        [
            "--source",
            "table",
            "--input",
            str(src),
            "--output",
            str(out),
            *MAPPING,
            "--qid_col",
            "id",
            "--cid_col",
            "sid",
        ],
        capsys,
    )
    assert (stats["questions"], stats["pairs"], stats["positives"]) == (2, 3, 1)
    assert as_tuples(load_questions(out)) == [
        ("a", "Who ?", ["x1", "x2"], ['He said "yes",\nthen left .', "Nobody ."], [1, 0]),
        ("b", "Why ?", ["x1"], ["Because ."], [0]),
    ]


def test_table_tsv_without_ids_and_format_flag(tmp_path):
    src = write(
        tmp_path / "pairs.txt",
        ["q\ts\ty", 'Who ?\tHe said "yes .\t1', "Who ?\tNo .\t0", "Why ?\tBecause .\t0"],
    )
    got = table.read(src, "q", "s", "y", format="tsv")
    assert as_tuples(got) == [
        ("0", "Who ?", ["0-0", "0-1"], ['He said "yes .', "No ."], [1, 0]),
        ("1", "Why ?", ["1-0"], ["Because ."], [0]),
    ]


def test_table_csv_line_numbers_follow_quoted_newlines(tmp_path, capsys):
    rows = [*TABLE, {"id": "c", "q": "How ?", "sid": "x1", "s": "Somehow .", "y": 3}]
    src = write_table(tmp_path / "pairs.csv", rows)
    # Header on line 1, the first record spans lines 2-3, so the fourth record starts on line 6.
    fails(
        ["--source", "table", "--input", str(src), "--output", str(tmp_path / "o"), *MAPPING],
        capsys,
        f"{src}, line 6",
        "'y'",
        "'3'",
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_table_missing_column(tmp_path, suffix):
    src = write_table(tmp_path / f"pairs{suffix}", TABLE)
    with pytest.raises(DataError, match=rf"{src.name}.*missing (column|field) 'label'"):
        table.read(src, "q", "s", "label")


def test_table_empty_question_names_line(tmp_path):
    rows = [*TABLE, {"id": "c", "q": " ", "sid": "x1", "s": "Somehow .", "y": 1}]
    src = write_table(tmp_path / "pairs.jsonl", rows)
    questions = table.read(src, "q", "s", "y", qid_col="id")
    from as2.data import validate

    with pytest.raises(DataError, match=r"pairs\.jsonl, line 4 \(question 'c'\): field 'question' is empty"):
        validate(questions, str(src))


def test_table_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="--format"):
        table.read(tmp_path / "pairs.xlsx", "q", "s", "y")


# --- hub ---------------------------------------------------------------------------------------------

WIKI_QA_ROWS = {
    "question_id": ["Q1", "Q1", "Q2"],
    "question": [
        "how are glacier caves formed?",
        "how are glacier caves formed?",
        "how much is 1 tablespoon",
    ],
    "document_title": ["Glacier cave", "Glacier cave", "Tablespoon"],
    "answer": ["A partly submerged glacier cave .", "A glacier cave is a cave .", "It is 15 ml ."],
    "label": [0, 1, 1],
}


def test_hub_with_monkeypatched_load_dataset(tmp_path, capsys, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, subset=None, split=None):
        calls.append((name, subset, split))
        return datasets.Dataset.from_dict(WIKI_QA_ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    out = tmp_path / "o"
    stats = run(
        ["--source", "hub", "--input", "microsoft/wiki_qa", "--split", "validation", "--output", str(out)],
        capsys,
    )
    assert calls == [("microsoft/wiki_qa", None, "validation")]
    assert (stats["questions"], stats["pairs"], stats["positives"], stats["source"]) == (
        2,
        3,
        2,
        "microsoft/wiki_qa",
    )
    assert as_tuples(load_questions(out)) == [
        ("Q1", WIKI_QA_ROWS["question"][0], ["Q1-0", "Q1-1"], WIKI_QA_ROWS["answer"][:2], [0, 1]),
        ("Q2", WIKI_QA_ROWS["question"][2], ["Q2-0"], WIKI_QA_ROWS["answer"][2:], [1]),
    ]
    with pytest.raises(DataError, match=r"missing column\(s\) \['qid'\]"):
        hub.read("microsoft/wiki_qa", qid_col="qid")


def test_hub_real_load_dataset_on_local_folder(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    folder = tmp_path / "wiki_qa_local"
    folder.mkdir()
    rows = [
        dict(zip(WIKI_QA_ROWS, values, strict=True)) for values in zip(*WIKI_QA_ROWS.values(), strict=True)
    ]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = hub.read(str(folder), split="test", limit_questions=1)
    assert as_tuples(got) == [
        ("Q1", WIKI_QA_ROWS["question"][0], ["Q1-0", "Q1-1"], WIKI_QA_ROWS["answer"][:2], [0, 1])
    ]


# --- the real WikiQA files ---------------------------------------------------------------------------

PUBLISHED = {  # questions, pairs, positives, clean questions, clean pairs (None: not published)
    "test": (633, 6165, 293, 237, 2341),
    "train": (2118, 20360, 1040, 857, None),
    "dev": (296, 2733, 140, 122, None),
}


@pytest.mark.parametrize("split", list(PUBLISHED))
def test_wikiqa_published_counts(tmp_path, capsys, split):
    src = WIKIQA / f"WikiQA-{split}.tsv"
    if not src.is_file():
        pytest.skip(f"{src} not available")
    stats = run(["--source", "wikiqa", "--input", str(src), "--output", str(tmp_path / split)], capsys)
    got = (
        stats["questions"],
        stats["pairs"],
        stats["positives"],
        stats["clean_questions"],
        stats["clean_pairs"],
    )
    want = PUBLISHED[split]
    assert got[:4] == want[:4] and (want[4] is None or got[4] == want[4])
    assert len(load(tmp_path / split)) == want[0]


def test_asnq_streams_and_the_bench_counts_what_it_generated(tmp_path):
    """Bugs caught: ASNQ held whole in memory (a list of 20M rows; now a stream that save() writes as it
    reads), questions split or merged at the stream's batch boundaries, counts that differ from the input."""
    from data_prep import asnq, bench_asnq

    source = tmp_path / "train.tsv"  # ~1,500 questions: the Arrow writer's batches of 1,000 are crossed
    questions = bench_asnq.generate(source, lines=3000, candidates=2, seed=1)
    stream = asnq.read(source)
    assert not isinstance(stream, list)
    result = bench_asnq.main(["--lines", "3000", "--candidates", "2", "--seed", "1", "--out", str(tmp_path / "b"),
                              "--keep_input"])  # fmt: skip
    assert result["converted"]["questions"] == questions == result["questions"]
    assert result["converted"]["pairs"] == 3000 and result["lines_per_s"] > 0
    assert 0 < result["peak_anon_mib"] <= result["peak_rss_mib"]
    ds = load(tmp_path / "b" / "split")
    labels = [y for row in ds["labels"] for y in row]
    rows = [line.split("\t") for line in source.read_text().splitlines()]
    assert labels == [int(r[2] == "4") for r in rows]  # label 4 alone is a correct answer
    sizes = []  # questions as the file has them: runs of consecutive rows with the same question text
    for i, r in enumerate(rows):
        if i and r[0] == rows[i - 1][0]:
            sizes[-1] += 1
        else:
            sizes.append(1)
    assert questions > 1000 and [len(c) for c in ds["cids"]] == sizes
    assert ds["question"] == [r[0] for i, r in enumerate(rows) if not i or r[0] != rows[i - 1][0]]
