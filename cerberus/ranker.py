"""Rank candidates with a trained model folder: a CERBERUS student or a cross-encoder teacher trained here.

    from cerberus import Ranker

    ranker = Ranker("runs/demo/student/model")
    hits = ranker.rank("Where was Marie Curie born?", ["She won two Nobel prizes.", "She was born in Warsaw."])
    # [{"corpus_id": 1, "score": 0.91, "text": "She was born in Warsaw.", "heads": {...}}, ...]

``rank`` returns the candidates best first, as sentence-transformers' ``CrossEncoder.rank`` does (``corpus_id``
is the position in the input list), with the student's combined score and, for a multi-head student, each
head's logit. ``score`` scores ``(question, candidate)`` pairs in batches sorted by length. Precision is
``auto`` by default (bf16 where the hardware runs it natively, fp32 elsewhere; see ``as2.precision``);
``int8`` quantizes the Linear layers dynamically (``cerberus.scoring.for_inference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


class Ranker:
    """A saved student (``cerberus/train.py``'s ``model/``) with its tokenizer, ready to score and rank.

    Args:
        model_dir: the model folder (``cerberus_config.json``, ``model.safetensors``, tokenizer files).
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``int8`` (resolved once, here).
        batch_size: pairs per forward pass.
        max_length: tokens per (question, candidate) pair; longer pairs are truncated.
    """

    def __init__(
        self, model_dir: str | Path, precision: str = "auto", batch_size: int = 64, max_length: int = 128
    ):
        from transformers import AutoTokenizer

        from cerberus.modeling import CerberusStudent
        from cerberus.scoring import for_inference

        if batch_size < 1 or max_length < 8:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 8, got {batch_size}, {max_length}")
        model = CerberusStudent.from_pretrained(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model, self.precision, self.dtype = for_inference(model, precision)
        self.batch_size, self.max_length = batch_size, max_length

    @property
    def head_names(self) -> list[str]:
        return self.model.head_names

    def score(self, pairs: Sequence[tuple[str, str]], heads: bool = False) -> np.ndarray:
        """Scores of ``(question, candidate)`` pairs, in input order: ``[N]`` combined, or with ``heads``
        ``[N, k + 1]`` (each head's logit, then the combined score)."""
        from cerberus.scoring import score_pairs

        for i, pair in enumerate(pairs):
            if (
                not isinstance(pair, tuple | list)
                or len(pair) != 2
                or not all(isinstance(t, str) for t in pair)
            ):
                raise ValueError(f"pair {i}: expected (question, candidate) strings, got {pair!r}")
        out = score_pairs(
            self.model,
            self.tokenizer,
            [q for q, _ in pairs],
            [c for _, c in pairs],
            batch_size=self.batch_size,
            max_length=self.max_length,
            dtype=self.dtype,
        )
        return out if heads else out[:, -1]

    def rank(
        self,
        question: str,
        candidates: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = True,
    ) -> list[dict]:
        """The candidates of ``question`` best first: ``{"corpus_id", "score"[, "text"][, "heads"]}`` each.

        Equal scores keep the input order. ``top_k`` keeps the best ``k``; ``heads`` (each head's logit) is
        there for a student of more than one head.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError("rank: the question is empty")
        if isinstance(candidates, str) or not candidates:
            raise ValueError("rank: give a non-empty list of candidate sentences")
        if top_k is not None and top_k < 1:
            raise ValueError(f"rank: top_k must be >= 1, got {top_k}")
        scores = self.score([(question, c) for c in candidates], heads=True)  # [C, k + 1]
        order = sorted(range(len(candidates)), key=lambda i: -scores[i, -1])[:top_k]
        hits = []
        for i in order:
            hit = {"corpus_id": i, "score": float(scores[i, -1])}
            if return_documents:
                hit["text"] = candidates[i]
            if self.model.num_heads > 1:
                hit["heads"] = {h: float(scores[i, j]) for j, h in enumerate(self.head_names)}
            hits.append(hit)
        return hits
