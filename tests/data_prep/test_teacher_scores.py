"""data_prep.teacher_scores: every teacher kind, TREC runs, resume after interruption, stale-score safety."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from as2.data import SUMMARY_FILE, load
from as2.runs import read_run, write_run
from cerberus import teachers
from cerberus.modeling import CerberusStudent, StudentConfig
from cerberus.scoring import score_pairs
from data_prep import teacher_scores


@pytest.fixture(scope="module")
def tiny_student(tiny_bert, tmp_path_factory):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = CerberusStudent.from_encoder(str(tiny_bert), StudentConfig(head_names=["ce"], body_layers=2))
    out = tmp_path_factory.mktemp("teacher") / "ce"
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    return out


@pytest.fixture(scope="module")
def tiny_bi_encoder(tiny_bert, tmp_path_factory):
    from sentence_transformers import SentenceTransformer, models

    out = tmp_path_factory.mktemp("bi") / "st"
    word = models.Transformer(str(tiny_bert), max_seq_length=32)
    SentenceTransformer(modules=[word, models.Pooling(word.get_embedding_dimension())]).save(str(out))
    return out


def run_main(split, out, runs_dir, specs, *extra):
    return teacher_scores.main(
        [
            "--data",
            str(split),
            "--output",
            str(out),
            "--runs_dir",
            str(runs_dir),
            "--teachers",
            json.dumps(specs),
            "--max_length",
            "32",
            *extra,
        ]
    )


def test_model_teachers_store_scores_and_runs(tiny_split, tiny_student, tiny_bi_encoder, tmp_path):
    specs = {
        "ce": {"kind": "cerberus", "path": str(tiny_student)},
        "bi": {"kind": "bi-encoder", "path": str(tiny_bi_encoder)},
    }
    summary = run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs)
    ds = load(tmp_path / "scored")
    assert {"ce", "bi", "t1", "t2"} <= set(ds.column_names)  # existing teacher columns are kept
    assert summary["teachers"]["ce"]["fingerprint"] != summary["teachers"]["bi"]["fingerprint"]

    # the stored logits are the student's own, in candidate order
    from transformers import AutoTokenizer

    model = CerberusStudent.from_pretrained(tiny_student)
    row = ds[3]
    expect = score_pairs(
        model,
        AutoTokenizer.from_pretrained(str(tiny_student)),
        [row["question"]] * len(row["cids"]),
        row["candidates"],
        max_length=32,
    )[:, 0]
    np.testing.assert_allclose(row["ce"], expect, rtol=1e-5, atol=1e-6)
    from sentence_transformers import SentenceTransformer  # the bi-encoder's cosines, in candidate order

    bi = SentenceTransformer(str(tiny_bi_encoder), device="cpu")
    q, c = (
        bi.encode([row["question"]], normalize_embeddings=True),
        bi.encode(row["candidates"], normalize_embeddings=True),
    )
    np.testing.assert_allclose(row["bi"], (c @ q[0]).tolist(), rtol=1e-4, atol=1e-5)

    name, run = read_run(tmp_path / "runs" / "ce.trec")
    assert name == "ce"
    assert run[row["qid"]] == pytest.approx(dict(zip(row["cids"], row["ce"], strict=True)))
    meta = json.loads((tmp_path / "scored" / SUMMARY_FILE).read_text())
    assert meta["teachers"]["bi"]["kind"] == "bi-encoder"
    assert not (tmp_path / ".scored.cache").exists()  # chunk cache dropped once the split is written


def test_cross_encoder_logits_are_float32_under_bf16(tiny_bert, tmp_path):
    """Bug caught: a sentence-transformers CrossEncoder scored under bf16 autocast returned its logits
    rounded to bf16 (~3 digits: 49 distinct scores for 64 near-identical pairs), so the peers' close
    candidates tied and pessimistic ties counted against them."""
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    CrossEncoder(str(tiny_bert), num_labels=1, max_length=32, device="cpu").save(str(tmp_path / "ce"))
    spec = {"kind": "cross-encoder", "path": str(tmp_path / "ce")}
    bf16, fp32 = (teachers.load_teacher(spec, 8, 32, p) for p in ("bf16", "fp32"))
    questions = ["where was he born ?"] * 16
    candidates = [f"he was born in paris in {1900 + i} ." for i in range(16)]
    scores = bf16.score(questions, candidates, ["q"] * 16, [str(i) for i in range(16)])
    rounded = torch.tensor(scores).bfloat16().float().numpy()
    assert (scores != rounded).sum() >= 12  # float32 values, not bf16 ones (a few may fall on the bf16 grid)
    exact = fp32.score(questions, candidates, ["q"] * 16, [str(i) for i in range(16)])
    np.testing.assert_allclose(scores, exact, atol=0.05)  # the body still ran in bf16: close, not equal


def test_run_teacher_and_missing_pairs(tiny_split, tmp_path):
    ds = load(tiny_split)
    run = {r["qid"]: {c: float(i) for i, c in enumerate(r["cids"])} for r in ds}
    write_run(tmp_path / "other.trec", run, "other")
    run_main(
        tiny_split,
        tmp_path / "scored",
        tmp_path / "runs",
        {"sys": {"kind": "run", "path": str(tmp_path / "other.trec")}},
    )
    assert load(tmp_path / "scored")[0]["sys"] == [float(i) for i in range(len(ds[0]["cids"]))]

    first = ds[0]
    del run[first["qid"]][first["cids"][0]]
    write_run(tmp_path / "partial.trec", run, "partial")
    with pytest.raises(ValueError, match=f"no score for 1 pair.*{first['cids'][0]}"):
        run_main(
            tiny_split,
            tmp_path / "bad",
            tmp_path / "runs",
            {"p": {"kind": "run", "path": str(tmp_path / "partial.trec")}},
        )
    assert not (tmp_path / "bad").exists()


def test_only_scores_the_named_teachers(tiny_split, tmp_path):
    ds = load(tiny_split)
    run = {r["qid"]: {c: float(i) for i, c in enumerate(r["cids"])} for r in ds}
    write_run(tmp_path / "x.trec", run, "x")
    specs = {n: {"kind": "run", "path": str(tmp_path / "x.trec")} for n in ("a", "b", "c")}
    summary = run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs, "--only", "c", "a")
    assert set(summary["teachers"]) >= {"a", "c"} and "b" not in summary["teachers"]
    columns = set(load(tmp_path / "scored").column_names)
    assert {"a", "c"} <= columns and "b" not in columns
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a.trec", "c.trec"]
    with pytest.raises(ValueError, match=r"only: \['d'\] not among the configured teachers"):
        run_main(tiny_split, tmp_path / "o", tmp_path / "r", specs, "--only", "a", "d")


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way may swallow it."""


