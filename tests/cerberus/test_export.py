"""cerberus.export: a head as a standard sequence-classification model, same scores, same ranking."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from as2.config import ConfigError
from cerberus import Ranker, export
from cerberus.modeling import CerberusStudent, StudentConfig

QUESTION = "where was he born ?"
CANDIDATES = ["the river is long .", "he was born in paris .", "paris is the capital of france .", "no ."]


def _student(encoder_dir, out, heads=("a", "b"), pooling="cls", body=2, head=1):
    torch.manual_seed(1)
    config = StudentConfig(head_names=list(heads), body_layers=body, head_layers=head, pooling=pooling)
    model = CerberusStudent.from_encoder(str(encoder_dir), config)
    with torch.no_grad():  # heads that differ and logits spread well apart, so that rankings are strict
        for p in model.parameters():  # body, heads and MPNet's shared position bias all move
            p.add_(0.02 * torch.randn_like(p))
        for h in model.heads:
            h.classifier.out.weight.mul_(20)
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(encoder_dir)))
    return out


@pytest.mark.parametrize("arch", ["tiny_bert", "tiny_mpnet"])
def test_exported_head_scores_and_ranks_as_the_student(arch, request, tmp_path, pickles):
    """Bugs caught: head layers at the wrong depth, the wrong head, the classifier mapped to the wrong place."""
    from sentence_transformers import CrossEncoder

    student_dir = _student(request.getfixturevalue(arch), tmp_path / "student")
    summary = export.main(["--model", str(student_dir), "--out", str(tmp_path / "std"), "--head", "b"])
    assert summary["head"] == "b" and summary["max_abs_diff"] <= export.MAX_DIFF
    assert not pickles(tmp_path / "std") and (tmp_path / "std" / "model.safetensors").is_file()

    standard = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "std")).eval()
    assert standard.config.num_labels == 1 and standard.config.num_hidden_layers == 3
    student = CerberusStudent.from_pretrained(student_dir)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "std"))
    enc = tok([QUESTION] * len(CANDIDATES), CANDIDATES, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = standard(**enc).logits[:, 0]
        ours = student(**enc)["logits"]
    diff = (theirs - ours[:, 1]).abs().max().item()
    assert diff < 1e-5, f"max abs difference {diff:.2e}"
    assert not torch.allclose(theirs, ours[:, 0], atol=1e-3)  # head a is another function

    # sentence-transformers' CrossEncoder ranks as the project's Ranker on the one-head model
    one_head = student.head_subset(["b"])
    one_head.save_pretrained(tmp_path / "b", tokenizer=tok)
    ours_ranked = Ranker(tmp_path / "b", precision="fp32").rank(QUESTION, CANDIDATES)
    theirs_ranked = CrossEncoder(str(tmp_path / "std"), device="cpu").rank(QUESTION, CANDIDATES)
    assert [h["corpus_id"] for h in theirs_ranked] == [h["corpus_id"] for h in ours_ranked]
    np.testing.assert_allclose(
        [h["score"] for h in theirs_ranked], [h["score"] for h in ours_ranked], atol=1e-5
    )  # both are sigmoid(logit)


def test_refusals_name_the_reason(tiny_bert, tiny_mpnet, tmp_path):
    two = _student(tiny_bert, tmp_path / "two")
    with pytest.raises(ConfigError, match=r"has 2 heads \['a', 'b'\]: choose one with --head"):
        export.main(["--model", str(two), "--out", str(tmp_path / "x")])
    with pytest.raises(ConfigError, match="no head named 'c'"):
        export.main(["--model", str(two), "--out", str(tmp_path / "x"), "--head", "c"])
    mean = _student(tiny_bert, tmp_path / "mean", heads=("t",), pooling="mean")
    with pytest.raises(ConfigError, match="pools with 'mean'"):
        export.main(["--model", str(mean), "--out", str(tmp_path / "x")])

    # an MPNet head that learned its own relative position bias (students saved before the bias was shared
    # with the body) has no exact standard form
    torch.manual_seed(0)
    config = StudentConfig(["t"], body_layers=2, pooling="cls", share_encoder_extras=False)
    mp = CerberusStudent.from_encoder(str(tiny_mpnet), config)
    with torch.no_grad():
        mp.heads[0].layers.encoder.relative_attention_bias.weight.add_(0.1)
    with pytest.raises(ConfigError, match="relative_attention_bias"):
        export.to_standard(mp)
    assert not (tmp_path / "x").exists()  # nothing written by any refusal


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cerberus.export",
            "--model",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "none" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_export_record(tiny_bert, tmp_path):
    student_dir = _student(tiny_bert, tmp_path / "s", heads=("t",))
    export.main(["--model", str(student_dir), "--out", str(tmp_path / "std"), "--max_length", "64"])
    record = json.loads((tmp_path / "std" / "export.json").read_text())
    assert record["head"] == "t" and record["class"] == "BertForSequenceClassification"
    from sentence_transformers import CrossEncoder

    assert CrossEncoder(str(tmp_path / "std"), device="cpu").max_length == 64
