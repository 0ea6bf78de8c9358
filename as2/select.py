"""Choose a teacher ensemble on a development split: greedy forward selection over candidate runs.

    python -m as2.select --data data/wikiqa/dev --run runs/dev/a.trec runs/dev/b.trec ... --out select.json \\
        [--metric map] [--min_members 2] [--max_members 3] [--protocol clean] [--ties pessimistic]

Starts from the best single run by ``--metric`` on ``--data`` and adds, one at a time, the candidate whose
fusion with the members chosen so far (``as2.fuse``: z-scores per question, summed) scores best; stops
when no addition improves the metric (once ``--min_members`` are in) or at ``--max_members``. Ties in the
metric go to the candidate given first. Only the development split is read: the test split plays no part
in the choice. Writes ``--out`` (members in order of choice, every step's scores) and prints the member
names, space-separated, as the last line of stdout (for shell pipelines).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from as2.config import cli, parse, setup_logging, write_json
from as2.data import DataError, load_questions
from as2.fuse import fuse_runs
from as2.metrics import check_options, evaluate_runs, read_runs


@dataclass
class SelectConfig:
    data: str = field(default="", metadata={"help": "development split (as2.data) holding the labels"})
    run: list[str] = field(default_factory=list, metadata={"help": "candidate teachers' TREC runs on it"})
    out: str = field(default="", metadata={"help": "output JSON (members and the selection trace)"})
    metric: str = field(default="map", metadata={"help": "ranx metric the choice maximizes"})
    min_members: int = field(default=2, metadata={"help": "members chosen even without improvement"})
    max_members: int = field(default=3, metadata={"help": "most members (each costs a student head)"})
    protocol: str = field(default="clean", metadata={"help": "clean or raw"})
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


def select(questions, runs: dict, metric: str, min_members: int, max_members: int, **evaluate_kw) -> dict:
    """Greedy forward selection; returns ``{"members": [...], "steps": [{candidate: score}, ...]}``."""

    def score(names: list[str]) -> float:
        run = runs[names[0]] if len(names) == 1 else fuse_runs({n: runs[n] for n in names}, "fused")
        result = evaluate_runs(questions, {"fused": run}, metrics=[metric], **evaluate_kw)
        return result["runs"]["fused"][metric]

    members: list[str] = []
    best = float("-inf")
    steps = []
    while len(members) < min(max_members, len(runs)):
        trial = {n: score([*members, n]) for n in runs if n not in members}
        steps.append(trial)
        name = max(trial, key=trial.get)  # the first of equals: dicts keep the order given
        if trial[name] <= best and len(members) >= min_members:
            break
        members.append(name)
        best = trial[name]
    return {"members": members, metric: best, "steps": steps}


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(SelectConfig, argv, description=__doc__)
    setup_logging()
    questions = load_questions(cfg.data)
    runs, sources = read_runs(cfg.run)
    if len(runs) < cfg.min_members:
        raise DataError(f"{len(runs)} candidate runs, fewer than min_members={cfg.min_members}")
    chosen = select(
        questions, runs, cfg.metric, cfg.min_members, cfg.max_members, protocol=cfg.protocol, ties=cfg.ties
    )
    result = {"data": cfg.data, "metric": cfg.metric, "protocol": cfg.protocol, "ties": cfg.ties, **chosen}
    result["candidates"] = {n: sources[n] for n in runs}
    write_json(cfg.out, result)
    print(json.dumps({k: result[k] for k in ("members", cfg.metric)}))
    print(" ".join(result["members"]))
    return result


if __name__ == "__main__":
    cli(main)
