"""Turn question groups into model inputs: tokenized (question, candidate) pairs and ``[Q, C]`` targets."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from as2.batching import Group


def encode_pairs(
    tokenizer,
    questions: Sequence[str],
    candidates: Sequence[str],
    max_length: int,
    pad_multiple: int | None = None,
) -> dict:
    """Tokenize pairs as cross-encoders see them: ``[CLS] question [SEP] candidate [SEP]``, padded to the
    longest pair (or up to a multiple of ``pad_multiple``: few distinct shapes, so CPU kernels are reused;
    only where ``max_length`` is itself a multiple, as the tokenizers require)."""
    if pad_multiple and max_length % pad_multiple:
        pad_multiple = None
    return tokenizer(
        list(questions),
        list(candidates),
        padding=True,
        truncation=True,
        max_length=max_length,
        pad_to_multiple_of=pad_multiple,
        return_tensors="pt",
    )


class GroupCollator:
    """Builds a training micro-batch from :class:`as2.batching.Group` items.

    Returns ``inputs`` (a list of tokenized chunks of pairs, ``N`` = real candidates in the batch, in
    chunk order), ``labels`` ``[Q, C]``, ``mask`` ``[Q, C]`` bool, ``teacher`` ``[Q, C, k]`` (or ``None``)
    and ``index`` ``[N, 2]`` (the (question, slot) of each pair in chunk order, to scatter pair scores back
    into ``[Q, C]``).

    ``length_chunks``: the micro-batch's pairs sorted by token length and cut into this many chunks, each
    padded to its own longest pair and run as its own forward pass; whole questions still make the
    micro-batch, so listwise losses see every candidate of a group. One padded batch of a WikiQA
    micro-batch (2 groups of up to 12 candidates) is 45% padding; 2 chunks cut the tokens computed by a
    quarter, and more chunks pad less but run smaller, slower passes (``cerberus.bench_train`` times them).
    """

    def __init__(
        self,
        dataset,
        tokenizer,
        max_length: int,
        teacher_columns: list[list[str]] | None,
        teacher_stats: dict[str, tuple[float, float]] | None = None,
        length_chunks: int = 1,
    ):
        if length_chunks < 1:
            raise ValueError(f"length_chunks must be >= 1, got {length_chunks}")
        self.length_chunks = length_chunks
        self.questions = dataset["question"]
        self.candidates = dataset["candidates"]
        self.labels = dataset["labels"]
        self.tokenizer, self.max_length = tokenizer, max_length
        self.teacher_columns = teacher_columns
        needed = sorted({c for cols in teacher_columns or [] for c in cols})
        self.scores = {c: dataset[c] for c in needed}
        self.stats = teacher_stats or {}

    def _teacher(self, g: Group, columns: list[str]) -> torch.Tensor:
        vals = []
        for c in columns:
            mean, std = self.stats.get(c, (0.0, 1.0))
            vals.append((torch.tensor(g.pick(self.scores[c][g.question]), dtype=torch.float32) - mean) / std)
        return torch.stack(vals).mean(0)  # [n]

    def __call__(self, groups: Sequence[Group]) -> dict:
        width = max(len(g) for g in groups)
        q_n, k = len(groups), len(self.teacher_columns or [])
        labels = torch.zeros(q_n, width, dtype=torch.long)
        mask = torch.zeros(q_n, width, dtype=torch.bool)
        teacher = torch.zeros(q_n, width, k) if k else None
        pair_q, pair_c, index = [], [], []
        for i, g in enumerate(groups):
            n = len(g)
            labels[i, :n] = torch.tensor(g.pick(self.labels[g.question]))
            mask[i, :n] = True
            for j, cols in enumerate(self.teacher_columns or []):
                teacher[i, :n, j] = self._teacher(g, cols)
            pair_q.extend([self.questions[g.question]] * n)
            pair_c.extend(g.pick(self.candidates[g.question]))
            index.extend((i, s) for s in range(n))
        inputs, order = self._chunks(pair_q, pair_c)
        return {
            "inputs": inputs,
            "labels": labels,
            "mask": mask,
            "teacher": teacher,
            "index": torch.tensor(index)[order],
        }

    def _chunks(self, questions: list[str], candidates: list[str]) -> tuple[list[dict], list[int]]:
        """The pairs tokenized once, cut into ``length_chunks`` length-sorted chunks (each trimmed to its
        own longest pair), and the pair order they follow."""
        enc = encode_pairs(self.tokenizer, questions, candidates, self.max_length)
        n = len(questions)
        k = min(self.length_chunks, n)
        if k <= 1:
            return [dict(enc)], list(range(n))
        lengths = enc["attention_mask"].sum(1)
        order = sorted(range(n), key=lambda i: int(lengths[i]))  # ties keep input order
        left = self.tokenizer.padding_side == "left"
        chunks = []
        for c in range(k):
            rows = torch.tensor(order[c * n // k : (c + 1) * n // k])
            width = int(lengths[rows].max())
            cols = slice(-width, None) if left else slice(0, width)
            chunks.append({key: value[rows][:, cols] for key, value in enc.items()})
        return chunks, order


def forward_chunks(model, chunks: list[dict], device=None) -> dict[str, torch.Tensor]:
    """``model``'s outputs over a micro-batch's chunks (``GroupCollator``'s ``inputs``), concatenated in
    chunk order: one forward pass per chunk."""
    outs = [model(**{k: v.to(device) if device is not None else v for k, v in c.items()}) for c in chunks]
    return {key: torch.cat([o[key] for o in outs]) for key in outs[0]}


def scatter(pair_values: torch.Tensor, index: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``[N, k]`` pair values -> ``[Q, C, k]`` (zeros at padding), following the collator's ``index``."""
    out = pair_values.new_zeros(*shape, pair_values.shape[-1])
    out[index[:, 0], index[:, 1]] = pair_values
    return out


def teacher_stats(ds, columns: list[str]) -> dict[str, tuple[float, float]]:
    """``{column: (mean, std)}`` of each teacher's scores over every pair of ``ds`` (for z-scoring)."""
    stats = {}
    for c in columns:
        values = torch.tensor([v for row in ds[c] for v in row], dtype=torch.float64)
        stats[c] = (values.mean().item(), max(values.std().item(), 1e-6))
    return stats
