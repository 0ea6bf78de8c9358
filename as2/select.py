"""Choose a teacher ensemble on a development split: greedy forward selection over candidate runs.

    python -m as2.select --data data/wikiqa/dev --run runs/dev/a.trec runs/dev/b.trec ... --out select.json \\
        [--metric map] [--min_members 2] [--max_members 3] [--weights optimize] [--step 0.1] \\
        [--protocol clean] [--ties pessimistic]
    python -m as2.select --data data/wikiqa/dev data/selqa/dev \\
        --run runs/dev/a.trec runs/dev/b.trec runs/selqa_dev/a.trec runs/selqa_dev/b.trec --out select.json

Starts from the best single run by ``--metric`` on ``--data`` and adds, one at a time, the candidate whose
fusion with the members chosen so far (``as2.fuse``: z-scores per question, then a weighted sum) scores
best; stops when no addition improves the metric (once ``--min_members`` are in) or at ``--max_members``.
``--weights equal`` sums the z-scores; ``--weights optimize`` (default) tries, for every set of members,
each weighting on a grid of ``--step`` (weights >= 0 summing to 1; ranx's weighted sum) and keeps the best,
the most even weighting among equals: a member is added only where some weighting beats the members so
far, so the ensemble never scores below its best member on dev (unless ``--min_members`` forces one in). Ties in the metric go to the candidate given first. Only the
development split is read: the test split plays no part in the choice.

Several development splits (``--data A B``, e.g. an in-domain and an out-of-domain one): ``--run`` lists
the candidates' runs on A, then the same candidates' runs on B (the same run names, in any order), and
every choice maximizes the mean of the splits' metric, each split counting the same whatever its size. A
weighting chosen on one domain's dev split learns that domain; the mean keeps a member that wins only
there from taking the whole weight. The JSON records each split's metric of every step's choice. Writes ``--out`` (members in order
of choice, their weights, every step's scores) and prints the member names, space-separated, as the last
line of stdout (for shell pipelines); ``as2.fuse --selection`` fuses test runs with those weights.

The grid is searched here rather than with ranx's ``optimize_fusion``: its grid test ``sum(w) == 1.0`` in
floating point drops points such as (0.1, 0.2, 0.7), and it scores with ranx's insertion-order ties, where
every score here comes from ``as2.metrics`` (protocol and tie rule as given).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from as2.config import cli, parse, setup_logging, write_json
from as2.data import DataError, load_questions
from as2.fuse import fuse_runs
from as2.metrics import check_options, evaluate_runs, read_runs

logger = logging.getLogger(__name__)

WEIGHTINGS = ("equal", "optimize")


@dataclass
class SelectConfig:
    data: list[str] = field(
        default_factory=list, metadata={"help": "development split(s) (as2.data) holding the labels"}
    )
    run: list[str] = field(
        default_factory=list,
        metadata={"help": "candidate teachers' TREC runs on it (several splits: each split's runs in turn)"},
    )
    out: str = field(default="", metadata={"help": "output JSON (members and the selection trace)"})
    metric: str = field(default="map", metadata={"help": "ranx metric the choice maximizes"})
    min_members: int = field(default=2, metadata={"help": "members chosen even without improvement"})
    max_members: int = field(default=3, metadata={"help": "most members (each costs a student head)"})
    protocol: str = field(default="clean", metadata={"help": "clean or raw"})
    weights: str = field(default="optimize", metadata={"help": "equal, or optimize (grid search on dev)"})
    step: float = field(default=0.1, metadata={"help": "grid step of the weights (1/step an integer)"})
    ties: str = field(default="pessimistic", metadata={"help": "pessimistic or optimistic"})

    def __post_init__(self):
        if not self.data or not self.out:
            raise ValueError("data and out are required")
        if len(self.run) < 2 * len(self.data):
            raise ValueError("give at least two candidate --run files (per --data split)")
        if len(self.run) % len(self.data):
            raise ValueError(
                f"{len(self.run)} --run files for {len(self.data)} --data splits: give every split the "
                "same candidates' runs, split after split"
            )
        if not 1 <= self.min_members <= self.max_members:
            raise ValueError(
                f"need 1 <= min_members <= max_members, got {self.min_members}, {self.max_members}"
            )
        check_options(self.protocol, self.ties, [self.metric], "fisher", 0.05)
        if self.weights not in WEIGHTINGS:
            raise ValueError(f"weights must be one of {WEIGHTINGS}, got {self.weights!r}")
        check_step(self.step)


def check_step(step: float) -> None:
    """A grid step must cut 1 into whole parts, so that the grid holds the weightings that sum to 1."""
    if not 0 < step <= 1 or abs(round(1 / step) * step - 1) > 1e-9:
        raise ValueError(f"step must divide 1 into whole parts (0.1, 0.05, 0.25 ...), got {step}")


def weight_grid(k: int, step: float) -> list[tuple[float, ...]]:
    """Every weighting of ``k`` members on a grid of ``step`` (weights >= 0, sum 1), the most even first."""
    n = round(1 / step)
    points = [p for p in itertools.product(range(n + 1), repeat=k) if sum(p) == n]
    points.sort(key=lambda p: sum((x - n / k) ** 2 for x in p))  # stable: ties keep product order
    return [tuple(x / n for x in p) for p in points]


@contextlib.contextmanager
def quiet(logger: logging.Logger):
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def select(
    splits: Sequence[tuple[Sequence, dict]],
    metric: str,
    min_members: int,
    max_members: int,
    weights: str = "optimize",
    step: float = 0.1,
    **evaluate_kw,
) -> dict:
    """Greedy forward selection over ``splits``, each ``(questions, {name: run})`` with the same run names;
    a set of members scores the mean of its metric over the splits. Returns ``{"members", "weights",
    metric, "per_split": [metric of the choice on each split], "steps": [{candidate: score}]}``."""
    names_given = list(splits[0][1])

    def score_split(questions, runs, names: list[str], w: tuple[float, ...] | None) -> float:
        run = (
            runs[names[0]]
            if len(names) == 1
            else fuse_runs({n: runs[n] for n in names}, "fused", **fusion(w))
        )
        with quiet(logging.getLogger("as2.metrics")):  # a line per trial would drown the log
            result = evaluate_runs(questions, {"fused": run}, metrics=[metric], **evaluate_kw)
        return result["runs"]["fused"][metric]

    def score(names: list[str], w: tuple[float, ...] | None = None) -> tuple[float, list[float]]:
        each = [score_split(questions, runs, names, w) for questions, runs in splits]
        return sum(each) / len(each), each

    def fusion(w):
        return {"method": "wsum", "weights": list(w)} if w else {}

    def best_weighting(names: list[str]) -> tuple[float, tuple[float, ...], list[float]]:
        if len(names) == 1 or weights == "equal":
            mean, each = score(names)
            return mean, (1 / len(names),) * len(names), each
        # each member keeps a weight > 0: a zero would repeat a smaller set, already scored
        grid = [w for w in weight_grid(len(names), step) if min(w) > 0]
        scored = [(*score(names, w), w) for w in grid]  # (mean, each split, weights)
        mean, each, w = max(scored, key=lambda s: s[0])  # the first of equals: the most even weighting
        return mean, w, each

    members: list[str] = []
    chosen: tuple[float, ...] = ()
    best, best_each = float("-inf"), []
    steps = []
    while len(members) < min(max_members, len(names_given)):
        trial = {n: best_weighting([*members, n]) for n in names_given if n not in members}
        steps.append({n: t[0] for n, t in trial.items()})
        name = max(trial, key=lambda n: trial[n][0])  # the first of equals: dicts keep the order given
        if trial[name][0] <= best and len(members) >= min_members:
            break
        members.append(name)
        best, chosen, best_each = trial[name]
    return {
        "members": members,
        "weights": dict(zip(members, chosen, strict=True)),
        "weighting": weights,
        metric: best,
        "per_split": best_each,
        "steps": steps,
    }


def split_runs(paths: Sequence[str], splits: int) -> list[tuple[dict, dict]]:
    """``paths`` cut into ``splits`` consecutive groups, each read as ``({name: run}, {name: path})``; every
    group must name the same runs (a candidate missing on one split could not be scored there)."""
    per = len(paths) // splits
    groups = [read_runs(paths[i * per : (i + 1) * per]) for i in range(splits)]
    names = set(groups[0][0])
    for i, (runs, sources) in enumerate(groups[1:], start=1):
        if set(runs) != names:
            raise DataError(
                f"the runs of --data split {i + 1} ({', '.join(sources.values())}) are named "
                f"{sorted(runs)}, those of split 1 {sorted(names)}: give every split the same candidates"
            )
    return groups


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(SelectConfig, argv, description=__doc__)
    setup_logging()
    splits = []
    for data, (runs, sources) in zip(cfg.data, split_runs(cfg.run, len(cfg.data)), strict=True):
        questions = load_questions(data)
        if len(runs) < cfg.min_members:
            raise DataError(f"{len(runs)} candidate runs, fewer than min_members={cfg.min_members}")
        # every candidate checked against the data once, so that a bad run is named by its file (and scored
        # alone)
        alone = evaluate_runs(questions, runs, metrics=[cfg.metric], protocol=cfg.protocol, ties=cfg.ties,
                              sources=sources)["runs"]  # fmt: skip
        logger.info("%s, candidates alone: %s", data, {n: round(v[cfg.metric], 4) for n, v in alone.items()})
        splits.append((questions, runs, sources))
    chosen = select(
        [(questions, runs) for questions, runs, _ in splits],
        cfg.metric,
        cfg.min_members,
        cfg.max_members,
        weights=cfg.weights,
        step=cfg.step,
        protocol=cfg.protocol,
        ties=cfg.ties,
    )
    result = {"data": cfg.data, "metric": cfg.metric, "protocol": cfg.protocol, "ties": cfg.ties, **chosen}
    result["candidates"] = dict(splits[0][2])  # name -> run file on the first split
    if len(splits) > 1:
        result["split_candidates"] = [sources for _, _, sources in splits]
    write_json(cfg.out, result)
    print(json.dumps({k: result[k] for k in ("members", "weights", cfg.metric)}))
    print(" ".join(result["members"]))
    return result


if __name__ == "__main__":
    cli(main)
