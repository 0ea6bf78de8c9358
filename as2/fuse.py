"""Fuse several TREC runs into one with ranx (the teacher-ensemble baseline is this, by configuration).

    python -m as2.fuse --run runs/a.trec --run runs/b.trec --name ensemble --out runs/ensemble.trec \\
        [--norm zmuv] [--method sum]

Each run is normalized per question (``--norm``, any of ranx's: zmuv, min-max, max, sum, rank, borda) and
the normalized scores are combined (``--method``: sum, wsum with ``--weights``, max, med, mnz, rrf ...).
Default: z-scores per question, summed, so teachers on different scales (logits, cosines) weigh the same.
Every run must score the same (question, candidate) pairs: fusing runs over different candidates would
rank a candidate by how many systems saw it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

from as2.config import cli, parse, setup_logging
from as2.data import DataError
from as2.runs import decode_ids, encode_ids, id_codes, read_run, write_run


@dataclass
class FuseConfig:
    run: list[str] = field(default_factory=list, metadata={"help": "TREC runs to fuse (two or more)"})
    name: str = field(default="ensemble", metadata={"help": "run name of the fused run"})
    out: str = field(default="", metadata={"help": "output TREC file"})
    norm: str = field(default="zmuv", metadata={"help": "ranx per-question normalization"})
    method: str = field(default="sum", metadata={"help": "ranx fusion method"})
    weights: list[float] = field(default_factory=list, metadata={"help": "weights for method wsum"})

    def __post_init__(self):
        if len(self.run) < 2:
            raise ValueError("give at least two --run files to fuse")
        if not self.out:
            raise ValueError("out is required")
        if self.weights and len(self.weights) != len(self.run):
            raise ValueError(f"{len(self.weights)} weights for {len(self.run)} runs")


def fuse_runs(
    runs: dict[str, dict[str, dict[str, float]]],
    name: str,
    norm: str = "zmuv",
    method: str = "sum",
    weights: list[float] | None = None,
) -> dict[str, dict[str, float]]:
    """Fuse ``{run_name: {qid: {cid: score}}}`` with ranx; all runs must cover the same pairs."""
    from ranx import Run, fuse

    names = list(runs)
    first = {q: set(c) for q, c in runs[names[0]].items()}
    for other in names[1:]:
        if {q: set(c) for q, c in runs[other].items()} != first:
            raise DataError(
                f"runs {names[0]!r} and {other!r} do not score the same (question, candidate) pairs"
            )
    params = {"weights": weights} if weights else None
    codes = id_codes(runs[names[0]])  # fixed-width ids: ranx's kernels are compiled once, at install
    with warnings.catch_warnings():  # numba's cast notes and 0/0 for a question whose scores are all equal
        warnings.simplefilter("ignore")
        members = [Run(encode_ids(runs[n], codes), name=n) for n in names]
        fused = fuse(members, norm=norm, method=method, params=params)
    return decode_ids(
        {q: {c: float(s) for c, s in cands.items()} for q, cands in fused.to_dict().items()}, codes
    )


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(FuseConfig, argv, description=__doc__)
    setup_logging()
    runs = {}
    for path in cfg.run:
        name, run = read_run(path)
        if name in runs:
            raise DataError(f"{path}: run name {name!r} appears twice among the runs to fuse")
        runs[name] = run
    write_run(cfg.out, fuse_runs(runs, cfg.name, cfg.norm, cfg.method, cfg.weights or None), cfg.name)
    summary = {
        "out": cfg.out,
        "name": cfg.name,
        "members": list(runs),
        "norm": cfg.norm,
        "method": cfg.method,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    cli(main)
