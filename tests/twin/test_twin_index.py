"""twin.store / twin.index: exact neighbours, id order, resume, fingerprints and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import twin.store as store
from as2 import data
from as2.data import DataError
from twin import index as index_main
from twin.encode import encode, read_corpus
from twin.modeling import TwinConfig, TwinModel
from twin.store import build_index, new_index, open_index

SENTENCES = [
    "paris is the capital of france",
    "the river is long",
    "he was born in paris",
    "she was born in a city",
    "what is the answer",
    "the capital of france is paris",
    "they born long",
    "who is he",
    "the sentence is a question",
    "a city on the river",
]


@pytest.fixture(scope="module")
def twin_dir(tiny_bert, tmp_path_factory):
    torch.manual_seed(0)
    model = TwinModel.from_encoders(str(tiny_bert), TwinConfig(pooling="mean", max_length=32))
    out = tmp_path_factory.mktemp("twin") / "model"
    model.save_pretrained(out)
    return out


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.tsv"
    path.write_text("".join(f"d{i}\t{t}\n" for i, t in enumerate(SENTENCES)))
    return path


def test_flat_exact_neighbours_on_toy_vectors():
    index = new_index(3, "Flat")
    docs = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0], [0, 0, 1]], dtype=np.float32)
    index.add(docs)
    scores, rows = index.search(np.array([[0.8, 0.6, 0]], dtype=np.float32), 3)
    assert rows[0].tolist() == [2, 0, 1]  # inner products 0.96, 0.8, 0.6
    assert np.allclose(scores[0], [0.96, 0.8, 0.6])
    with pytest.raises(ValueError, match="index spec"):
        new_index(3, "NoSuchIndex")


def test_build_keeps_ids_and_scores(twin_dir, corpus, tmp_path):
    meta = index_main.main(
        [
            "--model",
            str(twin_dir),
            "--corpus",
            str(corpus),
            "--out",
            str(tmp_path / "idx"),
            "--chunk_size",
            "3",
        ]
    )
    assert meta["count"] == len(SENTENCES) and meta["normalized"] and meta["spec"] == "Flat"
    vi = open_index(tmp_path / "idx")
    assert vi.ids == [f"d{i}" for i in range(len(SENTENCES))]
    model = TwinModel.from_pretrained(twin_dir)
    q = encode(model, ["where was he born ?"], "query")
    d = encode(model, SENTENCES, "doc")
    scores, hits = vi.search(q, 4)
    exact = d @ q[0]  # the tiny random encoder ties often: compare scores, and ids through their scores
    assert np.allclose(scores[0], np.sort(exact)[::-1][:4], atol=1e-5)
    assert np.allclose([exact[int(h[1:])] for h in hits[0]], scores[0], atol=1e-5)
    assert not list(tmp_path.glob(".idx.*"))  # work and temp folders are gone


def test_resume_after_interruption_gives_same_index(twin_dir, corpus, tmp_path, monkeypatch):
    build_index(twin_dir, corpus, tmp_path / "fresh", chunk_size=3, progress=False)
    calls = []
    real = store.encode

    def flaky(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_index(twin_dir, corpus, tmp_path / "idx", chunk_size=3, progress=False)
    assert not (tmp_path / "idx").exists()  # nothing that looks complete
    calls.clear()
    build_index(twin_dir, corpus, tmp_path / "idx", chunk_size=3, progress=False)
    assert calls == [3, 1]  # the two chunks spilled before the interruption were not encoded again
    a, b = open_index(tmp_path / "fresh"), open_index(tmp_path / "idx")
    q = np.random.default_rng(0).normal(size=(3, a.meta["dim"])).astype(np.float32)
    (sa, ha), (sb, hb) = a.search(q, 5), b.search(q, 5)
    assert ha == hb and np.allclose(sa, sb) and a.ids == b.ids


def test_killed_while_writing_leaves_no_index_and_resumes_without_encoding(
    twin_dir, corpus, tmp_path, monkeypatch
):
    """Bug caught: an index folder written in place, so a kill between faiss.write_index and meta.json leaves
    a folder that opens as an index with missing ids (or a resume that encodes every chunk again)."""
    calls = []
    real_replace, real_encode = data.replace_dir, store.encode

    def killed(tmp, out):
        assert (tmp / "meta.json").is_file()  # the complete folder exists, beside the target only
        raise KeyboardInterrupt("killed")

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(data, "replace_dir", killed)
    monkeypatch.setattr(store, "encode", counting)
    with pytest.raises(KeyboardInterrupt):
        build_index(twin_dir, corpus, tmp_path / "idx", chunk_size=3, progress=False)
    assert not (tmp_path / "idx").exists() and not list(tmp_path.glob(".idx.tmp-*"))
    calls.clear()
    monkeypatch.setattr(data, "replace_dir", real_replace)
    build_index(twin_dir, corpus, tmp_path / "idx", chunk_size=3, progress=False)
    assert calls == []  # every chunk was spilled before the kill: nothing encoded again
    build_index(twin_dir, corpus, tmp_path / "fresh", chunk_size=3, progress=False)
    a, b = open_index(tmp_path / "fresh"), open_index(tmp_path / "idx")
    q = np.random.default_rng(0).normal(size=(3, a.meta["dim"])).astype(np.float32)
    (sa, ha), (sb, hb) = a.search(q, 5), b.search(q, 5)
    assert a.ids == b.ids and ha == hb and np.allclose(sa, sb)


def test_trained_index_from_a_split(twin_dir, tiny_split, tmp_path):
    meta = build_index(
        twin_dir, tiny_split, tmp_path / "idx", spec="IVF2,Flat", chunk_size=10, progress=False
    )
    vi = open_index(tmp_path / "idx")
    assert meta["doc_ids"] == "<qid>/<cid>" and vi.ids[0] == "0/0-0" and vi.index.is_trained


def test_fingerprint_and_dimension_mismatch(twin_dir, corpus, tmp_path, tiny_bert):
    build_index(twin_dir, corpus, tmp_path / "idx", progress=False)
    vi = open_index(tmp_path / "idx")
    with pytest.raises(ValueError, match="fingerprint"):
        vi.check_model("0" * 64, vi.meta["dim"])
    with pytest.raises(ValueError, match="dimension"):
        vi.check_model(vi.meta["fingerprint"], 7)
    with pytest.raises(ValueError, match=r"queries must be \[Q, 32\]"):
        vi.search(np.zeros((1, 7), dtype=np.float32), 1)


def test_bad_corpora(twin_dir, tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty corpus"):
        build_index(twin_dir, empty, tmp_path / "a", progress=False)
    dup = tmp_path / "dup.jsonl"
    dup.write_text(
        json.dumps({"id": "x", "text": "a city"}) + "\n" + json.dumps({"id": "x", "text": "b"}) + "\n"
    )
    with pytest.raises(DataError, match=r"dup.jsonl, line 2: document id 'x' appears twice"):
        build_index(twin_dir, dup, tmp_path / "b", progress=False)
    blank = tmp_path / "blank.tsv"
    blank.write_text("d1\tparis\nd2\t  \n")
    with pytest.raises(DataError, match=r"blank.tsv, line 2: field 'text' of 'd2' is empty"):
        list(read_corpus(blank))
    with pytest.raises(DataError, match="unknown corpus format"):
        build_index(twin_dir, blank.rename(tmp_path / "corpus.csv"), tmp_path / "c", progress=False)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no index, no work or temp folder


def test_residual_crossing_refused(tiny_bert, corpus, tmp_path):
    model = TwinModel.from_encoders(str(tiny_bert), TwinConfig(crossing="res"))
    model.save_pretrained(tmp_path / "res")
    with pytest.raises(ValueError, match="not an inner product"):
        build_index(tmp_path / "res", corpus, tmp_path / "idx", progress=False)


def test_missing_and_corrupt_index_files(twin_dir, corpus, tmp_path):
    build_index(twin_dir, corpus, tmp_path / "idx", progress=False)
    (tmp_path / "idx" / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(DataError, match=r"index.faiss: cannot be read"):
        open_index(tmp_path / "idx")
    (tmp_path / "idx" / "index.faiss").unlink()
    with pytest.raises(DataError, match=r"index.faiss: missing"):
        open_index(tmp_path / "idx")
    build_index(twin_dir, corpus, tmp_path / "idx2", progress=False)
    (tmp_path / "idx2" / "ids.txt").write_text("d0\n")
    with pytest.raises(DataError, match="inconsistent index"):
        open_index(tmp_path / "idx2")
    (tmp_path / "idx2" / "meta.json").write_text("{")
    with pytest.raises(DataError, match="meta.json: corrupt"):
        open_index(tmp_path / "idx2")


def test_two_ranks_build_the_index_of_one_process(twin_dir, tmp_path, launch):
    """Bugs caught: chunks encoded twice or by no rank, shards merged with clashing ids (IVF), ids.txt out of
    the order the merged index holds its vectors, so that a hit names another document."""
    corpus = tmp_path / "corpus.tsv"  # 40 documents in chunks of 3: 14 chunks shared by 2 ranks
    corpus.write_text(
        "".join(f"d{i}\t{SENTENCES[i % 10]} {SENTENCES[i // 10]}\n" for i in range(40))
    )  # distinct
    for spec in ("Flat", "IVF2,Flat", "HNSW8"):
        name = spec.replace(",", "_")
        build_index(twin_dir, corpus, tmp_path / f"one_{name}", spec=spec, chunk_size=3, progress=False)
        launch("twin/index.py", "--model", twin_dir, "--corpus", corpus, "--out", tmp_path / f"two_{name}",
               "--spec", spec, "--chunk_size", "3")  # fmt: skip
        a, b = open_index(tmp_path / f"one_{name}"), open_index(tmp_path / f"two_{name}")
        assert sorted(a.ids) == sorted(b.ids) and a.meta["count"] == b.meta["count"] == 40
        q = np.random.default_rng(0).normal(size=(5, a.meta["dim"])).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        (sa, ha), (sb, hb) = a.search(q, 5), b.search(q, 5)
        assert ha == hb and np.allclose(sa, sb, atol=1e-5), spec
        assert not list(tmp_path.glob(f".two_{name}.work*"))
