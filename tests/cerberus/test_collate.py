"""cerberus.collate.GroupCollator: length chunks score every pair as one padded batch does, with less padding."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoTokenizer

from as2.batching import epoch_batches, question_groups
from as2.data import load
from cerberus.collate import GroupCollator, encode_pairs, forward_chunks, scatter, teacher_stats
from cerberus.modeling import CerberusStudent, StudentConfig


@pytest.fixture(scope="module")
def parts(tiny_split, tiny_bert):
    ds = load(tiny_split)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    groups = question_groups([len(c) for c in ds["cids"]], 4)
    torch.manual_seed(0)
    config = StudentConfig(head_names=["t1", "t2"], body_layers=2, head_layers=1)
    model = CerberusStudent.from_encoder(str(tiny_bert), config).eval()
    return ds, tok, groups, model


def collate(parts, k: int, micro: int = 3):
    ds, tok, groups, _ = parts
    collator = GroupCollator(ds, tok, 32, [["t1"], ["t2"]], teacher_stats(ds, ["t1", "t2"]), length_chunks=k)
    return [collator(items) for items in epoch_batches(groups, micro, 0, seed=1)]


def scores(model, batch) -> torch.Tensor:
    with torch.no_grad():
        logits = forward_chunks(model, batch["inputs"])["logits"]
    return scatter(logits, batch["index"], tuple(batch["mask"].shape))  # [Q, C, k]


@pytest.mark.parametrize("k", [2, 3, 50])
def test_chunks_score_each_pair_as_one_padded_batch(parts, k):
    model = parts[3]
    whole, chunked = collate(parts, 1), collate(parts, k)
    assert len(whole) == len(chunked) > 0
    for one, many in zip(whole, chunked, strict=True):
        assert len(one["inputs"]) == 1 and 1 < len(many["inputs"]) <= k
        for key in ("labels", "mask", "teacher"):
            assert torch.equal(one[key], many[key])
        assert sorted(map(tuple, one["index"].tolist())) == sorted(map(tuple, many["index"].tolist()))
        torch.testing.assert_close(scores(model, many), scores(model, one), atol=1e-5, rtol=1e-5)


def test_chunks_are_length_sorted_and_pad_less(parts):
    whole, chunked = collate(parts, 1), collate(parts, 3)
    computed = {name: sum(c["input_ids"].numel() for b in bs for c in b["inputs"])
                for name, bs in (("whole", whole), ("chunked", chunked))}  # fmt: skip
    real = sum(int(c["attention_mask"].sum()) for b in whole for c in b["inputs"])
    assert real <= computed["chunked"] < computed["whole"]
    for batch in chunked:
        lengths = [c["attention_mask"].sum(1).tolist() for c in batch["inputs"]]
        assert all(min(lengths[i + 1]) >= max(lengths[i]) for i in range(len(lengths) - 1))
        assert all(c["input_ids"].shape[1] == max(n) for c, n in zip(batch["inputs"], lengths, strict=True))


def test_length_chunks_must_be_positive(parts):
    ds, tok, _, _ = parts
    with pytest.raises(ValueError, match="length_chunks"):
        GroupCollator(ds, tok, 32, None, length_chunks=0)


@pytest.mark.parametrize("side", ["right", "left"])
def test_each_chunk_is_its_pairs_tokenized_alone(parts, side):
    ds, tok, groups, _ = parts
    tok = copy.deepcopy(tok)
    tok.padding_side = side
    collator = GroupCollator(ds, tok, 32, None, length_chunks=3)
    for items in epoch_batches(groups, 3, 0, seed=1):
        batch = collator(items)
        pairs = []  # the batch's pairs in chunk order, read back through its index
        for i, s in batch["index"].tolist():
            row = ds[items[i].question]
            pairs.append((row["question"], row["candidates"][items[i].candidates[s]]))
        for chunk in batch["inputs"]:
            mine, pairs = pairs[: len(chunk["input_ids"])], pairs[len(chunk["input_ids"]) :]
            alone = encode_pairs(tok, [q for q, _ in mine], [c for _, c in mine], 32)
            assert chunk.keys() == alone.keys()
            for key in chunk:
                assert torch.equal(chunk[key], alone[key]), key
        assert not pairs
