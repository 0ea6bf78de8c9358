"""Evaluate TREC runs on a converted split with ranx: metrics, paired significance tests, report tables.

    python -m as2.evaluate --data data/wikiqa/test --run runs/a.trec [--run runs/b.trec ...] --out runs/eval \\
        [--protocol clean|raw] [--ties pessimistic|optimistic] [--allow_missing] \\
        [--metrics precision@1 map mrr ndcg@3 ndcg@10 hit_rate@5] [--stat_test fisher] [--max_p 0.05]

Reads the split (``as2.data``) and each run (``qid Q0 cid rank score name``; the run's name is its ``name``
column and must be unique among the runs). Writes to ``--out``:

- ``report.json``: per run, its mean metrics (ranx names); protocol, tie rule, test, number of questions,
  data folder, and ranx's comparison (p-values and win/tie/loss for every pair of runs);
- ``report.md``: the table with significance marks and a line stating protocol, tie rule, #questions, test;
- ``per_question.csv``: one row per run and question: ``run, qid`` and each metric.

Prints the table and a final JSON summary line.

- ``--protocol clean`` (default) scores only questions with a correct and an incorrect candidate; ``raw``
  scores all, and a question with no correct candidate counts and scores 0.
- ``--ties pessimistic`` (default): among equal scores, incorrect candidates rank first; ``optimistic``:
  correct ones first. Ties are never broken by the order of the input.
- A question evaluated but absent from a run is an error, or scores 0 (and counts) with
  ``--allow_missing``. Candidates a run leaves out of a question it ranks are ranked below the listed ones
  (incorrect ones first): this is how a cascade that reranks a subset is scored.
- Questions the protocol leaves out may appear in a run; question or candidate ids that the data does not
  have are errors.

See ``as2.metrics`` for the library functions (``evaluate_runs``, ``write_report``) other stages call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from as2.config import cli, parse, setup_logging
from as2.data import load_questions
from as2.metrics import METRICS, STAT_TESTS, TIE_RULES, check_options, evaluate_runs, read_runs, write_report


@dataclass
class EvaluateConfig:
    data: str = field(default="", metadata={"help": "converted split (as2.data) holding the labels"})
    run: list[str] = field(default_factory=list, metadata={"help": "TREC run files to evaluate"})
    out: str = field(
        default="", metadata={"help": "output folder for report.json, report.md, per_question.csv"}
    )
    protocol: str = field(default="clean", metadata={"help": "clean: questions with both labels; raw: all"})
    ties: str = field(
        default="pessimistic", metadata={"help": f"rule for equal scores, one of {', '.join(TIE_RULES)}"}
    )
    allow_missing: bool = field(
        default=False, metadata={"help": "a question missing from a run scores 0 instead of failing"}
    )
    metrics: list[str] = field(default_factory=lambda: list(METRICS), metadata={"help": "ranx metric names"})
    stat_test: str = field(
        default="fisher", metadata={"help": f"ranx paired test, one of {', '.join(STAT_TESTS)}"}
    )
    max_p: float = field(default=0.05, metadata={"help": "p-value at or below which a difference is marked"})

    def __post_init__(self):
        if not self.data or not self.out:
            raise ValueError("data and out are required")
        if not self.run:
            raise ValueError("give at least one --run file")
        check_options(self.protocol, self.ties, self.metrics, self.stat_test, self.max_p)


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(EvaluateConfig, argv, description=__doc__)
    setup_logging()

    # 1. the labels and the runs (names unique, ids checked against the data in step 2)
    questions = load_questions(cfg.data)
    runs, sources = read_runs(cfg.run)

    # 2. protocol, strict rankings by the tie rule, ranx metrics and significance
    result = evaluate_runs(
        questions,
        runs,
        protocol=cfg.protocol,
        ties=cfg.ties,
        metrics=cfg.metrics,
        allow_missing=cfg.allow_missing,
        stat_test=cfg.stat_test,
        max_p=cfg.max_p,
        sources=sources,
    )

    # 3. write the report, print the table and a summary line
    report = write_report(result, cfg.out, data=cfg.data)
    print(result["table"])
    summary = {
        "out": cfg.out,
        "protocol": cfg.protocol,
        "ties": cfg.ties,
        "questions": result["questions"],
        "runs": result["runs"],
    }
    print(json.dumps(summary))
    return report


if __name__ == "__main__":
    cli(main)
