"""Question groups -> twin inputs: questions and candidates tokenized apart, ``[Q, C]`` targets."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from as2.batching import Group


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> dict:
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


class TwinCollator:
    """Builds a micro-batch from :class:`as2.batching.Group` items.

    Returns ``query`` (one tokenized question per group, ``Q``), ``doc`` (the groups' candidates, ``N``),
    ``labels`` / ``mask`` / ``teacher`` ``[Q, C]`` (``teacher`` is ``None`` without a teacher column),
    ``index`` ``[N, 2]`` (group, slot of each candidate) and ``owner`` ``[N]`` / ``group_question`` ``[Q]``
    (dataset row of each candidate / group: a candidate is an in-batch negative for the groups of *other*
    questions only).
    """

    def __init__(self, dataset, query_tokenizer, doc_tokenizer, max_length: int, teacher: str | None):
        self.questions = dataset["question"]
        self.candidates = dataset["candidates"]
        self.labels = dataset["labels"]
        self.teacher = dataset[teacher] if teacher else None
        self.query_tokenizer, self.doc_tokenizer, self.max_length = query_tokenizer, doc_tokenizer, max_length

    def __call__(self, groups: Sequence[Group]) -> dict:
        width = max(len(g) for g in groups)
        labels = torch.zeros(len(groups), width, dtype=torch.long)
        mask = torch.zeros(len(groups), width, dtype=torch.bool)
        teacher = torch.zeros(len(groups), width) if self.teacher is not None else None
        docs, index, owner = [], [], []
        for i, g in enumerate(groups):
            n = len(g)
            labels[i, :n] = torch.tensor(g.pick(self.labels[g.question]))
            mask[i, :n] = True
            if teacher is not None:
                teacher[i, :n] = torch.tensor(g.pick(self.teacher[g.question]), dtype=torch.float32)
            docs.extend(g.pick(self.candidates[g.question]))
            index.extend((i, s) for s in range(n))
            owner.extend([g.question] * n)
        return {
            "query": tokenize(
                self.query_tokenizer, [self.questions[g.question] for g in groups], self.max_length
            ),
            "doc": tokenize(self.doc_tokenizer, docs, self.max_length),
            "labels": labels,
            "mask": mask,
            "teacher": teacher,
            "index": torch.tensor(index),
            "owner": torch.tensor(owner),
            "group_question": torch.tensor([g.question for g in groups]),
        }
