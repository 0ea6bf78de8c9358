"""Texts in, vectors out: batched encoding with a twin tower, and streaming readers of corpora.

A corpus is read as a stream of ``(doc_id, text)`` and never held whole:

- a converted split (``data_prep.convert``): every candidate sentence, doc id ``"<qid>/<cid>"`` (cids are
  unique only within a question; :func:`split_doc_id` maps an id back through the split itself);
- a TSV file (``id<TAB>text`` per line, no header) or a JSONL file (``{"id": ..., "text": ...}`` per
  line). Empty texts and ids are :class:`as2.data.DataError` naming the file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from as2 import precision as precisions
from as2.batching import length_batches
from as2.data import SUMMARY_FILE, DataError


def doc_id(qid: str, cid: str) -> str:
    return f"{qid}/{cid}"


def corpus_kind(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.is_dir():
        if not (p / SUMMARY_FILE).is_file():
            raise DataError(f"{p}: not a converted AS2 split (no {SUMMARY_FILE}) nor a corpus file")
        return "split"
    if not p.is_file():
        raise DataError(f"{p}: corpus does not exist")
    if p.suffix in (".jsonl", ".json"):
        return "jsonl"
    if p.suffix in (".tsv", ".txt"):
        return "tsv"
    raise DataError(f"{p}: unknown corpus format (expected a split folder, .tsv or .jsonl)")


def read_corpus(path: str | os.PathLike, what: str = "text") -> Iterator[tuple[str, str, str]]:
    """Yield ``(id, text, where)`` of every document (``where`` names file and line, for errors)."""
    p = Path(path)
    kind = corpus_kind(p)
    if kind == "split":
        from as2.data import load

        ds = load(p)
        for batch in ds.select_columns(["qid", "cids", "candidates"]).iter(batch_size=256):
            for qid, cids, texts in zip(batch["qid"], batch["cids"], batch["candidates"], strict=True):
                for cid, text in zip(cids, texts, strict=True):
                    yield doc_id(qid, cid), text, f"{p} (question {qid!r}, candidate {cid!r})"
        return
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{p}, line {lineno}"
            if kind == "tsv":
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 2:
                    raise DataError(
                        f"{where}: expected 2 tab-separated fields 'id<TAB>text', got {len(parts)}"
                    )
                item_id, text = parts
            else:
                try:
                    obj = json.loads(line)
                    item_id, text = str(obj["id"]), obj["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise DataError(f"{where}: expected a JSON object with 'id' and 'text' ({e})") from None
            if not item_id.strip() or any(c.isspace() for c in item_id):
                raise DataError(f"{where}: field 'id' is {item_id!r} (must be one non-empty word)")
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: field '{what}' of {item_id!r} is empty")
            yield item_id, text, where


def read_queries(path: str | os.PathLike) -> list[tuple[str, str]]:
    """A queries file (TSV or JSONL: id, text); empty text or a repeated id is a :class:`DataError`."""
    if corpus_kind(path) == "split":
        raise DataError(f"{path}: give a queries file (TSV or JSONL), or the split as --data")
    out, seen = [], set()
    for qid, text, where in read_corpus(path, what="query text"):
        if qid in seen:
            raise DataError(f"{where}: query id {qid!r} appears twice")
        seen.add(qid)
        out.append((qid, text))
    if not out:
        raise DataError(f"{path}: no queries")
    return out


@torch.inference_mode()
def encode(
    model,
    texts: Sequence[str],
    side: str,
    batch_size: int = 64,
    max_length: int | None = None,
    progress=None,
    precision: str = "auto",
) -> np.ndarray:
    """``[len(texts), H]`` float32 vectors from the ``side`` tower (``query`` or ``doc``).

    Texts are encoded longest-first inside the call so that each batch pads little; the output keeps the
    input order. ``precision`` (auto | fp32 | bf16, see ``as2.precision``) is the towers' autocast; the
    vectors are float32 either way.
    """
    tokenizer = model.query_tokenizer if side == "query" else model.doc_tokenizer
    max_length = max_length or model.config.max_length
    device = next(model.parameters()).device
    autocast = precisions.autocast(precision, device)
    out = np.empty((len(texts), model.dim), dtype=np.float32)
    for idx in length_batches([len(t) for t in texts], batch_size, longest_first=True):
        inputs = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        inputs = {
            k: v.to(device)
            for k, v in inputs.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        with autocast:
            out[idx] = model.embed(side, **inputs).float().cpu().numpy()
        if progress is not None:
            progress.update(len(idx))
    return out
