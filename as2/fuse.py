"""Fuse several TREC runs into one with ranx (the teacher-ensemble baseline is this, by configuration).

    python -m as2.fuse --run runs/a.trec --run runs/b.trec --name ensemble --out runs/ensemble.trec \\
        [--norm zmuv] [--method sum | --method wsum --weights 0.6 0.4 | --selection select.json]

Each run is normalized per question (``--norm``, any of ranx's: zmuv, min-max, max, sum, rank, borda) and
the normalized scores are combined (``--method``: sum, wsum with ``--weights``, max, med, mnz, rrf ...).
Default: z-scores per question, summed, so teachers on different scales (logits, cosines) weigh the same.
``--selection`` takes the members' weights that ``as2.select`` chose on dev (method wsum); the runs given
must be exactly those members, matched by run name.
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
    selection: str = field(default="", metadata={"help": "as2.select JSON: fuse with its members' weights"})

    def __post_init__(self):
        if len(self.run) < 2:
            raise ValueError("give at least two --run files to fuse")
        if not self.out:
            raise ValueError("out is required")
        if self.weights and len(self.weights) != len(self.run):
            raise ValueError(f"{len(self.weights)} weights for {len(self.run)} runs")
        if self.selection and self.weights:
            raise ValueError("give --weights or --selection, not both")


def selection_weights(path: str, names: list[str]) -> list[float]:
    """The weights ``as2.select`` chose for ``names`` (its members, in any order); raises if they differ."""
    with open(path, encoding="utf-8") as f:
        chosen = json.load(f).get("weights")
    if not isinstance(chosen, dict):
        raise DataError(f"{path}: no 'weights' of the members (written by an older as2.select?)")
    if sorted(chosen) != sorted(names):
        raise DataError(f"{path}: members {sorted(chosen)} but the runs to fuse are {sorted(names)}")
    return [float(chosen[n]) for n in names]


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
    method, weights = cfg.method, cfg.weights or None
    if cfg.selection:
        method, weights = "wsum", selection_weights(cfg.selection, list(runs))
    write_run(cfg.out, fuse_runs(runs, cfg.name, cfg.norm, method, weights), cfg.name)
    summary = {"out": cfg.out, "name": cfg.name, "members": list(runs), "norm": cfg.norm, "method": method}
    if weights:
        summary["weights"] = weights
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    cli(main)
