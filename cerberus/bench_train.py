"""What a training step costs with its pairs in length chunks: one padded batch or ``length_chunks`` of them.

    python -m cerberus.bench_train --data runs/wikiqa/data/train --model ~/.cache/as2-models/minilm-l6 \\
        --out runs/wikiqa/bench_train [--chunks 1 2 3 4] [--batches 16] [--heads a b c --body_layers 3]

A training micro-batch holds whole question groups (``cerberus/train.py``), so its pairs vary in length and one
padded batch computes many padding tokens. Here the same micro-batches (the first ``batches`` of epoch 0, in
the order training sees them) run a student's forward and backward pass once per ``chunks`` setting
(``GroupCollator(length_chunks=...)``), in one process and in the precision training would use on this
machine (``auto``): one untimed pass, then the median of ``repeats`` timed passes. Reports seconds per
micro-batch, the speed-up over one padded batch, and the tokens computed (padding included) against the real
ones. Writes ``bench_train.json`` (with the machine and thread count) and prints a table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from as2 import batching
from as2.config import cli, parse, setup_logging, write_json
from as2.data import is_clean, load
from as2.precision import autocast, hardware, resolve
from as2.tables import pipe_table
from as2.timing import steady
from cerberus.collate import GroupCollator, forward_chunks
from cerberus.modeling import CerberusStudent, StudentConfig

logger = logging.getLogger("cerberus.bench_train")


@dataclass
class BenchTrainConfig:
    data: str = field(default="", metadata={"help": "converted training split (data_prep.convert)"})
    model: str = field(default="", metadata={"help": "pretrained encoder folder"})
    out: str = field(default="", metadata={"help": "output folder for bench_train.json"})
    chunks: list[int] = field(default_factory=lambda: [1, 2, 3, 4], metadata={"help": "settings to time"})
    heads: list[str] = field(default_factory=lambda: ["a", "b", "c"], metadata={"help": "head names"})
    body_layers: int = field(default=3, metadata={"help": "encoder layers in the shared body"})
    head_layers: int = field(default=1, metadata={"help": "transformer layers per head"})
    protocol: str = field(default="raw", metadata={"help": "training questions: raw or clean"})
    max_length: int = field(default=96, metadata={"help": "tokens per pair"})
    max_candidates: int = field(default=12, metadata={"help": "candidates per training group"})
    micro_batch: int = field(default=2, metadata={"help": "groups per micro-batch"})
    batches: int = field(default=16, metadata={"help": "micro-batches per timed pass"})
    repeats: int = field(default=3, metadata={"help": "timed passes after the warm-up (median)"})
    precision: str = field(default="auto", metadata={"help": "auto | fp32 | bf16"})
    seed: int = field(default=42, metadata={"help": "seed of the epoch order and the new layers"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)"})

    def __post_init__(self):
        if not self.data or not self.model or not self.out:
            raise ValueError("data, model and out are required")
        if not self.chunks or min(self.chunks) < 1:
            raise ValueError(f"chunks must be settings >= 1, got {self.chunks}")
        if self.batches < 1 or self.repeats < 1:
            raise ValueError("batches and repeats must be >= 1")


def padded_tokens(batch: dict) -> tuple[int, int]:
    """``(tokens computed, real tokens)`` of a collated micro-batch."""
    computed = sum(c["input_ids"].numel() for c in batch["inputs"])
    real = sum(int(c["attention_mask"].sum()) for c in batch["inputs"])
    return computed, real


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(BenchTrainConfig, argv, description=__doc__)
    setup_logging()
    from transformers import AutoTokenizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ds = load(cfg.data)
    if cfg.protocol == "clean":
        ds = ds.filter(lambda row: is_clean(row["labels"]))
    groups = batching.question_groups([len(c) for c in ds["cids"]], cfg.max_candidates)
    items = batching.epoch_batches(groups, cfg.micro_batch, 0, cfg.seed)[: cfg.batches]
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    student = CerberusStudent.from_encoder(
        cfg.model,
        StudentConfig(head_names=cfg.heads, body_layers=cfg.body_layers, head_layers=cfg.head_layers),
    )
    student.train()
    precision = resolve(cfg.precision)

    def one_pass(batches):
        for batch in batches:
            with autocast(precision):
                logits = forward_chunks(student, batch["inputs"])["logits"]
            logits.float().sum().backward()
        student.zero_grad(set_to_none=True)

    rows = []
    for k in cfg.chunks:
        collate = GroupCollator(ds, tokenizer, cfg.max_length, None, length_chunks=k)
        batches = [collate(g) for g in items]
        computed, real = map(sum, zip(*(padded_tokens(b) for b in batches), strict=True))
        seconds, _ = steady(lambda b=batches: one_pass(b), repeats=cfg.repeats)
        rows.append({"length_chunks": k, "s_per_micro_batch": seconds / len(batches),
                     "tokens_computed": computed, "tokens_real": real})  # fmt: skip
        logger.info(
            "length_chunks %d: %.3f s/micro-batch, %d tokens computed", k, seconds / len(batches), computed
        )
    base = next((r for r in rows if r["length_chunks"] == 1), rows[0])
    for r in rows:
        r["speedup"] = base["s_per_micro_batch"] / r["s_per_micro_batch"]
        r["padding"] = 1 - r["tokens_real"] / r["tokens_computed"]
    result = {
        "config": vars(cfg),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "hardware": hardware(),
        "pairs": sum(len(g) for b in items for g in b),
        "rows": rows,
    }
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(cfg.out) / "bench_train.json", result)
    headers = ["length_chunks", "s/micro-batch", "speed-up", "tokens computed", "padding"]
    print(pipe_table(headers, [[r["length_chunks"], f"{r['s_per_micro_batch']:.3f}", f"{r['speedup']:.2f}x",
                                r["tokens_computed"], f"{100 * r['padding']:.1f}%"] for r in rows]))  # fmt: skip
    return result


if __name__ == "__main__":
    cli(main)
