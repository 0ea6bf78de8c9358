"""The results page: one table (accuracy, significance against the ensemble, cost) and an accuracy-latency plot.

    python -m as2.results --report runs/wikiqa/eval/report.json --bench runs/wikiqa/bench/bench.json \\
        [--twin_bench runs/wikiqa/twin_bench/bench.json] [--retrieval runs/wikiqa/eval_retrieve/report.json] \\
        [--selection runs/wikiqa/select/ensemble.json] --out docs

Reads only JSON written by earlier stages (``as2.evaluate``'s report, ``cerberus.bench``, ``twin.bench``,
``as2.select``), copies each into ``OUT/results/`` and writes ``OUT/RESULTS.md`` and
``OUT/accuracy_latency.png``. Re-running it on the copies regenerates the page without any training:
``python -m as2.results --report docs/results/report.json --bench docs/results/bench.json ... --out docs``.
A ``## Discussion`` section already in ``OUT/RESULTS.md`` (written by hand) is kept as it is.

Row names follow the pipeline's run names: the teacher candidates (``as2.select``'s candidates, members
marked), ``ensemble``, ``cerberus`` and its heads ``cerberus.<teacher>``, single-teacher KD students
``kd_<teacher>``, ``kd_avg``, ``labels_only``, ``twin`` and ``cascade``. A mark after a metric says the
system differs from the ensemble with p <= ``max_p`` (ranx's paired test of the report): ▲ better, ▼ worse.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import atomic_write_text, cli, parse, setup_logging
from as2.results_sections import (
    EXTRA_SPLITS,
    METRICS,
    PEER_SPLITS,
    adaptive_section,
    environment,
    peer_rows,
    peer_section,
    plot,
    precision_section,
    read_json,
    read_splits,
    split_maps,
    twin_section,
)
from as2.tables import COST_HEADERS, COSTS, cost_cells, pipe_table

DISCUSSION = "## Discussion"


@dataclass
class ResultsConfig:
    report: str = field(default="", metadata={"help": "as2.evaluate report.json of the test split"})
    bench: str = field(default="", metadata={"help": "cerberus.bench bench.json"})
    twin_bench: str = field(default="", metadata={"help": "twin.bench bench.json"})
    retrieval: str = field(default="", metadata={"help": "as2.evaluate report.json of the twin's retrieval"})
    selection: str = field(
        default="", metadata={"help": "as2.select JSON: the ensemble's candidates, members"}
    )
    adaptive: str = field(default="", metadata={"help": "cerberus.adaptive adaptive.json"})
    out: str = field(default="docs", metadata={"help": "folder for RESULTS.md, the plot and results/"})
    ensemble: str = field(default="ensemble", metadata={"help": "row the significance marks compare with"})
    student: str = field(default="cerberus", metadata={"help": "the CERBERUS student's row"})
    twin: str = field(default="twin", metadata={"help": "the twin's row"})
    twin_teacher: str = field(
        default="", metadata={"help": "the row of the teacher the twin was distilled from"}
    )
    peers: str = field(
        default="", metadata={"help": "make peers' eval folder (<split>/report.json): peers as rows"}
    )
    splits: str = field(
        default="", metadata={"help": "folder of dev / selqa_dev report.json: MAP columns beside test"}
    )
    command: str = field(default="make bench", metadata={"help": "the command that produced the inputs"})
    max_p: float = field(default=0.05, metadata={"help": "p-value at or below which a difference is marked"})

    def __post_init__(self):
        if not self.report or not self.bench:
            raise ValueError("report and bench are required")


def role(name: str, candidates: list[str], members: list[str], student: str) -> str:
    if name in members:
        return "teacher, ensemble member"
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


def table_rows(
    cfg: ResultsConfig, report: dict, bench: dict, selection: dict, splits: dict | None = None
) -> list[dict]:
    candidates = list(selection.get("candidates", {}))
    members = selection.get("members", [])
    costs = bench.get("systems", {})
    names = list(report["runs"]) + [n for n in costs if n not in report["runs"]]
    rows = []
    for name in names:
        row = {"system": name, "role": role(name, candidates, members, cfg.student)}
        for m in METRICS:
            if name in report["runs"]:
                row[m] = report["runs"][name][m]
                row[f"{m}_mark"] = mark(report, name, cfg.ensemble, m, cfg.max_p)
        row.update({k: costs[name][k] for k, _ in COSTS if k in costs.get(name, {})})
        row.update(split_maps(name, splits or {}))
        rows.append(row)
    return rows


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


def targets(cfg: ResultsConfig, rows: list[dict], twin_bench: dict) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met?) for each target the results page states."""
    by = {r["system"]: r for r in rows}
    s, e = by.get(cfg.student, {}), by.get(cfg.ensemble, {})
    out = []
    if "map" in s and "map" in e:
        out.append(("student MAP >= ensemble MAP", f"{s['map']:.3f} vs {e['map']:.3f}", s["map"] >= e["map"]))
    kd = {n: r["map"] for n, r in by.items() if n.startswith("kd_") and n != "kd_avg" and "map" in r}
    if "map" in s and kd:
        best = max(kd, key=kd.get)
        out.append(
            ("student MAP > every single-teacher KD student", f"{s['map']:.3f} vs best {best} {kd[best]:.3f}",
             s["map"] > kd[best])
        )  # fmt: skip
    for k in ("ms_per_pair_b1_fp32", "ms_per_pair_b32_fp32", "ms_per_pair_b32_bf16"):
        if k in s and k in e:
            ratio = e[k] / s[k]
            out.append((f"student >= 5x faster than the ensemble ({k})", f"{ratio:.1f}x", ratio >= 5))
    if "params" in s and "params" in e:
        frac = s["params"] / e["params"]
        out.append(("student params <= 1/3 of the ensemble's", f"{frac:.3f}", frac <= 1 / 3))
    twin = by.get(cfg.twin, {})
    teacher = cfg.twin_teacher
    if "map" in twin and teacher in by and "map" in by[teacher]:
        ratio = twin["map"] / by[teacher]["map"]
        out.append((f"twin MAP >= 90% of its teacher's ({teacher})", f"{100 * ratio:.1f}%", ratio >= 0.9))
    if twin_bench.get("per_query"):
        sp = twin_bench["per_query"]["speedup"]
        out.append(("twin >= 20x cheaper per query than a cross-encoder", f"{sp:.1f}x", sp >= 20))
    return out


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(ResultsConfig, argv, description=__doc__)
    setup_logging()
    out = Path(cfg.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    inputs = {"report": cfg.report, "bench": cfg.bench, "twin_bench": cfg.twin_bench,
              "retrieval": cfg.retrieval, "selection": cfg.selection, "adaptive": cfg.adaptive}  # fmt: skip
    data = {k: read_json(v) if v else {} for k, v in inputs.items()}
    for k, v in inputs.items():  # the JSON behind every number, beside the page
        if v and Path(v).resolve() != (out / "results" / f"{k}.json").resolve():
            shutil.copyfile(v, out / "results" / f"{k}.json")

    report, bench, twin_bench = data["report"], data["bench"], data["twin_bench"]
    peers = read_splits(cfg.peers, out / "results" / "peers") if cfg.peers else {}
    splits = read_splits(cfg.splits, out / "results" / "splits", EXTRA_SPLITS) if cfg.splits else {}
    rows = table_rows(cfg, report, bench, data["selection"], splits) + peer_rows(peers)
    checks = targets(cfg, rows, twin_bench)
    auto = bench.get("hardware", {}).get("auto_precision", "bf16")
    plot(rows, twin_bench, out / "accuracy_latency.png", cost=f"ms_per_pair_b32_{auto}")

    sel = data["selection"]
    lines = [
        "# Results on WikiQA",
        "",
        f"Produced by `{cfg.command}` (the stages and their caching: the Makefile). Regenerate this page "
        "from the JSON in [results/](results/) without training: `python -m as2.results --report "
        "docs/results/report.json --bench docs/results/bench.json --twin_bench docs/results/twin_bench.json "
        "--retrieval docs/results/retrieval.json --selection docs/results/selection.json"
        + (" --adaptive docs/results/adaptive.json" if data["adaptive"] else "")
        + (" --peers docs/results/peers" if peers else "")
        + (" --splits docs/results/splits" if splits else "")
        + " --out docs`.",
        "",
        *environment(bench.get("hardware", {})),
        f"Costs: {bench.get('pairs')} real test pairs, {bench.get('threads')} torch threads, one process.",
        "",
        f"Evaluation: WikiQA test, protocol {report['protocol']} ({report['questions']} questions), ties "
        f"{report['ties']}; ▲/▼: significantly better/worse than `{cfg.ensemble}` "
        f"({report.get('stat_test', 'fisher')}, p <= {cfg.max_p}).",
    ]
    if sel:
        lines.append(
            f"Ensemble members chosen on dev by greedy forward selection on {sel['metric']} "
            f"({sel.get('protocol', 'clean')} dev questions): {members_text(sel)} "
            f"(dev {sel['metric']} of the fused members {sel[sel['metric']]:.3f})."
        )
    lines += ["", markdown(rows), "![accuracy vs latency](accuracy_latency.png)", "", "## Targets", ""]
    lines += [
        pipe_table(["target", "measured", "met"], [[t, m, "yes" if ok else "no"] for t, m, ok in checks])
    ]
    lines += ["", *precision_section(cfg.student, report, bench), *adaptive_section(data["adaptive"])]
    lines += [*(twin_section(twin_bench, data["retrieval"]) if twin_bench or data["retrieval"] else [])]
    lines += peer_section(peers)
    page = out / "RESULTS.md"
    kept = ""
    if page.is_file() and DISCUSSION in page.read_text():
        kept = page.read_text()[page.read_text().index(DISCUSSION) :]
    atomic_write_text(page, "\n".join(lines) + ("\n" + kept if kept else ""))
    result = {"rows": rows, "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in checks]}
    atomic_write_text(out / "results" / "table.json", json.dumps(result, indent=2) + "\n")
    print(markdown(rows))
    return result


if __name__ == "__main__":
    cli(main)
