"""Choose a teacher ensemble on a development split: greedy forward selection over candidate runs.

    python -m as2.select --data data/wikiqa/dev --run runs/dev/a.trec runs/dev/b.trec ... --out select.json \\
        [--metric map] [--min_members 2] [--max_members 3] [--weights optimize] [--step 0.1] \\
        [--protocol clean] [--ties pessimistic]

Starts from the best single run by ``--metric`` on ``--data`` and adds, one at a time, the candidate whose
fusion with the members chosen so far (``as2.fuse``: z-scores per question, then a weighted sum) scores
best; stops when no addition improves the metric (once ``--min_members`` are in) or at ``--max_members``.
``--weights equal`` sums the z-scores; ``--weights optimize`` (default) tries, for every set of members,
each weighting on a grid of ``--step`` (weights >= 0 summing to 1; ranx's weighted sum) and keeps the best,
the most even weighting among equals: a member is added only where some weighting beats the members so
far, so the ensemble never scores below its best member on dev (unless ``--min_members`` forces one in). Ties in the metric go to the candidate given first. Only the
development split is read: the test split plays no part in the choice. Writes ``--out`` (members in order
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
from dataclasses import dataclass, field

from as2.config import cli, parse, setup_logging, write_json
from as2.data import DataError, load_questions
from as2.fuse import fuse_runs
from as2.metrics import check_options, evaluate_runs, read_runs

logger = logging.getLogger(__name__)

WEIGHTINGS = ("equal", "optimize")


@dataclass
class SelectConfig:
    data: str = field(default="", metadata={"help": "development split (as2.data) holding the labels"})
    run: list[str] = field(default_factory=list, metadata={"help": "candidate teachers' TREC runs on it"})
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
        if len(self.run) < 2:
            raise ValueError("give at least two candidate --run files")
        if not 1 <= self.min_members <= self.max_members:
            raise ValueError(
                f"need 1 <= min_members <= max_members, got {self.min_members}, {self.max_members}"
            )
        check_options(self.protocol, self.ties, [self.metric], "fisher", 0.05)
        if self.weights not in WEIGHTINGS:
            raise ValueError(f"weights must be one of {WEIGHTINGS}, got {self.weights!r}")
        if not 0 < self.step <= 1 or abs(round(1 / self.step) * self.step - 1) > 1e-9:
            raise ValueError(f"step must divide 1 into whole parts (0.1, 0.05, 0.25 ...), got {self.step}")


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
    questions,
    runs: dict,
    metric: str,
    min_members: int,
    max_members: int,
    weights: str = "optimize",
    step: float = 0.1,
    **evaluate_kw,
) -> dict:
    """Greedy forward selection; returns ``{"members", "weights", metric, "steps": [{candidate: score}]}``."""

    def score(names: list[str], w: tuple[float, ...] | None = None) -> float:
        run = (
            runs[names[0]]
            if len(names) == 1
            else fuse_runs({n: runs[n] for n in names}, "fused", **fusion(w))
        )
        with quiet(logging.getLogger("as2.metrics")):  # a line per trial would drown the log
            result = evaluate_runs(questions, {"fused": run}, metrics=[metric], **evaluate_kw)
        return result["runs"]["fused"][metric]

    def fusion(w):
        return {"method": "wsum", "weights": list(w)} if w else {}

    def best_weighting(names: list[str]) -> tuple[float, tuple[float, ...]]:
        if len(names) == 1 or weights == "equal":
            return score(names), (1 / len(names),) * len(names)
        # each member keeps a weight > 0: a zero would repeat a smaller set, already scored
        grid = [w for w in weight_grid(len(names), step) if min(w) > 0]
        scored = [(score(names, w), w) for w in grid]
        return max(scored, key=lambda sw: sw[0])  # the first of equals: the most even weighting

    members: list[str] = []
    chosen: tuple[float, ...] = ()
    best = float("-inf")
    steps = []
    while len(members) < min(max_members, len(runs)):
        trial = {n: best_weighting([*members, n]) for n in runs if n not in members}
        steps.append({n: s for n, (s, _) in trial.items()})
        name = max(trial, key=lambda n: trial[n][0])  # the first of equals: dicts keep the order given
        if trial[name][0] <= best and len(members) >= min_members:
            break
        members.append(name)
        best, chosen = trial[name]
    return {
        "members": members,
        "weights": dict(zip(members, chosen, strict=True)),
        "weighting": weights,
        metric: best,
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(SelectConfig, argv, description=__doc__)
    setup_logging()
    questions = load_questions(cfg.data)
    runs, sources = read_runs(cfg.run)
    if len(runs) < cfg.min_members:
        raise DataError(f"{len(runs)} candidate runs, fewer than min_members={cfg.min_members}")
    # every candidate checked against the data once, so that a bad run is named by its file (and scored alone)
    alone = evaluate_runs(questions, runs, metrics=[cfg.metric], protocol=cfg.protocol, ties=cfg.ties,
                          sources=sources)["runs"]  # fmt: skip
    logger.info("candidates alone: %s", {n: round(v[cfg.metric], 4) for n, v in alone.items()})
    chosen = select(
        questions,
        runs,
        cfg.metric,
        cfg.min_members,
        cfg.max_members,
        weights=cfg.weights,
        step=cfg.step,
        protocol=cfg.protocol,
        ties=cfg.ties,
    )
    result = {"data": cfg.data, "metric": cfg.metric, "protocol": cfg.protocol, "ties": cfg.ties, **chosen}
    result["candidates"] = {n: sources[n] for n in runs}
    write_json(cfg.out, result)
    print(json.dumps({k: result[k] for k in ("members", "weights", cfg.metric)}))
    print(" ".join(result["members"]))
    return result


if __name__ == "__main__":
    cli(main)
