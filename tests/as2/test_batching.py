"""as2.batching.length_batches and as2.timing.steady: the inference batching and timing every figure uses."""

from __future__ import annotations

import pytest

from as2.batching import Group, length_batches, question_groups
from as2.timing import steady


def test_length_batches_cover_every_item_once_in_length_order():
    """Bug caught: a batch built from unsorted items pads to its longest (slow), or an item scored twice."""
    lengths = [5, 1, 9, 1, 3]
    batches = length_batches(lengths, 2)
    assert batches == [[1, 3], [4, 0], [2]]  # equal lengths keep input order
    assert length_batches(lengths, 2, longest_first=True) == [[2, 0], [4, 1], [3]]
    assert length_batches([], 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        length_batches(lengths, 0)


def test_question_groups_slice_long_questions_or_keep_their_positives_in_each_group():
    """Bug caught: a long question cut into consecutive slices leaves groups of negatives only, which a
    listwise label loss learns nothing from (a quarter of WikiQA's clean training groups at 12 candidates)."""
    labels = [[0, 0, 0, 0, 0, 1, 0], [1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]]
    sizes = [len(y) for y in labels]
    sliced = question_groups(sizes, 3)
    assert sliced[:3] == [Group(0, (0, 1, 2)), Group(0, (3, 4, 5)), Group(0, (6,))]
    kept = question_groups(sizes, 3, labels)
    by_question = {q: [g.candidates for g in kept if g.question == q] for q in range(4)}
    assert by_question[0] == [(0, 1, 5), (2, 3, 5), (4, 5, 6)]  # the positive 5 beside two negatives each
    assert by_question[1] == [(0, 1)]  # short enough for one group: unchanged
    assert by_question[2] == [(0, 1, 2), (3, 4)]  # no positive to spread: consecutive slices
    assert by_question[3] == [(0, 1, 2), (3, 4)]  # as many positives as a group holds: slices too
    for g in kept:  # every negative of a question lands in exactly one of its groups, each group <= 3
        assert len(g) <= 3 and g.pick(labels[g.question]) == [labels[g.question][i] for i in g.candidates]
    negatives = sorted(i for g in kept if g.question == 0 for i in g.candidates if not labels[0][i])
    assert negatives == [0, 1, 2, 3, 4, 6]
    # without a positive: question 2's two groups and question 3's second, against 5 groups when sliced
    assert sum(not any(g.pick(labels[g.question])) for g in kept) == 3
    assert sum(not any(g.pick(labels[g.question])) for g in sliced) == 5
    with pytest.raises(ValueError, match="max_candidates"):
        question_groups(sizes, 0)


def test_steady_times_after_the_warm_up_and_takes_the_median(monkeypatch):
    """Bug caught: the first pass (kernels built for a new shape) timed as if it were the model, or a mean
    that one slow pass drags up. A fake clock: no wall time is measured or asserted."""
    import as2.timing

    clock = [0.0]
    monkeypatch.setattr(as2.timing.time, "perf_counter", lambda: clock[0])
    durations = iter([30.0, 2.0, 9.0, 1.0])  # the warm-up, then three timed passes

    def one_pass():
        clock[0] += next(durations)
        return clock[0]

    seconds, results = steady(one_pass, repeats=3)
    assert seconds == 2.0 and results == [32.0, 41.0, 42.0]  # the median of 2, 9, 1; the warm-up not timed
    clock[0], ticks = 0.0, iter([0.02] * 10)
    _, results = steady(lambda: clock.__setitem__(0, clock[0] + next(ticks)), repeats=2, warmup=0, budget_s=0.05,
                        max_repeats=7)  # fmt: skip
    assert len(results) == 3  # past 2 repeats until 0.05 s of (fake) timing: 0.02, 0.04, 0.06
