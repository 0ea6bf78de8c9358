"""twin.modeling: pooling and crossing on hand-made tensors, save/load parity, sentence-transformers export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from twin.encode import encode
from twin.export import export_sentence_transformer
from twin.losses import TwinDistillLoss
from twin.modeling import CosineCrossing, Pooling, ResidualCrossing, TwinConfig, TwinModel, fingerprint

TEXTS = ["where was he born ?", "paris is the capital of france", "a", "the long river"]


def test_pooling_by_hand_and_padding_ignored():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])  # [1, 3, 2], last token is padding
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(Pooling("cls", 2)(hidden, mask), torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(Pooling("mean", 2)(hidden, mask), torch.tensor([[2.0, 3.0]]))
    weighted = Pooling("weighted", 2)
    with torch.no_grad():
        weighted.weight.weight.copy_(torch.tensor([[1.0, 0.0]]))
        weighted.weight.bias.zero_()
    w = torch.softmax(torch.tensor([1.0, 3.0]), 0)  # token scores 1 and 3; the padded token gets none
    assert torch.allclose(weighted(hidden, mask), (w[:, None] * hidden[0, :2]).sum(0, keepdim=True))
    other = hidden.clone()
    other[0, 2] = torch.tensor([-7.0, 9.0])  # whatever sits under the padding changes nothing
    for pool in (Pooling("mean", 2), weighted):
        assert torch.allclose(pool(hidden, mask), pool(other, mask))


def test_pooling_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected hidden"):
        Pooling("mean", 2)(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="pooling must be"):
        Pooling("max", 2)


def test_cosine_crossing_scale_and_bias():
    cross = CosineCrossing(init_scale=2.0)
    with torch.no_grad():
        cross.bias.fill_(0.5)
    q = torch.tensor([[1.0, 0.0]])
    d = torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]])
    assert cross(q, d).item() == pytest.approx(2.0 * math.sqrt(0.5) + 0.5, abs=1e-6)
    assert cross.matrix(q, torch.cat([d, q])).shape == (1, 2)


def test_residual_crossing_matrix_matches_pairs():
    torch.manual_seed(0)
    cross = ResidualCrossing(4)
    q, d = torch.randn(2, 4), torch.randn(3, 4)
    m = cross.matrix(q, d)
    assert m.shape == (2, 3)
    assert torch.allclose(m[1, 2], cross(q[1:2], d[2:3])[0])
    assert not cross.inner_product


@pytest.mark.parametrize("pooling", ["cls", "mean", "weighted"])
def test_embeddings_normalized_with_cosine_and_save_load(tiny_bert, tmp_path, pooling):
    torch.manual_seed(0)
    model = TwinModel.from_encoders(str(tiny_bert), TwinConfig(pooling=pooling, max_length=32))
    emb = encode(model, TEXTS, "doc", batch_size=3)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    model.save_pretrained(tmp_path / "m")
    again = TwinModel.from_pretrained(tmp_path / "m")
    assert np.allclose(encode(again, TEXTS, "query"), encode(model, TEXTS, "query"), atol=1e-6)
    # the fingerprint names the content, not the folder: a copy has the same one, other weights another
    import shutil

    shutil.copytree(tmp_path / "m", tmp_path / "copy")
    assert fingerprint(tmp_path / "copy") == fingerprint(tmp_path / "m")
    with torch.no_grad():
        again.crossing.bias.add_(1.0)
    again.save_pretrained(tmp_path / "other")
    assert fingerprint(tmp_path / "other") != fingerprint(tmp_path / "m")


def test_separate_towers_residual_save_load(tiny_bert, tmp_path):
    import shutil

    from transformers import AutoModel

    doc = shutil.copytree(tiny_bert, tmp_path / "doc_encoder")
    torch.manual_seed(1)
    AutoModel.from_config(AutoModel.from_pretrained(str(doc)).config).save_pretrained(
        str(doc)
    )  # other weights
    torch.manual_seed(0)
    cfg = TwinConfig(pooling="mean", crossing="res", shared=False, max_length=32)
    model = TwinModel.from_encoders(str(tiny_bert), cfg, doc=str(doc))
    assert model.doc_tower is not model.query_tower
    assert np.linalg.norm(encode(model, TEXTS[:1], "doc")) != pytest.approx(1.0)  # res: not normalized
    model.save_pretrained(tmp_path / "m")
    again = TwinModel.from_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "doc_tokenizer").is_dir()
    assert not np.allclose(encode(again, TEXTS, "doc"), encode(again, TEXTS, "query"))
    tok_q = model.query_tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    tok_d = model.doc_tokenizer(TEXTS[2:], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(dict(tok_q), dict(tok_d)), again(dict(tok_q), dict(tok_d)), atol=1e-6)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sentence_transformers_export_same_embeddings(tiny_bert, tmp_path, pooling, pickles):
    from sentence_transformers import SentenceTransformer

    model = TwinModel.from_encoders(str(tiny_bert), TwinConfig(pooling=pooling, max_length=32))
    folder = export_sentence_transformer(model, tmp_path / "st", side="doc")
    assert not pickles(folder)  # weights as safetensors only: loading the export runs no code
    st = SentenceTransformer(str(folder), device="cpu")
    assert np.allclose(st.encode(TEXTS, convert_to_numpy=True), encode(model, TEXTS, "doc"), atol=1e-5)


def test_export_refuses_weighted_pooling(tiny_bert, tmp_path):
    model = TwinModel.from_encoders(str(tiny_bert), TwinConfig(pooling="weighted"))
    with pytest.raises(ValueError, match="weighted"):
        export_sentence_transformer(model, tmp_path / "st")
    assert not (tmp_path / "st").exists()


def test_losses_by_hand():
    s = torch.tensor([[0.0, 1.0]])
    t = torch.tensor([[0.0, -1.0]])
    labels, mask = torch.tensor([[0, 1]]), torch.tensor([[True, True]])
    mse, logs = TwinDistillLoss("mse")(s, t, labels, mask)
    expect = ((torch.sigmoid(torch.tensor(1.0)) - torch.sigmoid(torch.tensor(-1.0))) ** 2 / 2).item()
    assert mse.item() == pytest.approx(expect, abs=1e-6)
    kl, _ = TwinDistillLoss("kl", temperature=2.0)(t.clone(), t, labels, mask)
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    padded, _ = TwinDistillLoss("mse")(
        torch.tensor([[0.0, 1.0, 9.0]]),
        torch.tensor([[0.0, -1.0, -9.0]]),
        torch.tensor([[0, 1, 0]]),
        torch.tensor([[True, True, False]]),
    )
    assert padded.item() == pytest.approx(expect, abs=1e-6)
    neg = torch.tensor([[5.0]])
    total, logs = TwinDistillLoss("mse", inbatch=1.0)(s, t, labels, mask, neg, torch.tensor([[True]]))
    ce = -(1.0 - torch.logsumexp(torch.tensor([0.0, 1.0, 5.0]), 0)).item()
    assert logs["loss/inbatch"] == pytest.approx(ce, abs=1e-5)
    assert total.item() == pytest.approx(expect + ce, abs=1e-5)
    with pytest.raises(ValueError, match="teacher scores"):
        TwinDistillLoss("mse")(s, None, labels, mask)
