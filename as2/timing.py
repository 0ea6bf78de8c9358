"""Steady-state timing: untimed warm-up passes over the same inputs, then the median of timed passes.

Every speed figure of the project comes from :func:`steady`: the first pass over a shape builds kernels
(oneDNN on CPU, cuBLAS plans on GPU) and would otherwise be timed as if it were the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def steady(
    one_pass: Callable[[], Any],
    repeats: int = 3,
    warmup: int = 1,
    budget_s: float = 0.0,
    max_repeats: int = 50,
) -> tuple[float, list[Any]]:
    """``(median seconds of a pass, what each timed pass returned)``.

    ``repeats`` timed passes at least; more, up to ``max_repeats``, while ``budget_s`` seconds of timing
    have not passed (for passes too short to time alone).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        one_pass()
    times, results = [], []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeats or (time.perf_counter() < deadline and len(times) < max_repeats):
        start = time.perf_counter()
        results.append(one_pass())
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], results
