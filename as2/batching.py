"""Batching: question groups for training (deterministic per epoch, sharded across ranks), and length-sorted
batches for inference.

A training example is a *group*: one question with up to ``max_candidates`` of its candidates (a question
with more candidates is split into several groups, each with the question's correct candidates where
``question_groups`` is given the labels), so listwise losses see whole candidate lists and pointwise ones
see pairs. The order of an epoch depends on ``(seed, epoch)`` only, which is what makes an
interrupted-and-resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Group:
    question: int  # row index in the dataset
    candidates: tuple[int, ...]  # indices of the question's candidates in this group, ascending

    def __len__(self) -> int:
        return len(self.candidates)

    def pick(self, values: Sequence) -> list:
        """This group's entries of a per-candidate column of its question (labels, texts, scores)."""
        return [values[i] for i in self.candidates]


def question_groups(
    num_candidates: Sequence[int], max_candidates: int, labels: Sequence[Sequence[int]] | None = None
) -> list[Group]:
    """Each question's candidates in groups of at most ``max_candidates``: consecutive slices, or, given
    ``labels``, a question too long for one group puts its correct candidates in every group beside a slice
    of its incorrect ones (so that no group lacks a positive, which a listwise label loss needs: a group of
    negatives only teaches it nothing). Consecutive slices where a question has no positive, or as many
    positives as a group holds."""
    if max_candidates < 1:
        raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
    groups = []
    for q, n in enumerate(num_candidates):
        positives = (
            [i for i, y in enumerate(labels[q]) if y > 0] if labels is not None and n > max_candidates else []
        )
        room = max_candidates - len(positives)
        if positives and room > 0:
            negatives = [i for i, y in enumerate(labels[q]) if y <= 0]
            slices = [negatives[s : s + room] for s in range(0, len(negatives), room)]
            groups.extend(Group(q, tuple(sorted(positives + part))) for part in slices)
        else:
            groups.extend(
                Group(q, tuple(range(s, min(n, s + max_candidates)))) for s in range(0, n, max_candidates)
            )
    return groups


def epoch_batches(
    groups: Sequence[Group], micro_batch: int, epoch: int, seed: int, rank: int = 0, world: int = 1
) -> list[list[Group]]:
    """This rank's micro-batches for ``epoch``: a seeded shuffle, cut into ``world`` equal shards.

    Every rank gets the same number of micro-batches (the shuffled tail that would make shards unequal is
    dropped for this epoch; the next epoch's shuffle puts other groups there).
    """
    if micro_batch < 1:
        raise ValueError(f"micro_batch must be >= 1, got {micro_batch}")
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(groups), generator=g).tolist()
    per_rank = len(order) // (micro_batch * world) * micro_batch
    mine = order[rank * per_rank : (rank + 1) * per_rank]
    return [[groups[i] for i in mine[j : j + micro_batch]] for j in range(0, per_rank, micro_batch)]


def length_batches(lengths: Sequence[int], batch_size: int, longest_first: bool = False) -> list[list[int]]:
    """Item indices in batches of similar length (so each batch pads little); results go back by index.

    Ties keep input order, so the batches of the same inputs are the same every time.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i] if longest_first else lengths[i])
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def micro_batches_per_epoch(num_groups: int, micro_batch: int, world: int = 1) -> int:
    return num_groups // (micro_batch * world)
