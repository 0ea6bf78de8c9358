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
