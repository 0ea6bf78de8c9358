"""Every use of ranx beyond its documented API, in one place (pinned: ``ranx>=0.3.20,<0.4``).

``as2.metrics`` needs three things ranx does not offer as API: validating a metric name before a run is built
(``ranx.metrics.metric_switch``), a report of exactly the metrics asked for (ranx 0.3.21 raises ``KeyError``
for a single metric with a cutoff, so one more is computed and the ``Report``'s fields are cut back), and
its report as a Markdown table with ranx's own labels, score format and significance superscripts.
``tests/as2/test_evaluate.py`` exercises each of them, so a ranx release that moves one fails there, loudly.
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Sequence

from as2.tables import pipe_table


def is_metric(name: str) -> bool:
    """Whether ranx knows the metric ``name`` (``map``, ``ndcg@10``, ...)."""
    from ranx.metrics import metric_switch

    base, at, k = name.partition("@")
    try:
        metric_switch(base)
    except ValueError:
        return False
    return not at or k.isdigit()


def _asked(metrics: Sequence[str]) -> list[str]:
    """The metrics to ask ranx for: at least two (a single metric with a cutoff raises in ranx 0.3.21)."""
    metrics = list(metrics)
    return metrics if len(metrics) > 1 else [*metrics, "mrr" if metrics[0] == "map" else "map"]


def compare_runs(qrels, runs: Sequence, metrics: Sequence[str], stat_test: str, max_p: float):
    """``ranx.compare`` restricted to ``metrics``: a ``Report`` whose results and table hold those only."""
    from ranx import compare

    with warnings.catch_warnings():  # numba's notes on casts and parallel loops
        warnings.simplefilter("ignore")
        report = compare(
            qrels, list(runs), _asked(metrics), stat_test=stat_test, max_p=max_p, rounding_digits=4
        )
    report.metrics = list(metrics)
    report.results = {name: {m: report.results[name][m] for m in metrics} for name in report.results}
    return report


def per_question(qrels, run, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{ranx query id: {metric: value}}`` of one run."""
    from ranx import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = evaluate(qrels, run, _asked(metrics), return_mean=False, save_results_in_run=False)
    return {qid: {m: float(values[m][i]) for m in metrics} for i, qid in enumerate(run.get_query_ids())}


def stat_test_label(report, stat_test: str) -> str:
    return report.get_stat_test_label(stat_test)


def markdown_table(report) -> str:
    """ranx ``Report.to_table()`` as a Markdown pipe table, with ranx's own scores, labels and marks."""
    headers = ["#", "Model", *(report.get_metric_label(m) for m in report.metrics)]
    rows = [
        [letter, name, *(report.format_score(report.results[name][m]) + report.get_superscript_for_table(name, m)
                         for m in report.metrics)]
        for letter, name in zip(string.ascii_lowercase, report.model_names, strict=False)
    ]  # fmt: skip
    return pipe_table(headers, rows)
