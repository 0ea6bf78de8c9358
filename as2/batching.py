"""Batching: question groups for training (deterministic per epoch, sharded across ranks), and length-sorted
batches for inference.

A training example is a *group*: one question with up to ``max_candidates`` of its candidates (a question
with more candidates is split into consecutive groups), so listwise losses see whole candidate lists and
pointwise ones see pairs. The order of an epoch depends on ``(seed, epoch)`` only, which is what makes an
interrupted-and-resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Group:
    question: int  # row index in the dataset
    start: int  # first candidate index
    stop: int  # one past the last candidate index


def question_groups(num_candidates: Sequence[int], max_candidates: int) -> list[Group]:
    """Split each question's candidates into consecutive groups of at most ``max_candidates``."""
    if max_candidates < 1:
        raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
    groups = []
    for q, n in enumerate(num_candidates):
        groups.extend(Group(q, s, min(n, s + max_candidates)) for s in range(0, n, max_candidates))
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