def test_interrupted_run_resumes_from_cached_chunks(tiny_split, tiny_student, tmp_path, monkeypatch):
    specs = {"ce": {"kind": "cerberus", "path": str(tiny_student)}}
    calls, armed = [], [True]
    real = teachers.CerberusTeacher.score

    def flaky(self, *args):
        calls.append(1)
        if armed[0] and len(calls) == 2:
            raise Killed  # killed while scoring the second chunk
        return real(self, *args)

    monkeypatch.setattr(teachers.CerberusTeacher, "score", flaky)
    with pytest.raises(Killed):
        run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs, "--chunk_questions", "4")
    assert not (tmp_path / "scored").exists()
    caches = list((tmp_path / ".scored.cache").iterdir())
    assert len(caches) == 1 and len(list(caches[0].glob("*.npy"))) == 1

    calls.clear()
    armed[0] = False
    run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs, "--chunk_questions", "4")
    assert len(calls) == 2  # 12 questions in 3 chunks of 4: the first one came from the cache

    monkeypatch.undo()
    fresh = run_main(tiny_split, tmp_path / "fresh", tmp_path / "runs2", specs, "--chunk_questions", "4")
    assert load(tmp_path / "fresh")["ce"] == load(tmp_path / "scored")["ce"]
    assert (
        fresh["teachers"]["ce"]["fingerprint"]
        == json.loads((tmp_path / "scored" / SUMMARY_FILE).read_text())["teachers"]["ce"]["fingerprint"]
    )


