"""cerberus.modeling: head parity, save/load parity, layer dropping, padding, shapes and combination."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cerberus.collate import encode_pairs
from cerberus.modeling import CerberusStudent, StudentConfig, find_layers

PAIRS = [
    ("where was he born ?", "he was born in paris"),
    ("what is the capital of france ?", "paris is the capital of france and a city on a river"),
    ("who was it ?", "no"),
]


@pytest.fixture(scope="module", params=["tiny_bert", "tiny_mpnet"])
def encoder_dir(request, tmp_path_factory):
    return request.getfixturevalue(request.param)


def build(encoder_dir, heads=("t1", "t2", "t3"), body=2, head=1, combine="prob_mean", seed=0):
    torch.manual_seed(seed)
    config = StudentConfig(head_names=list(heads), body_layers=body, head_layers=head, combine=combine)
    return CerberusStudent.from_encoder(str(encoder_dir), config).eval()


def inputs(encoder_dir, pairs=PAIRS):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(encoder_dir))
    enc = encode_pairs(tok, [q for q, _ in pairs], [c for _, c in pairs], max_length=32)
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def test_head_scores_like_a_one_head_student(encoder_dir):
    model = build(encoder_dir)
    with torch.no_grad():  # perturb one head's transformer layer, so heads differ beyond their classifiers
        for p in model.heads[1].layers.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = inputs(encoder_dir)
    with torch.no_grad():
        logits = model(**x)["logits"]  # [N, k]
        for h, name in enumerate(model.head_names):
            single = model.head_subset([name]).eval()
            assert single.head_names == [name] and single.config.head_names == [name]
            assert torch.equal(single(**x)["logits"][:, 0], logits[:, h])
    assert logits.shape == (len(PAIRS), 3)
    assert not torch.allclose(logits[:, 0], logits[:, 1])
    assert not torch.allclose(logits[:, 1], logits[:, 2])


def test_head_subset_rejects_unknown_heads_and_a_partial_pooler(tiny_bert):
    with pytest.raises(KeyError, match="nope"):
        build(tiny_bert).head_subset(["nope"])
    with pytest.raises(ValueError, match="pooler"):
        build(tiny_bert, combine="pooler").head_subset(["t1"])


@pytest.mark.parametrize("combine", ["prob_mean", "logit_mean", "pooler"])
def test_save_and_load_score_identically(encoder_dir, combine, tmp_path):
    model = build(encoder_dir, combine=combine)
    model.save_pretrained(tmp_path / "model")
    names = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert names == ["cerberus_config.json", "model.safetensors"]
    loaded = CerberusStudent.from_pretrained(tmp_path / "model")
    assert not loaded.training
    assert loaded.config.combine == combine and loaded.head_names == ["t1", "t2", "t3"]
    x = inputs(encoder_dir)
    with torch.no_grad():
        a, b = model(**x), loaded(**x)
    assert torch.equal(a["logits"], b["logits"])
    assert torch.equal(a["score"], b["score"])


@pytest.mark.parametrize("combine", ["prob_mean", "logit_mean"])
def test_combined_logit_is_the_logit_of_the_score(tiny_bert, combine):
    model = build(tiny_bert, combine=combine)
    model.weights = torch.tensor([0.5, 0.3, 0.2])
    with torch.no_grad():
        out = model(**inputs(tiny_bert))
        z = model.combined_logit(out["logits"])
    expected = torch.logit(out["score"].double()) if combine == "prob_mean" else out["score"].double()
    torch.testing.assert_close(z.double(), expected, atol=1e-5, rtol=1e-5)
    # far past where a sigmoid saturates in float32 it stays finite: log space, not logit(mean(sigmoid))
    big = torch.tensor([[60.0, 80.0, -90.0], [-70.0, -80.0, -60.0]])
    assert torch.isfinite(model.combined_logit(big)).all()
    with pytest.raises(ValueError, match="no closed-form logit"):
        build(tiny_bert, combine="pooler").combined_logit(big)


def test_save_with_tokenizer_writes_no_pickles(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    build(tiny_bert).save_pretrained(tmp_path, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "cerberus_config.json").is_file()
    assert not list(tmp_path.glob("*.bin")) + list(tmp_path.glob("*.pt"))
    assert AutoTokenizer.from_pretrained(str(tmp_path)).vocab_size > 0


def test_layers_above_the_heads_are_dropped_and_heads_start_from_layer_b(encoder_dir):
    from transformers import AutoModel

    model = build(encoder_dir, body=2, head=1)  # the fixture encoders have 4 layers
    body_parent, body_name = find_layers(model.body)
    assert len(getattr(body_parent, body_name)) == 2 and model.body.config.num_hidden_layers == 2
    full = AutoModel.from_pretrained(str(encoder_dir))
    full_parent, full_name = find_layers(full)
    assert len(getattr(full_parent, full_name)) == 4
    want = dict(getattr(full_parent, full_name)[2].named_parameters())
    body_first = dict(getattr(body_parent, body_name)[0].named_parameters())
    first = dict(getattr(full_parent, full_name)[0].named_parameters())
    for head in model.heads:
        parent, name = find_layers(head.layers)
        layers = getattr(parent, name)
        assert len(layers) == 1
        got = dict(layers[0].named_parameters())
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), key
    key = next(iter(want))
    assert torch.equal(body_first[key], first[key])
    assert not torch.equal(first[key], want[key])  # layers 0 and 2 differ: the check can fail


def test_a_pair_scores_the_same_alone_and_in_a_padded_batch(encoder_dir):
    model = build(encoder_dir)
    batch = inputs(encoder_dir)
    alone = inputs(encoder_dir, PAIRS[:1])
    assert batch["input_ids"].shape[1] > alone["input_ids"].shape[1]  # the first pair is padded in the batch
    with torch.no_grad():
        a, b = model(**alone), model(**batch)
    torch.testing.assert_close(a["logits"][0], b["logits"][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(a["score"][0], b["score"][0], atol=1e-5, rtol=0)


def test_zero_layer_heads_classify_the_body_output(encoder_dir):
    model = build(encoder_dir, body=2, head=0)
    assert all(head.layers is None for head in model.heads)
    with torch.no_grad():
        out = model(**inputs(encoder_dir))
    assert out["logits"].shape == (len(PAIRS), 3) and torch.isfinite(out["logits"]).all()
    assert out["score"].shape == (len(PAIRS),)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"body": 4, "head": 1}, "exceeds"),
        ({"body": 3, "head": 2}, "exceeds"),
        ({"heads": ("t1", "t1")}, "unique"),
        ({"combine": "max"}, "combine"),
    ],
)
def test_invalid_shapes_raise(tiny_bert, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(tiny_bert, **kwargs)


def test_invalid_config_values_raise():
    with pytest.raises(ValueError, match="at least one head"):
        StudentConfig(head_names=[], body_layers=1)
    with pytest.raises(ValueError, match=">= 0"):
        StudentConfig(head_names=["a"], body_layers=-1)
    with pytest.raises(ValueError, match="pooling"):
        StudentConfig(head_names=["a"], body_layers=1, pooling="max")


def test_constructor_checks_the_encoder_depth(tiny_bert):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(tiny_bert))
    with pytest.raises(ValueError, match="exceeds the encoder's 4 layers"):
        CerberusStudent(StudentConfig(head_names=["a"], body_layers=3, head_layers=2), encoder)


@pytest.mark.parametrize("combine", ["prob_mean", "logit_mean"])
def test_combination_of_head_logits(tiny_bert, combine):
    model = build(tiny_bert, combine=combine)
    with torch.no_grad():
        out = model(**inputs(tiny_bert))
    logits = out["logits"]
    want = torch.sigmoid(logits).mean(-1) if combine == "prob_mean" else logits.mean(-1)
    torch.testing.assert_close(out["score"], want, atol=1e-7, rtol=0)


@pytest.mark.parametrize("combine", ["prob_mean", "logit_mean"])
def test_combined_score_keeps_float32_under_bf16_autocast(tiny_bert, combine):
    """Bug caught: the weighted mean computed as a bf16 matmul under autocast (scoring and training run in
    autocast on bf16 machines): the score kept ~3 significant digits, so candidates whose heads differ
    slightly tied (a WikiQA test run had 292 tied candidates instead of 5), and pessimistic ties count
    every tie against the system."""
    config = StudentConfig(["t1", "t2", "t3"], body_layers=2, combine=combine, head_weights=[3, 4, 3])
    model = CerberusStudent.from_encoder(str(tiny_bert), config).eval()
    logits = torch.tensor(
        [[2.0, 1.0, 3.0], [2.001, 1.0, 3.0], [2.002, 1.0, 3.0]]
    )  # [N, k]: scores 1e-4 apart
    with torch.autocast("cpu", dtype=torch.bfloat16):
        score = model.mean_score(logits)
    per_head = torch.sigmoid(logits) if combine == "prob_mean" else logits
    assert score.dtype == torch.float32
    torch.testing.assert_close(score, per_head @ torch.tensor([0.3, 0.4, 0.3]), atol=1e-7, rtol=0)
    assert len(set(score.tolist())) == 3  # three scores, no tie


@pytest.mark.parametrize("combine", ["prob_mean", "logit_mean"])
def test_head_weights_weigh_the_combination_and_survive_save_and_subset(tiny_bert, combine, tmp_path):
    torch.manual_seed(0)
    config = StudentConfig(["t1", "t2", "t3"], body_layers=2, combine=combine, head_weights=[6, 3, 1])
    model = CerberusStudent.from_encoder(str(tiny_bert), config).eval()
    x = inputs(tiny_bert)
    with torch.no_grad():
        out = model(**x)
    per_head = torch.sigmoid(out["logits"]) if combine == "prob_mean" else out["logits"]
    want = per_head @ torch.tensor([0.6, 0.3, 0.1])
    torch.testing.assert_close(out["score"], want, atol=1e-6, rtol=0)
    assert not torch.allclose(out["score"], per_head.mean(-1))  # not the plain mean

    model.save_pretrained(tmp_path / "m")
    loaded = CerberusStudent.from_pretrained(tmp_path / "m")
    assert loaded.config.head_weights == [6, 3, 1]
    with torch.no_grad():
        assert torch.equal(loaded(**x)["score"], out["score"])
        pair = model.head_subset(["t3", "t1"])  # weights follow their heads: 1 and 6 of 7
        assert pair.config.head_weights == [1, 6]
        sub = pair(**x)
    sub_heads = torch.sigmoid(sub["logits"]) if combine == "prob_mean" else sub["logits"]
    torch.testing.assert_close(sub["score"], sub_heads @ torch.tensor([1 / 7, 6 / 7]), atol=1e-6, rtol=0)


def test_bad_head_weights_raise():
    with pytest.raises(ValueError, match="2 head weights for 3 heads"):
        StudentConfig(["a", "b", "c"], body_layers=1, head_weights=[1, 2])
    with pytest.raises(ValueError, match="positive sum"):
        StudentConfig(["a", "b"], body_layers=1, head_weights=[0, 0])
    with pytest.raises(ValueError, match="not to a learned pooler"):
        StudentConfig(["a", "b"], body_layers=1, combine="pooler", head_weights=[1, 2])


def test_bucketed_padding_scores_as_the_longest_pair_padding(tiny_bert):
    """Bug caught: padding tokens that leak into a score once batches are padded beyond their longest pair."""
    from transformers import AutoTokenizer

    from cerberus.scoring import score_pairs

    model = build(tiny_bert)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    questions, candidates = [q for q, _ in PAIRS] * 3, [c for _, c in PAIRS] * 3
    exact = score_pairs(model, tok, questions, candidates, batch_size=4, max_length=64, pad_multiple=None)
    bucketed = score_pairs(model, tok, questions, candidates, batch_size=4, max_length=64, pad_multiple=16)
    enc = encode_pairs(tok, questions[:2], candidates[:2], max_length=64, pad_multiple=16)
    assert enc["input_ids"].shape[1] % 16 == 0
    short = encode_pairs(tok, questions[:2], candidates[:2], max_length=24, pad_multiple=16)
    assert short["input_ids"].shape[1] <= 24  # a max_length off the grid: padded to the longest pair instead
    np.testing.assert_allclose(bucketed, exact, atol=1e-5)


def test_mpnet_heads_share_the_bodys_relative_position_bias(tiny_mpnet, tmp_path):
    """Bug caught: a head training its own copy of a parameter the encoder applies to every layer."""
    import json

    model = build(tiny_mpnet)
    bias = model.body.encoder.relative_attention_bias
    assert all(h.layers.encoder.relative_attention_bias is bias for h in model.heads)
    with torch.no_grad():
        bias.weight.add_(0.5)
    model.save_pretrained(tmp_path / "tied")
    loaded = CerberusStudent.from_pretrained(tmp_path / "tied")
    assert (
        loaded.heads[1].layers.encoder.relative_attention_bias is loaded.body.encoder.relative_attention_bias
    )
    x = inputs(tiny_mpnet)
    with torch.no_grad():
        assert torch.equal(loaded(**x)["logits"], model(**x)["logits"])

    # a student saved before the option (no key in its config) keeps one copy per head, as it was trained
    torch.manual_seed(0)
    config = StudentConfig(["t1", "t2"], body_layers=2, share_encoder_extras=False)
    old = CerberusStudent.from_encoder(str(tiny_mpnet), config).eval()
    with torch.no_grad():
        old.heads[0].layers.encoder.relative_attention_bias.weight.add_(0.5)
    old.save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "cerberus_config.json").read_text())
    del cfg["share_encoder_extras"]
    (tmp_path / "old" / "cerberus_config.json").write_text(json.dumps(cfg))
    again = CerberusStudent.from_pretrained(tmp_path / "old")
    assert (
        again.heads[0].layers.encoder.relative_attention_bias
        is not again.body.encoder.relative_attention_bias
    )
    with torch.no_grad():
        assert torch.equal(again(**x)["logits"], old(**x)["logits"])


def test_a_student_starts_from_a_fine_tuned_teacher_encoder(tiny_bert, tmp_path):
    """Bugs caught: a teacher folder read as a pretrained encoder (its head layers or embeddings lost, random
    layers added), the head's layers numbered over the body's, a multi-head student taken as a teacher."""
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    teacher = CerberusStudent.from_encoder(str(tiny_bert), StudentConfig(head_names=["t"], body_layers=2))
    with torch.no_grad():
        for p in teacher.parameters():  # "fine-tuned": away from the pretrained weights
            p.add_(0.1)
    teacher.save_pretrained(tmp_path / "teacher", tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    student = CerberusStudent.from_encoder(
        str(tmp_path / "teacher"), StudentConfig(head_names=["a", "b"], body_layers=1)
    )
    body, t_body = student.body.state_dict(), teacher.body.state_dict()
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(body[key], t_body[key]), key
    # the student's head layer is the teacher's body layer 1 (the stacked encoder's second layer)
    head = student.heads[0].layers.state_dict()
    assert torch.equal(
        head["encoder.layer.0.output.dense.weight"], t_body["encoder.layer.1.output.dense.weight"]
    )
    deep = CerberusStudent.from_encoder(
        str(tmp_path / "teacher"), StudentConfig(head_names=["a"], body_layers=2)
    )
    third = deep.heads[0].layers.state_dict()[
        "encoder.layer.0.output.dense.weight"
    ]  # the teacher's head layer
    assert torch.equal(third, teacher.heads[0].layers.state_dict()["encoder.layer.0.output.dense.weight"])
    with pytest.raises(ValueError, match="exceeds the 3 layers"):
        CerberusStudent.from_encoder(
            str(tmp_path / "teacher"), StudentConfig(head_names=["a"], body_layers=3)
        )
    student.save_pretrained(tmp_path / "two_heads")
    with pytest.raises(ValueError, match="one-head model"):
        CerberusStudent.from_encoder(
            str(tmp_path / "two_heads"), StudentConfig(head_names=["a"], body_layers=1)
        )
