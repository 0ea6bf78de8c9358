"""Precisions onnx / onnx_int8: the student exported to ONNX Runtime scores as the torch student."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from cerberus import Ranker
from cerberus.modeling import CerberusStudent, StudentConfig

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

QUESTION = "where was he born ?"
CANDIDATES = ["the river is long .", "he was born in paris .", "paris is the capital of france .", "yes"]


def _student(encoder_dir, out):
    torch.manual_seed(1)
    config = StudentConfig(head_names=["a", "b"], body_layers=1, head_layers=1, pooling="mean")
    model = CerberusStudent.from_encoder(str(encoder_dir), config)
    with torch.no_grad():  # logits spread well apart, so that rankings are strict
        for h in model.heads:
            h.classifier.out.weight.mul_(20)
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(encoder_dir)))
    return out


@pytest.mark.parametrize("arch", ["tiny_bert", "tiny_mpnet"])
def test_onnx_scores_and_ranks_as_the_torch_student(arch, request, tmp_path):
    """Bugs caught: the graph exported in training mode (dropout), token type ids fed to an encoder without
    them (MPNet), batch or length fixed at the example's shape, heads or the combined score swapped."""
    folder = _student(request.getfixturevalue(arch), tmp_path / "student")
    pairs = [(QUESTION, c) for c in CANDIDATES] + [
        ("who ?", "a much longer candidate sentence than the rest")
    ]
    torch_scores = Ranker(folder, precision="fp32", batch_size=2).score(pairs, heads=True)  # [N, k + 1]
    onnx = Ranker(folder, precision="onnx", batch_size=3)
    assert onnx.precision == "onnx"
    np.testing.assert_allclose(onnx.score(pairs, heads=True), torch_scores, atol=1e-4)
    ranked = [h["corpus_id"] for h in onnx.rank(QUESTION, CANDIDATES)]
    assert ranked == [h["corpus_id"] for h in Ranker(folder, precision="fp32").rank(QUESTION, CANDIDATES)]
    assert set(onnx.rank(QUESTION, CANDIDATES)[0]["heads"]) == {"a", "b"}

    int8 = Ranker(folder, precision="onnx_int8").score(pairs, heads=True)
    assert int8.shape == torch_scores.shape and np.isfinite(int8).all()
    assert 0 < np.abs(int8 - torch_scores).max() < 0.5  # quantized (not the fp32 graph), still close


def test_exported_onnx_folder_ranks_as_the_student_with_onnxruntime_alone(tiny_bert, tmp_path, pickles):
    """Bug caught: a mean-pooled or multi-head student (our default) that no standard format can carry; an
    exported graph whose inputs a user cannot feed from the tokenizer, or whose outputs drift from the student."""
    import onnxruntime

    from cerberus import export

    folder = _student(tiny_bert, tmp_path / "student")
    summary = export.main(["--model", str(folder), "--out", str(tmp_path / "onnx"), "--format", "onnx"])
    assert summary["heads"] == ["a", "b"] and summary["max_abs_diff"] <= export.MAX_DIFF
    files = {p.name for p in (tmp_path / "onnx").iterdir()}
    assert {"model.onnx", "export.json", "tokenizer_config.json"} <= files and not pickles(tmp_path / "onnx")
    assert not any(".fp32" in f or ".tmp" in f for f in files)

    # the README's few lines: a tokenizer and an ONNX Runtime session, nothing of this project
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    enc = tok([QUESTION] * len(CANDIDATES), CANDIDATES, padding=True, return_tensors="np")
    logits, score = session.run(None, {i.name: enc[i.name] for i in session.get_inputs()})
    ours = Ranker(folder, precision="fp32").score([(QUESTION, c) for c in CANDIDATES], heads=True)
    np.testing.assert_allclose(np.column_stack([logits, score]), ours, atol=1e-4)

    int8 = export.main(["--model", str(folder), "--out", str(tmp_path / "q"), "--format", "onnx_int8"])
    assert 0 < int8["max_abs_diff"] < 0.5 and (tmp_path / "q" / "model.onnx").is_file()
