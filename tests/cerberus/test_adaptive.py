"""cerberus.adaptive: heads one at a time, stopping on a clear lead; the full setting is the student itself."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoTokenizer

from as2.config import ConfigError
from as2.data import load_questions
from cerberus import adaptive
from cerberus.collate import encode_pairs
from cerberus.modeling import CerberusStudent, StudentConfig


@pytest.fixture(scope="module")
def student(tiny_bert, tmp_path_factory):
    torch.manual_seed(0)
    config = StudentConfig(["a", "b", "c"], body_layers=2, head_weights=[1, 2, 1])
    model = CerberusStudent.from_encoder(str(tiny_bert), config)
    with torch.no_grad():  # heads that disagree, with logits spread apart
        for h in model.heads:
            h.classifier.out.weight.normal_(std=2.0)
    out = tmp_path_factory.mktemp("adaptive") / "student"
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    return out


def test_full_setting_is_the_student_and_a_zero_lead_stops_after_one_head(student, split_factory, tmp_path):
    """Bugs caught: the running combination not the student's (weights), heads skipped, a stop never taken."""
    model = CerberusStudent.from_pretrained(student)
    tok = AutoTokenizer.from_pretrained(str(student))
    q = load_questions(split_factory(tmp_path / "d", n_questions=1))[0]
    enc = encode_pairs(tok, [q.question] * len(q.cids), list(q.candidates), 32)
    enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    full, ran = adaptive.rank_adaptive(model, enc, [2, 0, 1], math.inf)
    assert ran == 3
    with torch.no_grad():
        torch.testing.assert_close(full, model(**enc)["score"], atol=1e-6, rtol=0)
    first, ran = adaptive.rank_adaptive(model, enc, [2, 0, 1], 0.0)
    assert ran == 1
    with torch.no_grad():
        torch.testing.assert_close(first, torch.sigmoid(model(**enc)["logits"][:, 2]), atol=1e-6, rtol=0)


def test_thresholds_trade_heads_for_map_and_are_reported(student, split_factory, tmp_path):
    dev, test = (
        split_factory(tmp_path / "dev", seed=1),
        split_factory(tmp_path / "test", n_questions=16, seed=2),
    )
    result = adaptive.main(
        ["--model", str(student), "--dev", str(dev), "--data", str(test), "--out", str(tmp_path / "out"),
         "--thresholds", "0", "1e9", "--max_length", "32", "--repeats", "1", "--precision", "fp32"]
    )  # fmt: skip
    rows = result["settings"]
    assert list(rows) == ["full", "lead_0", "lead_1e+09"]
    assert rows["full"]["mean_heads"] == 3 and rows["lead_1e+09"]["mean_heads"] == 3
    assert rows["lead_0"]["mean_heads"] == 1  # every question has two candidates or more
    assert rows["lead_1e+09"]["map"] == pytest.approx(rows["full"]["map"])
    assert sorted(result["order"]) == ["a", "b", "c"]
    assert result["order"][0] == max(result["dev_map"], key=result["dev_map"].get)  # best head on dev first
    assert all(r["ms_per_pair"] > 0 for r in rows.values())
    assert (tmp_path / "out" / "lead_0.trec").is_file()
    assert json.loads((tmp_path / "out" / "adaptive.json").read_text())["questions"] == 16  # all clean


def test_one_head_is_refused(tiny_bert, split_factory, tmp_path):
    model = CerberusStudent.from_encoder(str(tiny_bert), StudentConfig(["t"], body_layers=2))
    model.save_pretrained(tmp_path / "one", tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    split = split_factory(tmp_path / "d")
    with pytest.raises(ConfigError, match="two or more heads"):
        adaptive.main(
            ["--model", str(tmp_path / "one"), "--dev", str(split), "--data", str(split), "--out", "x"]
        )