def test_fingerprint_changes_with_model_settings_and_data(tiny_student, tmp_path):
    import shutil

    fp = teachers.teacher_fingerprint(str(tiny_student), {"kind": "cerberus", "max_length": 32}, "data-a")
    assert fp == teachers.teacher_fingerprint(
        str(tiny_student), {"max_length": 32, "kind": "cerberus"}, "data-a"
    )
    assert fp != teachers.teacher_fingerprint(
        str(tiny_student), {"kind": "cerberus", "max_length": 64}, "data-a"
    )
    assert fp != teachers.teacher_fingerprint(
        str(tiny_student), {"kind": "cerberus", "max_length": 32}, "data-b"
    )
    other = tmp_path / "other"
    shutil.copytree(tiny_student, other)
    with open(other / "model.safetensors", "r+b") as f:  # same size, one byte of the weights changed
        at = 8 + int.from_bytes(f.read(8), "little") + 16  # past the 8-byte length and the JSON header
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 1]))
    assert fp != teachers.teacher_fingerprint(str(other), {"kind": "cerberus", "max_length": 32}, "data-a")


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ({"labels": {"kind": "run", "path": "x"}}, "base column"),
        ({"a b": {"kind": "run", "path": "x"}}, "one word"),
        ({"t": {"kind": "magic", "path": "x"}}, "kind"),
        ({"t": {"kind": "run"}}, "path"),
    ],
)
def test_bad_teacher_specs(tiny_split, tmp_path, specs, message):
    with pytest.raises(ValueError, match=message):
        run_main(tiny_split, tmp_path / "o", tmp_path / "r", specs)


def test_up_to_date_scores_are_reused_and_stale_ones_recomputed(
    tiny_split, tiny_student, tmp_path, monkeypatch
):
    specs = {"ce": {"kind": "cerberus", "path": str(tiny_student)}}
    first = run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs)
    calls = []
    real = teachers.CerberusTeacher.score
    monkeypatch.setattr(teachers.CerberusTeacher, "score", lambda self, *a: calls.append(1) or real(self, *a))
    again = run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs)
    assert calls == [] and again["teachers"] == first["teachers"]
    run_main(tiny_split, tmp_path / "scored", tmp_path / "runs", specs, "--max_length", "24")  # other setting
    assert len(calls) > 0


def test_clean_protocol_scores_only_clean_questions(tmp_path):
    from as2.data import Question, is_clean, save

    qs = [Question("a", "what ?"), Question("b", "who ?")]
    qs[0].add("a-0", "yes", 1)
    qs[0].add("a-1", "no", 0)
    qs[1].add("b-0", "no", 0)  # no correct candidate: not clean
    save(qs, tmp_path / "split", {"source": "t"})
    write_run(tmp_path / "r.trec", {"a": {"a-0": 1.0, "a-1": 0.0}, "b": {"b-0": 0.5}}, "r")
    summary = run_main(
        tmp_path / "split",
        tmp_path / "scored",
        tmp_path / "runs",
        {"r": {"kind": "run", "path": str(tmp_path / "r.trec")}},
        "--protocol",
        "clean",
    )
    ds = load(tmp_path / "scored")
    assert ds["qid"] == ["a"] and summary["questions"] == 1 and all(is_clean(x) for x in ds["labels"])


def test_two_ranks_under_the_launcher_score_as_one_process(
    tiny_split, tiny_student, tmp_path, launch, one_thread
):
    """Bugs caught: chunks scored twice or by no rank, shards merged out of order (a question gets another
    question's scores), ranks that disagree on what is up to date and hang, caches left behind."""
    specs = {"t": {"kind": "cerberus", "path": str(tiny_student)}}
    one = run_main(tiny_split, tmp_path / "one", tmp_path / "runs1", specs, "--chunk_questions", "2")
    argv = ["--data", tiny_split, "--output", tmp_path / "two", "--runs_dir", tmp_path / "runs2", "--teachers",
            json.dumps(specs), "--max_length", "32", "--chunk_questions", "2", "--precision", "fp32"]  # fmt: skip
    for _ in range(2):  # the second run: up to date on rank 0, so no rank scores (and none waits forever)
        launch("data_prep/teacher_scores.py", *argv)
    a, b = load(tmp_path / "one"), load(tmp_path / "two")
    assert a["qid"] == b["qid"] and a["t"] == b["t"]  # bit for bit: fp32 in both, same batches per chunk
    assert read_run(tmp_path / "runs1" / "t.trec") == read_run(tmp_path / "runs2" / "t.trec")
    assert one["pairs"] == json.loads((tmp_path / "two" / SUMMARY_FILE).read_text())["pairs"]
    assert not list(tmp_path.glob(".two.cache*"))
