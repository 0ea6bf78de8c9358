"""as2.batching.length_batches and as2.timing.steady: the inference batching and timing every figure uses."""

from __future__ import annotations

import time

import pytest

from as2.batching import length_batches
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


def test_steady_times_after_the_warm_up_and_takes_the_median():
    """Bug caught: the first pass (kernels built for a new shape) timed as if it were the model."""
    calls = []

    def one_pass():
        calls.append(None)
        time.sleep(0.3 if len(calls) == 1 else 0.001)  # only the warm-up is slow
        return len(calls)

    seconds, results = steady(one_pass, repeats=3)
    assert len(calls) == 4 and results == [2, 3, 4]
    assert seconds < 0.1
    _, results = steady(lambda: None, repeats=2, warmup=0, budget_s=0.05, max_repeats=7)
    assert 2 <= len(results) <= 7
