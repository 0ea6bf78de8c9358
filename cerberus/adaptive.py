"""Adaptive heads: the shared body once, then the heads one at a time, stopping when the ranking is clear.

    python -m cerberus.adaptive --model runs/wikiqa/students/cerberus/model --dev runs/wikiqa/data/dev \\
        --data runs/wikiqa/data/test --out runs/wikiqa/adaptive [--thresholds 0.05 0.1 0.2]

A multi-head student spends most of its compute in its heads (B3 3H1: three of its six layers of compute
per pair are one per head). Early exit in the spirit of adaptive computation (DACT-BERT): for one question,
the body runs once over its candidates, then the heads run one after another; after each head the student's
own combination over the heads computed so far (its weighted mean of probabilities or of logits, the weights
renormalised) ranks the candidates, and the question stops as soon as the best candidate leads the second
by at least the threshold (in units of the combined score), or when every head has run.

- **Order of the heads**: best first by each head's own MAP on ``--dev`` (chosen on dev, never on test).
- **Costs**: each question's candidates are one batch, as ``Ranker.rank`` serves a question; ms/pair are
  measured in one process for the full student (every head, same loop) and each threshold: a warm-up pass
  over the same questions, then the median of ``--repeats`` timed passes.
- **Accuracy**: MAP on ``--data`` (``as2.evaluate``'s protocol and tie rule), per threshold and for the
  full student, with ranx's paired test against the full student.

Writes ``OUT/adaptive.json`` (settings, order, per threshold: mean heads computed, MAP, ms/pair, the saving),
``OUT/adaptive.md`` and one TREC run per setting; prints the table.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from as2.config import ConfigError, atomic_write_text, cli, parse, setup_logging, write_json
from as2.data import apply_protocol, load_questions
from as2.metrics import evaluate_runs
from as2.results.sections import adaptive_table
from as2.runs import write_run
from as2.timing import steady

logger = logging.getLogger("cerberus.adaptive")


@dataclass
class AdaptiveConfig:
    model: str = field(default="", metadata={"help": "saved multi-head student folder"})
    data: str = field(default="", metadata={"help": "converted split to rank and evaluate (test)"})
    dev: str = field(default="", metadata={"help": "converted split that orders the heads (dev)"})
    out: str = field(default="", metadata={"help": "output folder"})
    thresholds: list[float] = field(
        default_factory=lambda: [0.05, 0.1, 0.2], metadata={"help": "lead of the best candidate that stops"}
    )
    max_length: int = field(default=96, metadata={"help": "tokens per pair"})
    precision: str = field(default="auto", metadata={"help": "auto, fp32, bf16 or int8"})
    repeats: int = field(default=3, metadata={"help": "timed passes after the warm-up (median)"})
    protocol: str = field(default="clean", metadata={"help": "questions evaluated: clean or raw"})

    def __post_init__(self):
        for name in ("model", "data", "dev", "out"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if not self.thresholds or min(self.thresholds) < 0:
            raise ValueError(f"thresholds must be >= 0, got {self.thresholds}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.precision not in ("auto", "fp32", "bf16", "int8"):  # heads one at a time: a torch model only
            raise ValueError(f"precision must be auto, fp32, bf16 or int8, got {self.precision!r}")


def head_order(model, tokenizer, dev_questions, max_length: int, dtype) -> tuple[list[int], dict[str, float]]:
    """Heads best first by their own MAP on the dev questions; returns (indices, {head: MAP})."""
    from cerberus.scoring import score_pairs

    pairs = [(q, c) for q in dev_questions for c in q.cids]
    texts = {(q.qid, c): t for q in dev_questions for c, t in zip(q.cids, q.candidates, strict=True)}
    scores = score_pairs(
        model, tokenizer, [q.question for q, _ in pairs], [texts[q.qid, c] for q, c in pairs],
        max_length=max_length, dtype=dtype,
    )  # fmt: skip
    runs = {}
    for j, name in enumerate(model.head_names):
        run: dict[str, dict[str, float]] = {}
        for (q, c), s in zip(pairs, scores[:, j], strict=True):
            run.setdefault(q.qid, {})[c] = float(s)
        runs[name] = run
    maps = {n: r["map"] for n, r in evaluate_runs(dev_questions, runs, metrics=["map"])["runs"].items()}
    order = sorted(range(model.num_heads), key=lambda j: -maps[model.head_names[j]])
    return order, maps


@torch.inference_mode()
def rank_adaptive(model, enc: dict, order: list[int], threshold: float) -> tuple[torch.Tensor, int]:
    """Combined scores of one question's candidates and how many heads ran before the lead reached
    ``threshold`` (``inf``: every head, the full student)."""
    hidden = model.encode(**enc)
    done: list[torch.Tensor] = []
    for j in order:
        done.append(model.heads[j](hidden, enc["attention_mask"])[0])
        score = model.mean_score(torch.stack(done, dim=-1), order[: len(done)])
        if len(score) < 2 or float(torch.topk(score, 2).values.diff().abs()) >= threshold:
            break
    return score, len(done)


def run_setting(model, batches, order, threshold, dtype, repeats: int) -> tuple[dict, float, float]:
    """``(run, ms/pair, mean heads)`` over the questions' batches: one warm-up pass, median of timed ones."""
    pairs = sum(len(cids) for _, cids, _ in batches)

    device = next(model.parameters()).device

    def one_pass():
        run, heads = {}, []
        for qid, cids, enc in batches:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                score, n = rank_adaptive(model, enc, order, threshold)
            run[qid] = dict(zip(cids, score.tolist(), strict=True))
            heads.append(n)
        return run, float(np.mean(heads))

    seconds, passes = steady(one_pass, repeats)
    run, heads = passes[0]
    return run, 1000 * seconds / pairs, heads


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(AdaptiveConfig, argv, description=__doc__)
    setup_logging()
    from transformers import AutoTokenizer

    from as2.precision import hardware
    from cerberus.collate import encode_pairs
    from cerberus.modeling import CerberusStudent
    from cerberus.scoring import for_inference

    student = CerberusStudent.from_pretrained(cfg.model)
    if student.num_heads < 2 or student.config.combine == "pooler":
        raise ConfigError(
            f"{cfg.model}: adaptive heads need a student of two or more heads combined by a mean "
            f"(it has {student.num_heads}, combine {student.config.combine!r})"
        )
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    model, precision, dtype = for_inference(student, cfg.precision)

    # 1. the order of the heads, on dev
    order, dev_maps = head_order(
        model, tokenizer, apply_protocol(load_questions(cfg.dev), cfg.protocol), cfg.max_length, dtype
    )
    logger.info(
        "head order on dev: %s",
        ", ".join(f"{model.head_names[j]} ({dev_maps[model.head_names[j]]:.3f})" for j in order),
    )

    # 2. every setting over the same per-question batches, timed side by side
    questions = apply_protocol(load_questions(cfg.data), cfg.protocol)
    batches = []
    for q in questions:
        enc = encode_pairs(tokenizer, [q.question] * len(q.cids), list(q.candidates), cfg.max_length)
        keep = ("input_ids", "attention_mask", "token_type_ids")
        batches.append((q.qid, list(q.cids), {k: v for k, v in enc.items() if k in keep}))
    settings = {"full": math.inf, **{f"lead_{t:g}": t for t in cfg.thresholds}}
    runs, rows = {}, {}
    for name, threshold in settings.items():
        runs[name], ms, heads = run_setting(model, batches, order, threshold, dtype, cfg.repeats)
        rows[name] = {"threshold": None if math.isinf(threshold) else threshold, "mean_heads": heads,
                      "ms_per_pair": ms}  # fmt: skip
        logger.info("%s: %.2f heads per question, %.2f ms/pair", name, heads, ms)

    # 3. accuracy against the full student, the table
    report = evaluate_runs(questions, runs, protocol=cfg.protocol)
    full = rows["full"]["ms_per_pair"]
    for name, row in rows.items():
        row["map"] = report["runs"][name]["map"]
        row["saved"] = 1 - row["ms_per_pair"] / full
        p = report["significance"].get(name, {}).get("comparisons", {}).get("full", {}).get("map")
        row["p_vs_full"] = p
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        write_run(out / f"{name}.trec", run, name)
    table = adaptive_table(rows) + "\n"
    result = {
        "model": cfg.model, "data": cfg.data, "dev": cfg.dev, "protocol": cfg.protocol,
        "questions": len(questions), "pairs": sum(len(q.cids) for q in questions), "precision": precision,
        "order": [model.head_names[j] for j in order], "dev_map": dev_maps, "repeats": cfg.repeats,
        "threads": torch.get_num_threads(), "hardware": hardware(), "settings": rows,
    }  # fmt: skip
    write_json(out / "adaptive.json", result)
    atomic_write_text(out / "adaptive.md", table)
    print(table)
    return result


if __name__ == "__main__":
    cli(main)
