"""The two ways a twin ranks: a question's own candidates through the crossing layer, or an index's top k.

Both give ``{qid: {id: score}}`` with the model's score (``scale * <q, d> + bias`` under the cosine
crossing), so a question's own candidates get the same scores either way.
"""

from __future__ import annotations

import torch

from twin.encode import doc_id, encode


def top(cands: dict[str, float], k: int) -> dict[str, float]:
    return dict(sorted(cands.items(), key=lambda kv: -kv[1])[:k]) if k else cands


@torch.inference_mode()
def rerank(model, ds, k: int, batch_size: int, precision: str = "auto") -> dict[str, dict[str, float]]:
    """Every question's own candidates scored by the crossing, in blocks of questions (bounded memory)."""
    run: dict[str, dict[str, float]] = {}
    for block in ds.select_columns(["qid", "question", "cids", "candidates"]).iter(batch_size=256):
        q_vec = torch.from_numpy(encode(model, block["question"], "query", batch_size, precision=precision))
        texts = [t for cands in block["candidates"] for t in cands]
        d_vec = torch.from_numpy(encode(model, texts, "doc", batch_size, precision=precision))
        owner = torch.repeat_interleave(
            torch.arange(len(q_vec)), torch.tensor([len(c) for c in block["cids"]])
        )
        scores = model.crossing(q_vec[owner], d_vec).tolist()
        pos = 0
        for qid, cids in zip(block["qid"], block["cids"], strict=True):
            run[qid] = top(dict(zip(cids, scores[pos : pos + len(cids)], strict=True)), k)
            pos += len(cids)
    return run


def retrieve(
    model,
    vindex,
    queries: list[tuple[str, str]],
    k: int,
    batch_size: int,
    params: str,
    own=None,
    precision: str = "auto",
):
    """Top-``k`` hits per query from the index; with ``own`` (qid -> cids) only a question's own candidates."""
    scale = model.crossing.log_scale.exp().item()
    bias = model.crossing.bias.item()
    run: dict[str, dict[str, float]] = {}
    for s in range(0, len(queries), 1024):
        block = queries[s : s + 1024]
        q_vec = encode(model, [t for _, t in block], "query", batch_size, precision=precision)
        scores, hits = vindex.search(q_vec, k, params)
        for (qid, _), row, ids in zip(block, scores, hits, strict=True):
            if own is None:
                run[qid] = {d: scale * float(x) + bias for d, x in zip(ids, row, strict=False)}
            else:
                mine = {doc_id(qid, c): c for c in own[qid]}
                run[qid] = {
                    mine[d]: scale * float(x) + bias for d, x in zip(ids, row, strict=False) if d in mine
                }
    return run
