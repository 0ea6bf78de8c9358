"""How alike rankers rank: the mean within-question Spearman correlation between TREC runs.

    python -m as2.agreement --run runs/a.trec runs/b.trec runs/c.trec [--out agreement.json]

A fused ensemble gains over its members where they rank differently and each is right on other questions;
a multi-head student whose heads agree with one another more than their teachers do has less of that to
gain. For every pair of runs: Spearman's correlation of their scores over the candidates of one question
that both score, averaged over the questions where it is defined (at least 3 shared candidates, neither run
scoring them all alike). Prints a Markdown matrix of the runs (by run name); ``--out`` writes the JSON.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from as2.config import cli, parse, write_json
from as2.data import DataError
from as2.runs import Scores, read_run
from as2.tables import pipe_table


@dataclass
class AgreementConfig:
    run: list[str] = field(default_factory=list, metadata={"help": "TREC runs to compare (two or more)"})
    out: str = field(default="", metadata={"help": "JSON output (optional)"})

    def __post_init__(self):
        if len(self.run) < 2:
            raise ValueError("give at least two --run files to compare")


def agreement(a: Scores, b: Scores) -> tuple[float, int]:
    """Mean over questions of the Spearman correlation of ``a`` and ``b`` on their shared candidates, and
    the number of questions it is defined on (``nan, 0`` when none)."""
    rhos = []
    for qid in a.keys() & b.keys():
        shared = sorted(a[qid].keys() & b[qid].keys())
        if len(shared) < 3:
            continue
        x = np.array([a[qid][c] for c in shared])
        y = np.array([b[qid][c] for c in shared])
        if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant ranking has no correlation
            continue
        rhos.append(float(spearmanr(x, y)[0]))
    return (float(np.mean(rhos)) if rhos else float("nan")), len(rhos)


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(AgreementConfig, argv, description=__doc__)
    runs: dict[str, Scores] = {}
    for path in cfg.run:
        name, run = read_run(path)
        if name in runs:
            raise DataError(f"{path}: run name {name!r} appears twice among the runs to compare")
        runs[name] = run
    names = list(runs)
    rho = {}
    pairs = []
    for x, y in itertools.combinations(names, 2):
        rho[x, y], n = agreement(runs[x], runs[y])
        rho[y, x] = rho[x, y]
        pairs.append({"a": x, "b": y, "spearman": rho[x, y], "questions": n})
    rows = [[x] + ["1" if x == y else f"{rho[x, y]:.3f}" for y in names] for x in names]
    print(pipe_table(["run", *names], rows))
    result = {"runs": dict(zip(names, cfg.run, strict=True)), "pairs": pairs}
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(cfg.out, result)
    return result


if __name__ == "__main__":
    cli(main)
