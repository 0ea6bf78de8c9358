"""as2.batching.length_batches and as2.timing.steady: the inference batching and timing every figure uses."""

from __future__ import annotations

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
