"""Teachers of every kind behind one interface: ``score(questions, candidates, qids, cids) -> scores``.

A teacher's fingerprint hashes its model files (or run file), its kind and settings, and the data it
scores, so cached scores from another model, setting or split are never taken for current ones.

They live in ``cerberus`` because one kind is a CERBERUS student; ``data_prep.teacher_scores`` and
``cerberus.bench`` import them from here, and nothing in ``cerberus`` imports ``data_prep``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from as2 import precision as precisions
from as2.hashing import update_with_tree

logger = logging.getLogger(__name__)

KINDS = ("cerberus", "cross-encoder", "bi-encoder", "run")


def teacher_fingerprint(path: str, settings: dict, data_fp: str) -> str:
    h = hashlib.sha256()
    p = Path(path)
    if p.exists():
        update_with_tree(h, p)
    else:  # a hub name: its identity is the name (and the revision pinned by the hub cache)
        h.update(f"hub:{path}".encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(data_fp.encode())
    return h.hexdigest()


def data_fingerprint(questions) -> str:
    h = hashlib.sha256()
    for q in questions:
        h.update(json.dumps([q.qid, q.question, q.cids, q.candidates]).encode())
    return h.hexdigest()


class CerberusTeacher:
    """A student/cross-encoder trained here: the logit of its head (the combined score if it has several)."""

    def __init__(self, path: str, batch_size: int, max_length: int, precision: str):
        from transformers import AutoTokenizer

        from cerberus.modeling import CerberusStudent
        from cerberus.scoring import for_inference

        self.model, _, dtype = for_inference(CerberusStudent.from_pretrained(path), precision)  # int8 too
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.batch_size, self.max_length, self.dtype = batch_size, max_length, dtype

    def score(self, questions, candidates, qids, cids) -> np.ndarray:
        from cerberus.scoring import score_pairs

        out = score_pairs(self.model, self.tokenizer, questions, candidates, batch_size=self.batch_size,
                          max_length=self.max_length, dtype=self.dtype)  # fmt: skip
        return out[:, 0] if self.model.num_heads == 1 else out[:, -1]


def float32_logits(model) -> None:
    """Make the last ``Linear`` that outputs the ``num_labels`` logits of a transformers classification model
    compute in float32 under autocast: a bf16 logit keeps ~3 significant digits, so close candidates tie
    (and pessimistic ties count every tie against the model). The rest of the model keeps the autocast."""
    import torch

    outputs = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    outputs = [m for m in outputs if m.out_features == model.config.num_labels]
    if not outputs:
        raise ValueError(f"{type(model).__name__}: no Linear layer with {model.config.num_labels} outputs")
    layer, forward = outputs[-1], outputs[-1].forward

    def fp32_forward(x):
        with torch.autocast(x.device.type, enabled=False):
            return forward(x.to(layer.weight.dtype))

    layer.forward = fp32_forward


class CrossEncoderTeacher:
    """A sentence-transformers ``CrossEncoder``: its raw logit (no activation), computed in float32."""

    def __init__(self, path: str, batch_size: int, max_length: int, precision: str):
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(path, max_length=max_length, device=precisions.default_device())
        float32_logits(self.model.model)
        self.batch_size, self.precision = batch_size, precision

    def score(self, questions, candidates, qids, cids) -> np.ndarray:
        import torch

        with precisions.autocast(self.precision, self.model.device):
            logits = self.model.predict(
                list(zip(questions, candidates, strict=True)),
                batch_size=self.batch_size,
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
            )
        logits = np.asarray(logits, dtype=np.float32)
        return logits if logits.ndim == 1 else logits[:, -1]


class BiEncoderTeacher:
    """A ``SentenceTransformer``: cosine similarity of the question and candidate embeddings."""

    def __init__(self, path: str, batch_size: int, max_length: int, precision: str):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device=precisions.default_device())
        self.batch_size, self.precision = batch_size, precision

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))  # a question repeats once per candidate: encode it once
        with precisions.autocast(self.precision, self.model.device):
            emb = self.model.encode(
                unique, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        pos = {t: i for i, t in enumerate(unique)}
        return emb.astype(np.float32)[[pos[t] for t in texts]]

    def score(self, questions, candidates, qids, cids) -> np.ndarray:
        return (self._encode(questions) * self._encode(candidates)).sum(-1)


class RunTeacher:
    """A precomputed TREC run of any other system; every scored pair must be in it."""

    def __init__(self, path: str, **_):
        from as2.runs import read_run

        self.path = path
        self.name, self.run = read_run(path)

    def score(self, questions, candidates, qids, cids) -> np.ndarray:
        missing = [(q, c) for q, c in zip(qids, cids, strict=True) if c not in self.run.get(q, {})]
        if missing:
            raise ValueError(
                f"{self.path}: run {self.name!r} has no score for {len(missing)} pair(s), "
                f"e.g. (question, candidate) {missing[:5]}"
            )
        return np.array([self.run[q][c] for q, c in zip(qids, cids, strict=True)], dtype=np.float32)


def load_teacher(spec: dict, batch_size: int, max_length: int, precision: str = "auto"):
    """A teacher of ``spec["kind"]`` from ``spec["path"]``; ``precision``: auto | fp32 | bf16 (as2.precision),
    and int8 (dynamic quantization, ``cerberus.scoring.for_inference``) for the ``cerberus`` kind."""
    kinds = {
        "cerberus": CerberusTeacher,
        "cross-encoder": CrossEncoderTeacher,
        "bi-encoder": BiEncoderTeacher,
        "run": RunTeacher,
    }
    return kinds[spec["kind"]](
        spec["path"], batch_size=batch_size, max_length=max_length, precision=precision
    )
