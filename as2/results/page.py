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
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import atomic_write_text, parse, setup_logging
from as2.results.inputs import EXTRA_SPLITS, copy_beside, read_folder, read_json, read_splits, read_training
from as2.results.machine import environment
from as2.results.plot import plot
from as2.results.sections import (
    adaptive_section,
    agreement_section,
    peer_section,
    precision_section,
    scaling_section,
    seed_maps,
    seed_section,
    training_section,
    twin_section,
)
from as2.results.table import markdown, members_text, peer_rows, per_split_text, selection_splits, table_rows
from as2.results.targets import targets
from as2.tables import pipe_table

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
    scaling: str = field(
        default="", metadata={"help": "folder of as2.bench_ranks <stage>.json (make scaling)"}
    )
    asnq: str = field(default="", metadata={"help": "data_prep.bench_asnq bench.json"})
    seeds: str = field(
        default="", metadata={"help": "make seeds' eval folder (<split>/report.json, runs <system>-seed<N>)"}
    )
    training: str = field(
        default="",
        metadata={"help": "the bench's folder (its models' summary.json) or a copy: training times"},
    )
    wall: str = field(default="", metadata={"help": "make bench's wall-time JSON (seconds, clean)"})
    agreement: str = field(
        default="", metadata={"help": "folder of as2.agreement <split>.json: members against the heads"}
    )
    command: str = field(default="make bench", metadata={"help": "the command that produced the inputs"})
    max_p: float = field(default=0.05, metadata={"help": "p-value at or below which a difference is marked"})

    def __post_init__(self):
        if not self.report or not self.bench:
            raise ValueError("report and bench are required")


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(ResultsConfig, argv, description=__doc__)
    setup_logging()
    out = Path(cfg.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    inputs = {"report": cfg.report, "bench": cfg.bench, "twin_bench": cfg.twin_bench,
              "retrieval": cfg.retrieval, "selection": cfg.selection, "adaptive": cfg.adaptive,
              "asnq": cfg.asnq, "wall": cfg.wall}  # fmt: skip
    data = {k: read_json(v) if v else {} for k, v in inputs.items()}
    for k, v in inputs.items():  # the JSON behind every number, beside the page
        if v:
            copy_beside(Path(v), out / "results" / f"{k}.json")

    report, bench, twin_bench = data["report"], data["bench"], data["twin_bench"]
    peers = read_splits(cfg.peers, out / "results" / "peers") if cfg.peers else {}
    splits = read_splits(cfg.splits, out / "results" / "splits", EXTRA_SPLITS) if cfg.splits else {}
    scaling = read_folder(cfg.scaling, out / "results" / "scaling") if cfg.scaling else {}
    seeds = read_splits(cfg.seeds, out / "results" / "seeds") if cfg.seeds else {}
    agreement = read_folder(cfg.agreement, out / "results" / "agreement") if cfg.agreement else {}
    training = read_training(cfg.training, out / "results" / "training.json") if cfg.training else {}
    rows = table_rows(report, bench, data["selection"], splits, student=cfg.student, ensemble=cfg.ensemble,
                      max_p=cfg.max_p) + peer_rows(peers)  # fmt: skip
    checks = targets(rows, twin_bench, student=cfg.student, ensemble=cfg.ensemble, twin=cfg.twin,
                     twin_teacher=cfg.twin_teacher, wall=data["wall"], seed_maps=seed_maps(seeds))  # fmt: skip
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
        + (f" --twin_teacher {cfg.twin_teacher}" if cfg.twin_teacher else "")
        + (" --peers docs/results/peers" if peers else "")
        + (" --splits docs/results/splits" if splits else "")
        + (" --scaling docs/results/scaling" if scaling else "")
        + (" --asnq docs/results/asnq.json" if data["asnq"] else "")
        + (" --seeds docs/results/seeds" if seeds else "")
        + (" --training docs/results/training.json" if training else "")
        + (" --wall docs/results/wall.json" if data["wall"] else "")
        + (" --agreement docs/results/agreement" if agreement else "")
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
            f"({sel.get('protocol', 'clean')} dev questions{selection_splits(sel)}): {members_text(sel)} "
            f"(dev {sel['metric']} of the fused members {sel[sel['metric']]:.3f}{per_split_text(sel)})."
        )
    lines += ["", markdown(rows), "![accuracy vs latency](accuracy_latency.png)", "", "## Targets", ""]
    lines += [
        pipe_table(["target", "measured", "met"], [[t, m, "yes" if ok else "no"] for t, m, ok in checks])
    ]
    lines += ["", *seed_section(seeds), *precision_section(cfg.student, report, bench)]
    lines += agreement_section(agreement, sel.get("members", []), cfg.student)
    lines += adaptive_section(data["adaptive"])
    lines += [*(twin_section(twin_bench, data["retrieval"]) if twin_bench or data["retrieval"] else [])]
    lines += peer_section(peers)
    lines += scaling_section(scaling, data["asnq"])
    lines += training_section(training, data["wall"])
    page = out / "RESULTS.md"
    kept = ""
    if page.is_file() and DISCUSSION in page.read_text():
        kept = page.read_text()[page.read_text().index(DISCUSSION) :]
    atomic_write_text(page, "\n".join(lines) + ("\n" + kept if kept else ""))
    result = {"rows": rows, "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in checks]}
    atomic_write_text(out / "results" / "table.json", json.dumps(result, indent=2) + "\n")
    print(markdown(rows))
    return result
