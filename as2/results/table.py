"""The table of systems: one row per run of the report or system of the bench, with its role,
its metrics (marked against the ensemble), MAP on the extra splits and its costs."""

from __future__ import annotations

import os

from as2.results.inputs import EXTRA_SPLITS, PEER_SPLITS
from as2.tables import COST_HEADERS, COSTS, cost_cells, pipe_table

METRICS = ("precision@1", "map", "mrr")


PEER_ROLE = "peer: sentence-transformers CrossEncoder, library defaults"
MEMBER_ROLE = "teacher, ensemble member"


def role(name: str, candidates: list[str], members: list[str], student: str) -> str:
    if name in members:
        return MEMBER_ROLE
    if name in candidates:
        return "teacher candidate"
    if name.startswith(f"{student}."):
        return "CERBERUS head"
    if name.startswith(f"{student}_"):  # the student predicted at another precision
        return f"CERBERUS student, {name[len(student) + 1 :]}"
    return {
        "ensemble": "teacher ensemble (score fusion)",
        student: "CERBERUS student",
        "kd_avg": "KD from the averaged teachers",
        "labels_only": "student on labels only",
        "twin": "twin encoder (re-ranking)",
        "cascade": "twin top 5, re-ranked by CERBERUS",
    }.get(name, "single-teacher KD student" if name.startswith("kd_") else "")


def mark(report: dict, name: str, baseline: str, metric: str, max_p: float) -> str:
    """▲ / ▼ when ``name`` is significantly better / worse than ``baseline`` on ``metric``."""
    sig = report.get("significance", {})
    p = sig.get(name, {}).get("comparisons", {}).get(baseline, {}).get(metric)
    if name == baseline or p is None or p > max_p:
        return ""
    return "▲" if report["runs"][name][metric] > report["runs"][baseline][metric] else "▼"


def members_text(sel: dict) -> str:
    """The members, with the weights of their z-score fusion when ``as2.select`` chose them on dev."""
    weights = sel.get("weights") or {}
    return ", ".join(f"`{m}`" + (f" ({weights[m]:.2f})" if m in weights else "") for m in sel["members"])


def _split_name(path: str) -> str:
    return os.path.basename(os.path.normpath(path))


def selection_splits(sel: dict) -> str:
    """``, mean over the splits dev, selqa_dev`` when ``as2.select`` chose on several dev splits."""
    data = sel.get("data")
    if not isinstance(data, list) or len(data) < 2:
        return ""
    return ", the mean over the splits " + ", ".join(f"`{_split_name(d)}`" for d in data)


def per_split_text(sel: dict) -> str:
    """``: dev 0.81, selqa_dev 0.84`` (the choice's metric on each split) for a several-split selection."""
    data, each = sel.get("data"), sel.get("per_split") or []
    if not isinstance(data, list) or len(data) < 2 or len(each) != len(data):
        return ""
    return "; " + ", ".join(f"`{_split_name(d)}` {v:.3f}" for d, v in zip(data, each, strict=True))


def split_maps(name: str, reports: dict[str, dict]) -> dict[str, float]:
    """``{"map@<split>": MAP}`` of a system on the extra evaluation splits that scored it."""
    return {
        f"map@{split}": reports[split]["runs"][name]["map"]
        for split in EXTRA_SPLITS
        if name in reports.get(split, {}).get("runs", {})
    }


def table_rows(
    report: dict,
    bench: dict,
    selection: dict,
    splits: dict | None = None,
    *,
    student: str,
    ensemble: str,
    max_p: float,
) -> list[dict]:
    """One row per run of ``report`` (then per system only ``bench`` timed): role, metrics, marks, costs."""
    candidates = list(selection.get("candidates", {}))
    members = selection.get("members", [])
    costs = bench.get("systems", {})
    names = list(report["runs"]) + [n for n in costs if n not in report["runs"]]
    rows = []
    for name in names:
        row = {"system": name, "role": role(name, candidates, members, student)}
        for m in METRICS:
            if name in report["runs"]:
                row[m] = report["runs"][name][m]
                row[f"{m}_mark"] = mark(report, name, ensemble, m, max_p)
        row.update({k: costs[name][k] for k, _ in COSTS if k in costs.get(name, {})})
        row.update(split_maps(name, splits or {}))
        rows.append(row)
    return rows


def peer_rows(peers: dict[str, dict]) -> list[dict]:
    """Table rows of the peers on the test split (their costs are their encoders', timed as teachers)."""
    return [
        {
            "system": name,
            "role": PEER_ROLE,
            **{m: v[m] for m in METRICS},
            **{f"{m}_mark": "" for m in METRICS},
            **split_maps(name, peers),
        }
        for name, v in peers.get("test", {}).get("runs", {}).items()
    ]


def markdown(rows: list[dict]) -> str:
    extra = [s for s in EXTRA_SPLITS if any(f"map@{s}" in r for r in rows)]
    head = ["system", "role", "P@1", "MAP", "MRR", *(f"MAP {PEER_SPLITS[s]}" for s in extra), *COST_HEADERS]
    cells = [
        [f"`{r['system']}`", r["role"],
         *(f"{r[m]:.3f}{r[f'{m}_mark']}" if m in r else "" for m in METRICS),
         *(f"{r[f'map@{s}']:.3f}" if f"map@{s}" in r else "" for s in extra), *cost_cells(r)]
        for r in rows
    ]  # fmt: skip
    return pipe_table(head, cells) + "\n"
