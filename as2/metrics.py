"""Evaluate runs on the AS2 data with ranx, under an explicit protocol and an explicit tie rule.

ranx computes the metrics, the paired significance tests and the comparison report; this module only decides
*what* ranx sees, because two of ranx's defaults would silently flatter a system on AS2 data:

- ranx scores a question with no correct candidate as 0 yet still counts it, so the protocol is applied
  before the qrels are built: ``clean`` (the default) keeps only questions with a correct and an incorrect
  candidate; under ``raw`` every question counts, and one with no correct candidate scores 0 on every
  metric (one with only correct candidates scores 1).
- ranx breaks score ties by insertion order, and corpora list candidates in document order (WikiQA puts the
  correct one first for almost half of its clean test questions), so a constant scorer would look good.
  Each question's scores are therefore turned into a strict ranking by ``(score desc, tie rule, cid)`` and
  ranx is handed strictly decreasing scores derived from that rank. ``pessimistic`` (the default): among
  equal scores, incorrect candidates rank first; ``optimistic``: correct ones first (what some published
  numbers used).

Runs are checked against the data: a question or candidate the data does not have is an error (questions
that the protocol leaves out are simply ignored). A question evaluated but absent from a run is an error
unless ``allow_missing``, in which case it scores 0 and still counts. Candidates of the data that a run does
not list for a question it ranks are placed below every listed candidate, incorrect ones first among
themselves whatever the tie rule: this is how a reranker of a subset (a cascade) is scored.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from as2 import ranx_report
from as2.config import atomic_write_text, write_json
from as2.data import DataError, Question, apply_protocol
from as2.runs import Scores, encode_ids, id_codes, read_run

logger = logging.getLogger(__name__)

METRICS = ("precision@1", "map", "mrr", "ndcg@3", "ndcg@10", "hit_rate@5")  # ranx names
TIE_RULES = ("pessimistic", "optimistic")
STAT_TESTS = ("fisher", "student")  # ranx's paired tests (its Tukey HSD is neither paired nor for one run)
MAX_RUNS = 26  # ranx labels the runs of a report a..z
TIE_TEXT = {
    "pessimistic": "among equal scores, incorrect candidates rank first",
    "optimistic": "among equal scores, correct candidates rank first",
}
PROTOCOL_TEXT = {
    "clean": "questions with a correct and an incorrect candidate",
    "raw": "every question; one with no correct candidate scores 0",
}


def check_options(protocol: str, ties: str, metrics: Sequence[str], stat_test: str, max_p: float) -> None:
    """Raise ``ValueError`` naming the first option that ranx or this module cannot use."""
    if protocol not in PROTOCOL_TEXT:
        raise ValueError(f"protocol must be one of {tuple(PROTOCOL_TEXT)}, got {protocol!r}")
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    if stat_test not in STAT_TESTS:
        raise ValueError(f"stat_test must be one of {STAT_TESTS}, got {stat_test!r}")
    if not 0 < max_p < 1:
        raise ValueError(f"max_p must be in (0, 1), got {max_p}")
    if not metrics or len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics must be a non-empty list without repeats, got {list(metrics)}")
    for m in metrics:
        if not ranx_report.is_metric(m):
            raise ValueError(f"unknown metric {m!r}; use ranx names such as {', '.join(METRICS)}")


def read_runs(paths: Sequence[str | os.PathLike]) -> tuple[dict[str, Scores], dict[str, str]]:
    """Read TREC runs; returns ``({name: {qid: {cid: score}}}, {name: path})``. A name used twice is an error."""
    runs: dict[str, Scores] = {}
    sources: dict[str, str] = {}
    for path in paths:
        name, run = read_run(path)
        if name in runs:
            raise DataError(
                f"{path}: run name {name!r} is already used by {sources[name]} (one name per run)"
            )
        runs[name], sources[name] = run, str(path)
    return runs, sources


def rank_question(q: Question, scores: Mapping[str, float], ties: str) -> list[str]:
    """The candidates of ``q`` in a strict order: listed ones by (score desc, tie rule, cid), then the rest."""
    label = dict(zip(q.cids, q.labels, strict=True))
    sign = -1 if ties == "optimistic" else 1  # pessimistic: label 0 sorts before label 1 at equal score
    listed = sorted(scores, key=lambda c: (-scores[c], sign * label[c], c))
    rest = sorted((c for c in q.cids if c not in scores), key=lambda c: (label[c], c))
    return listed + rest


def _first(items: Sequence[str], k: int = 5) -> str:
    return ", ".join(items[:k]) + (", ..." if len(items) > k else "")


def _check_run(where: str, run: Scores, by_qid: Mapping[str, Question]) -> None:
    unknown_q = [repr(qid) for qid in run if qid not in by_qid]
    if unknown_q:
        raise DataError(f"{where}: {len(unknown_q)} question id(s) not in the data: {_first(unknown_q)}")
    unknown_c = []
    for qid, cands in run.items():
        known = set(by_qid[qid].cids)
        unknown_c += [f"{cid!r} of {qid!r}" for cid in cands if cid not in known]
    if unknown_c:
        raise DataError(f"{where}: {len(unknown_c)} candidate id(s) not in the data: {_first(unknown_c)}")


def evaluate_runs(
    questions: Sequence[Question],
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    protocol: str = "clean",
    ties: str = "pessimistic",
    metrics: Sequence[str] = METRICS,
    allow_missing: bool = False,
    stat_test: str = "fisher",
    max_p: float = 0.05,
    sources: Mapping[str, str] | None = None,
) -> dict:
    """Score ``{run_name: {qid: {cid: score}}}`` on ``questions`` with ranx (see the module docstring).

    ``sources`` (run name -> file) only makes error messages name the file. Returns a dict with the options,
    ``questions`` (how many were evaluated), ``runs`` ({name: {metric: mean}}), ``missing_questions`` and
    ``unranked_candidates`` (per run), ``significance`` (ranx ``Report.to_dict()``: p-values and
    win/tie/loss), ``table`` (Markdown, significance marks as ranx renders them) and ``per_question``
    ({name: {qid: {metric: value}}}, in data order).
    """
    from ranx import Qrels, Run

    metrics = list(metrics)
    check_options(protocol, ties, metrics, stat_test, max_p)
    if not runs:
        raise ValueError("no runs to evaluate")
    if len(runs) > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs per report, got {len(runs)}")
    sources = sources or {}
    by_qid = {q.qid: q for q in questions}
    kept = apply_protocol(questions, protocol)
    if not kept:
        raise DataError(f"no question to evaluate under protocol {protocol!r} ({len(questions)} in the data)")

    # qrels and strict rankings over the kept questions only; ranx sees each rank as a decreasing score,
    # and fixed-width stand-ins for the ids (its kernels are compiled for one id width, at install)
    codes = id_codes({q.qid: q.cids for q in kept})
    qrels = Qrels(encode_ids({q.qid: dict(zip(q.cids, q.labels, strict=True)) for q in kept}, codes))
    ranx_runs, missing, unranked = [], {}, {}
    for name, run in runs.items():
        where = f"{sources[name]} (run {name!r})" if name in sources else f"run {name!r}"
        _check_run(where, run, by_qid)
        absent = [q.qid for q in kept if not run.get(q.qid)]
        if len(absent) == len(kept):  # most likely the wrong split; ranx cannot build such a run either
            raise DataError(
                f"{where}: ranks none of the {len(kept)} questions evaluated under protocol {protocol!r}"
            )
        if absent and not allow_missing:
            raise DataError(
                f"{where}: {len(absent)} of the {len(kept)} questions evaluated under protocol {protocol!r} "
                f"have no ranking: {_first([repr(a) for a in absent])}; allow missing questions to score them 0"
            )
        ranked = {}
        for q in kept:
            order = rank_question(q, run[q.qid], ties) if run.get(q.qid) else []
            ranked[q.qid] = {cid: float(len(order) - i) for i, cid in enumerate(order)}
        missing[name] = len(absent)
        unranked[name] = sum(len(q.cids) - len(run[q.qid]) for q in kept if run.get(q.qid))
        ranx_runs.append(Run(encode_ids(ranked, codes), name=name))

    report = ranx_report.compare_runs(qrels, ranx_runs, metrics, stat_test, max_p)
    per_question = {}
    for r in ranx_runs:
        rows = ranx_report.per_question(qrels, r, metrics)
        per_question[r.name] = {q.qid: rows[codes[q.qid][0]] for q in kept}
    logger.info(
        "evaluated %d run(s) on %d question(s) (protocol %s, ties %s)", len(runs), len(kept), protocol, ties
    )
    return {
        "protocol": protocol,
        "ties": ties,
        "stat_test": stat_test,
        "stat_test_label": ranx_report.stat_test_label(report, stat_test),
        "max_p": max_p,
        "metrics": metrics,
        "questions": len(kept),
        "runs": {name: {m: float(v) for m, v in report.results[name].items()} for name in runs},
        "missing_questions": missing,
        "unranked_candidates": unranked,
        "significance": json.loads(json.dumps(report.to_dict(), default=lambda x: x.item())),
        "table": ranx_report.markdown_table(report),
        "per_question": per_question,
    }


def describe(result: Mapping) -> str:
    """One line stating protocol, tie rule, number of questions and the significance test."""
    return (
        f"Protocol: {result['protocol']} ({PROTOCOL_TEXT[result['protocol']]}); "
        f"ties: {result['ties']} ({TIE_TEXT[result['ties']]}); questions: {result['questions']}; "
        f"significance: {result['stat_test_label']} ({result['stat_test']}), "
        f"p <= {result['max_p']}, a superscript letter marks a significant gain over that row."
    )


def write_report(result: Mapping, out_dir: str | os.PathLike, data: str | None = None) -> dict:
    """Write ``report.json``, ``report.md`` and ``per_question.csv`` to ``out_dir`` (each atomically).

    Returns what ``report.json`` holds: ``result`` without its table and per-question values, plus ``data``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"data": None if data is None else str(data)}
    report.update({k: v for k, v in result.items() if k not in ("table", "per_question")})
    write_json(out / "report.json", report)
    source = f"Data: `{data}`. " if data is not None else ""
    atomic_write_text(
        out / "report.md", f"# AS2 evaluation\n\n{result['table']}\n\n{source}{describe(result)}\n"
    )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "qid", *result["metrics"]])
    for name, rows in result["per_question"].items():
        for qid, values in rows.items():
            writer.writerow([name, qid, *(repr(values[m]) for m in result["metrics"])])
    atomic_write_text(out / "per_question.csv", buf.getvalue())
    return report
