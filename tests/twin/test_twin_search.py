"""twin.search: rerank and retrieve runs are valid TREC, agree with each other, and feed the cascade."""

from __future__ import annotations

import json

import pytest
import torch

from as2.data import DataError, load
from as2.runs import read_run
from twin import search
from twin.modeling import TwinConfig, TwinModel
from twin.store import build_index


@pytest.fixture(scope="module")
def setup(tiny_bert, tiny_split, tmp_path_factory):
    root = tmp_path_factory.mktemp("twin_search")
    torch.manual_seed(0)
    TwinModel.from_encoders(str(tiny_bert), TwinConfig(pooling="cls", max_length=32)).save_pretrained(
        root / "m"
    )
    build_index(root / "m", tiny_split, root / "idx", chunk_size=20, progress=False)
    return root


def run_search(setup, tiny_split, out, *extra):
    return search.main(["--model", str(setup / "m"), "--data", str(tiny_split), "--out", str(out), *extra])


def test_rerank_writes_valid_trec_run(setup, tiny_split, tmp_path):
    summary = run_search(setup, tiny_split, tmp_path, "--name", "tw", "--k", "3")
    name, run = read_run(tmp_path / "tw.trec")
    ds = load(tiny_split)
    assert name == "tw" and set(run) == set(ds["qid"])
    for qid, cids in zip(ds["qid"], ds["cids"], strict=True):
        assert set(run[qid]) <= set(cids) and len(run[qid]) == min(3, len(cids))
    assert json.loads((tmp_path / "tw.search.json").read_text())["pairs"] == summary["pairs"]


def test_retrieve_own_hits_match_rerank(setup, tiny_split, tmp_path):
    run_search(setup, tiny_split, tmp_path, "--name", "rr")
    run_search(
        setup,
        tiny_split,
        tmp_path,
        "--name",
        "ret",
        "--mode",
        "retrieve",
        "--index",
        str(setup / "idx"),
        "--k",
        "1000",
    )
    _, rr = read_run(tmp_path / "rr.trec")
    _, ret = read_run(tmp_path / "ret.trec")
    assert rr.keys() == ret.keys()
    for qid in rr:
        assert rr[qid].keys() == ret[qid].keys()
        assert all(rr[qid][c] == pytest.approx(ret[qid][c], abs=1e-4) for c in rr[qid])
    summary = run_search(
        setup,
        tiny_split,
        tmp_path,
        "--name",
        "all",
        "--mode",
        "retrieve",
        "--index",
        str(setup / "idx"),
        "--k",
        "5",
        "--hits",
        "all",
    )
    _, allrun = read_run(tmp_path / "all.trec")
    assert summary["pairs"] == 5 * len(allrun) and all("/" in d for hits in allrun.values() for d in hits)


def test_fingerprint_mismatch_is_an_error(setup, tiny_bert, tiny_split, tmp_path):
    # same encoder weights, another crossing scale: another model, so another fingerprint
    TwinModel.from_encoders(
        str(tiny_bert), TwinConfig(pooling="cls", max_length=32, init_scale=3.0)
    ).save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="fingerprint"):
        search.main(
            [
                "--model",
                str(tmp_path / "other"),
                "--data",
                str(tiny_split),
                "--out",
                str(tmp_path),
                "--mode",
                "retrieve",
                "--index",
                str(setup / "idx"),
                "--k",
                "3",
            ]
        )
    assert not list(tmp_path.glob("*.trec"))


def test_queries_file_with_empty_text(setup, tmp_path):
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\twhere was he born ?\nq2\t \n")
    args = [
        "--model",
        str(setup / "m"),
        "--queries",
        str(queries),
        "--out",
        str(tmp_path / "o"),
        "--mode",
        "retrieve",
        "--index",
        str(setup / "idx"),
        "--k",
        "3",
        "--hits",
        "all",
    ]
    with pytest.raises(DataError, match=r"q.tsv, line 2: field 'query text' of 'q2' is empty"):
        search.main(args)
    assert not (tmp_path / "o").exists()
    queries.write_text("q1\twhere was he born ?\n")
    assert search.main(args)["pairs"] == 3


def test_cascade_into_cerberus_predict(setup, tiny_bert, tiny_split, tmp_path):
    """The twin's top-2 run is the candidate list of the cross-encoder stage (through a file only)."""
    from cerberus import predict
    from cerberus.modeling import CerberusStudent, StudentConfig

    run_search(setup, tiny_split, tmp_path, "--name", "twin", "--k", "2")
    student = CerberusStudent.from_encoder(str(tiny_bert), StudentConfig(head_names=["t1"], body_layers=2))
    from transformers import AutoTokenizer

    student.save_pretrained(tmp_path / "ce", tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    out = predict.main(
        [
            "--model",
            str(tmp_path / "ce"),
            "--data",
            str(tiny_split),
            "--out",
            str(tmp_path / "p"),
            "--candidates",
            str(tmp_path / "twin.trec"),
            "--max_length",
            "32",
        ]
    )
    _, first = read_run(tmp_path / "twin.trec")
    _, second = read_run(tmp_path / "p" / "cerberus.trec")
    assert out["pairs"] == sum(len(v) for v in first.values())
    assert {q: set(v) for q, v in second.items()} == {q: set(v) for q, v in first.items()}
