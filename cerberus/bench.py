"""Cost of the teachers, their ensemble and the student, measured side by side in one process.

    python -m cerberus.bench --data runs/demo/data/test_scored --student runs/demo/student/model \\
        --out runs/demo/bench [--report runs/demo/eval/report.json] [--pairs 128]

Teachers are those recorded in the scored split's ``as2.json`` by ``data_prep.teacher_scores`` (kind and
path; precomputed ``run`` teachers have no cost to measure). For each system: parameters, ms/pair at batch
1 and 32 and pairs/s at batch 32 on the first ``pairs`` real pairs of the split, in fp32 and, where the
hardware runs it natively (``as2.precision``), bf16 autocast: emulated bf16 is never timed (on an AVX2-only
CPU it ran ~12x slower than fp32 and no user should run it). Models trained here (students, ``cerberus``
teachers) are also timed in int8 (dynamic quantization of their Linear layers, ``cerberus.scoring``), and
their FLOPs per pair are counted (``torch.utils.flop_counter`` over the timed pairs, as batched and padded
for scoring): ``gflops_b32_<precision>`` is what they achieve at batch 32, beside this machine's measured
matrix-product peak (``matmul_peak_gflops`` in ``bench.json``, n=512). Times are steady state: each batch shape is
run once as warm-up, then ``repeats`` timed passes over the same batches, median. ``bench.json`` records the
machine (CPU model, bf16 instructions, threads) and the precision ``auto`` resolves to there.
The ensemble runs every teacher, so its cost is the sum of theirs. With ``--report`` (``as2.evaluate``'s
``report.json``) the table also carries each system's P@1 / MAP / MRR. Writes ``bench.json`` and
``bench.md``; prints the table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from as2.config import atomic_write_text, cli, parse, setup_logging, write_json
from as2.data import SUMMARY_FILE, load
from as2.precision import hardware, matmul_gflops, torch_dtype
from as2.tables import COST_HEADERS, cost_cells, pipe_table
from as2.timing import steady

logger = logging.getLogger("cerberus.bench")
METRICS = ("precision@1", "map", "mrr")


@dataclass
class BenchConfig:
    data: str = field(default="", metadata={"help": "scored split (data_prep.teacher_scores output)"})
    student: str = field(default="", metadata={"help": "saved student folder"})
    student_name: str = field(default="cerberus", metadata={"help": "row name of the student (its run name)"})
    ensemble_name: str = field(default="ensemble", metadata={"help": "row name of the teacher ensemble"})
    ensemble: list[str] = field(
        default_factory=list, metadata={"help": "the ensemble's members (default: every timed teacher)"}
    )
    students: list[str] = field(
        default_factory=list, metadata={"help": "more students to time, as NAME=FOLDER (baselines)"}
    )
    out: str = field(default="", metadata={"help": "output folder for bench.json and bench.md"})
    report: str = field(default="", metadata={"help": "as2.evaluate report.json to join metrics from"})
    pairs: int = field(default=64, metadata={"help": "pairs timed at batch 32 (batch 1 times 16 of them)"})
    repeats: int = field(default=3, metadata={"help": "timed passes after the warm-up (median)"})
    max_length: int = field(default=128, metadata={"help": "tokens per pair"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)"})

    def __post_init__(self):
        if not self.data or not self.out:
            raise ValueError("data and out are required")
        for spec in self.students:
            if "=" not in spec:
                raise ValueError(f"students: expected NAME=FOLDER, got {spec!r}")
        if self.pairs < 32:
            raise ValueError(f"pairs must be >= 32 to time batch 32, got {self.pairs}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")


def count_parameters(obj) -> int:
    module = getattr(obj, "model", obj)
    return sum(p.numel() for p in module.parameters()) if isinstance(module, torch.nn.Module) else 0


def time_per_pair(score, questions, candidates, batch: int, repeats: int = 3) -> float:
    """Milliseconds per pair when ``score`` is called on batches of ``batch`` pairs, in steady state.

    One untimed pass over the same batches first (kernels for each padded shape are built then), then the
    median of ``repeats`` timed passes.
    """
    starts = range(0, len(questions) - batch + 1, batch)
    n = len(starts) * batch

    def one_pass() -> None:
        for s in starts:
            score(questions[s : s + batch], candidates[s : s + batch], ["q"] * batch, ["c"] * batch)

    return 1000 * steady(one_pass, repeats)[0] / n


def flops_per_pair(scorer, questions, candidates) -> float:
    """Floating-point operations per pair of one scoring pass over these pairs (matmuls and attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        scorer.score(questions, candidates, ["q"] * len(questions), ["c"] * len(questions))
    return counter.get_total_flops() / len(questions)


def inference_precisions() -> list[str]:
    """The precisions beyond fp32/bf16 timed for models trained here: int8, and ONNX Runtime where installed."""
    import importlib.util

    have_onnx = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnxscript"))
    return ["int8", *(["onnx", "onnx_int8"] if have_onnx else [])]


def measure(spec: dict, questions, candidates, max_length: int, precisions: list[str], repeats: int) -> dict:
    """ms/pair at batch 1 and 32 (and pairs/s, GFLOP/s) of one model in each of ``precisions``."""
    from cerberus.teachers import load_teacher

    row = {}
    for precision in precisions:
        scorer = load_teacher(spec, batch_size=32, max_length=max_length, precision=precision)  # loaded once
        for batch in (1, 32):
            scorer.batch_size = batch
            if precision in ("fp32", "bf16"):  # int8 and ONNX keep their weights outside parameters()
                row["params"] = count_parameters(scorer)
            n = len(questions) if batch > 1 else min(len(questions), 16)
            ms = time_per_pair(scorer.score, questions[:n], candidates[:n], batch, repeats)
            row[f"ms_per_pair_b{batch}_{precision}"] = ms
            if batch == 32:
                row[f"pairs_per_s_b32_{precision}"] = 1000 / ms
                if spec["kind"] == "cerberus" and precision in ("fp32", "bf16"):  # torch's FLOP counter only
                    if "flops_per_pair" not in row:  # the same pairs, the same FLOPs at every precision
                        row["flops_per_pair"] = flops_per_pair(scorer, questions[:n], candidates[:n])
                    row[f"gflops_b32_{precision}"] = row["flops_per_pair"] / ms / 1e6
    return row


def markdown(rows: dict[str, dict]) -> str:
    cols = [m for m in METRICS if any(m in r for r in rows.values())]
    cells = [
        [name, *(f"{r[m]:.3f}" if m in r else "" for m in cols), *cost_cells(r)] for name, r in rows.items()
    ]
    return pipe_table(["system", *cols, *COST_HEADERS], cells) + "\n"  # heads: timed as part of their student


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(BenchConfig, argv, description=__doc__)
    setup_logging()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # 1. real pairs and the teachers recorded with the split
    ds = load(cfg.data).select(range(min(len(load(cfg.data)), cfg.pairs)))
    questions = [r["question"] for r in ds for _ in r["cids"]][: cfg.pairs]
    candidates = [c for r in ds for c in r["candidates"]][: cfg.pairs]
    if len(questions) < 32:
        raise ValueError(f"{cfg.data}: only {len(questions)} pairs; need at least 32")
    teachers = json.loads((Path(cfg.data) / SUMMARY_FILE).read_text()).get("teachers", {})
    timed = {n: t for n, t in teachers.items() if t["kind"] != "run"}
    machine = hardware()
    precisions = ["fp32", "bf16"] if machine["bf16_native"] else ["fp32"]
    peak = {p: matmul_gflops(torch_dtype(p), n=512) for p in precisions}
    if not machine["bf16_native"]:
        logger.info("%s has no native bf16: timing fp32 only", machine["device"])

    # 2. each teacher, the ensemble (sum of its members), the student
    rows = {}
    for name, t in timed.items():
        logger.info("timing teacher %s (%s)", name, t["kind"])
        rows[name] = measure(
            {"kind": t["kind"], "path": t["path"]},
            questions,
            candidates,
            t.get("max_length", cfg.max_length),
            [*precisions, *(["int8"] if t["kind"] == "cerberus" else [])],  # int8: models trained here
            cfg.repeats,
        )
    members = cfg.ensemble or list(rows)
    unknown = [m for m in members if m not in rows]
    if unknown:
        raise ValueError(f"ensemble members {unknown} are not timed teachers of {cfg.data} ({list(rows)})")
    if len(members) > 1:
        keys = [
            k
            for k in rows[members[0]]
            if k.startswith(("params", "ms_")) and all(k in rows[m] for m in members)
        ]
        ens = {k: sum(rows[m][k] for m in members) for k in keys}
        ens.update({k.replace("ms_per_pair", "pairs_per_s"): 1000 / ens[k] for k in keys if "b32" in k})
        rows[cfg.ensemble_name] = {**ens, "members": members}
    students = ([(cfg.student_name, cfg.student)] if cfg.student else []) + [
        tuple(s.split("=", 1)) for s in cfg.students
    ]
    for name, path in students:
        logger.info("timing student %s (%s)", name, path)
        # the CERBERUS student in every precision it runs in (ONNX Runtime where installed); KD baselines int8 too
        extra = inference_precisions() if name == cfg.student_name else ["int8"]
        rows[name] = measure(
            {"kind": "cerberus", "path": path}, questions, candidates, cfg.max_length, [*precisions, *extra],
            cfg.repeats,
        )  # fmt: skip

    # 3. join accuracy from the evaluation report, write and print
    if cfg.report:
        report = json.loads(Path(cfg.report).read_text())
        for name, _ in students:  # a student's heads, in the report as <student>.<head>, listed before it
            heads = [n for n in report.get("runs", {}) if n.startswith(f"{name}.")]
            student_row = rows.pop(name)
            rows.update({h: {} for h in heads})
            rows[name] = student_row
        for name, r in rows.items():
            r.update({m: report["runs"][name][m] for m in METRICS if name in report.get("runs", {})})
    result = {
        "pairs": len(questions),
        "repeats": cfg.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "hardware": machine,
        "precisions": precisions,
        "matmul_peak_gflops": peak,
        "untimed_teachers": sorted(set(teachers) - set(timed)),
        "systems": rows,
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bench.json", result)
    table = markdown(rows)
    atomic_write_text(out / "bench.md", table)
    print(table)
    return result


if __name__ == "__main__":
    cli(main)
