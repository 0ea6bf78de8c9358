"""Compile ranx's numba kernels once per install, so that no user command pays it.

    python -m as2.warmup        # the Makefile's install step runs it

ranx compiles its metric, fusion and data-structure kernels with numba on first use (about 35 s on 2 cores)
and caches them beside its own files (``cache=True``), so every later process loads them in a fraction of a
second. This runs ``as2.evaluate`` (both paired tests), ``as2.fuse`` and ``as2.select`` end to end on a tiny
fixture in a temporary folder, so the kernels compiled are exactly those the entry points use. Prints the
seconds it took.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from pathlib import Path

from as2.data import Question, save
from as2.runs import write_run


def main() -> float:
    import datasets

    from as2 import evaluate, fuse, select

    datasets.disable_progress_bars()
    logging.disable(logging.INFO)  # the entry points log each step; here only the total matters
    start = time.perf_counter()
    questions = [
        Question(
            qid=f"q{i}",
            question=f"question {i}?",
            cids=["c0", "c1", "c2"],
            candidates=["one.", "two.", "three."],
            labels=[int(i % 3 == 0), 1 - int(i % 3 == 0), 0],
        )
        for i in range(4)
    ]
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        data, runs = Path(tmp) / "data", []
        save(questions, data)
        for k in range(3):
            scores = {
                q.qid: {c: float((j + k + n) % 3) for j, c in enumerate(q.cids)}
                for n, q in enumerate(questions)
            }
            runs.append(str(write_run(Path(tmp) / f"r{k}.trec", scores, f"r{k}")))
        for stat_test in ("fisher", "student"):
            evaluate.main(
                ["--data", str(data), "--run", *runs, "--out", f"{tmp}/eval", "--stat_test", stat_test]
            )
        fuse.main(["--run", *runs, "--out", f"{tmp}/fused.trec"])
        fuse.main(
            ["--run", *runs, "--out", f"{tmp}/wfused.trec", "--method", "wsum", "--weights", "1", "1", "1"]
        )
        select.main(["--data", str(data), "--run", *runs, "--out", f"{tmp}/select.json"])
    seconds = time.perf_counter() - start
    print(f"ranx kernels compiled or loaded in {seconds:.1f} s")
    return seconds


if __name__ == "__main__":
    main()
