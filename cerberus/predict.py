"""Rank questions' candidates with a saved student: one TREC run per head and one for the combination.

    python -m cerberus.predict --model runs/student/model --data data/wikiqa/test --out runs/pred \\
        --name cerberus [--candidates twin_top10.trec] [--protocol clean]
    python -m cerberus.predict --model runs/student/model --data my_questions.jsonl --out runs/pred

Reads the student folder (``cerberus/train.py``'s ``model/``) and either a converted split
(``data_prep.convert``) or a user's file as it is: JSONL with one question per line
(``{"question": ..., "candidates": [...]}``, optional ``qid``, ``cids``) or a TSV / CSV / JSONL / Parquet
table with columns ``question`` and ``candidate`` (optional ``qid``, ``cid``; see ``as2.table``). Writes
``OUT/<name>.trec`` (combined score, run name ``<name>``), ``OUT/<name>.<head>.trec`` per head of a
multi-head student (run name ``<name>.<head>``), and ``OUT/<name>.predict.json`` (counts, timing).
With ``--candidates RUN`` only the (question, candidate) pairs that run lists are scored (with
``--candidates_k K``, each question's K best of them): the cascade's second stage after a cheap first-stage
ranker. With ``--protocol clean`` only the questions that ``as2.evaluate``'s default protocol scores (a correct
and an incorrect candidate among their labels) are ranked: on WikiQA test 2,341 of its 6,165 pairs.

Pairs are scored in chunks (``--chunk_pairs``) cached under ``OUT/.<name>.cache/`` until the runs are
written, so an interrupted run resumes; under a launcher the chunks are shared out among the ranks and
rank 0 writes the same runs as one process would (``as2.shards``):

    OMP_NUM_THREADS=1 deepspeed --num_accelerators 2 cerberus/predict.py --model ... --data ... --out ...
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from as2 import precision as precisions
from as2 import shards
from as2.config import cli, parse, setup_logging, write_json
from as2.data import PROTOCOLS, DataError, is_clean
from as2.runs import read_run, write_run
from as2.table import load_split
from cerberus.modeling import CerberusStudent
from cerberus.scoring import INFERENCE_PRECISIONS, for_inference, score_pairs
from cerberus.teachers import teacher_fingerprint

logger = logging.getLogger("cerberus.predict")


@dataclass
class PredictConfig:
    model: str = field(default="", metadata={"help": "saved student folder (model/ of cerberus/train.py)"})
    data: str = field(default="", metadata={"help": "converted split, or a JSONL / TSV file of questions"})
    out: str = field(default="", metadata={"help": "output folder for the TREC runs"})
    name: str = field(default="cerberus", metadata={"help": "run name of the combined score"})
    candidates: str = field(default="", metadata={"help": "TREC run: rerank only the candidates it lists"})
    candidates_k: int = field(
        default=0,
        metadata={"help": "rerank only each question's top K of the candidates run (0: all it lists)"},
    )
    batch_size: int = field(default=64, metadata={"help": "pairs per forward pass"})
    max_length: int = field(default=128, metadata={"help": "tokens per pair"})
    precision: str = field(
        default="auto",
        metadata={"help": f"auto (bf16 where the hardware has it, else fp32), one of {INFERENCE_PRECISIONS}"},
    )
    chunk_pairs: int = field(
        default=8192, metadata={"help": "pairs per cached chunk (the resume and rank unit)"}
    )
    protocol: str = field(
        default="raw",
        metadata={"help": "raw: every question; clean: those with a correct and an incorrect candidate"},
    )

    def __post_init__(self):
        for name in ("model", "data", "out"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"name must be one word, got {self.name!r}")
        precisions.check(self.precision, INFERENCE_PRECISIONS)
        if self.chunk_pairs < 1:
            raise ValueError(f"chunk_pairs must be >= 1, got {self.chunk_pairs}")
        if self.candidates_k < 0 or (self.candidates_k and not self.candidates):
            raise ValueError(f"candidates_k must be >= 0 and needs candidates, got {self.candidates_k}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")


def select_pairs(
    ds, candidates_run: str | None, k: int = 0, protocol: str = "raw", source: str = "data"
) -> list[tuple[str, str, str, str]]:
    """(qid, cid, question, candidate) of every pair to score, restricted to a run's pairs if given (to each
    question's ``k`` best of them by the run's scores if ``k``), of the clean questions only if ``protocol``
    is ``clean``."""
    keep = None
    if candidates_run:
        _, keep = read_run(candidates_run)
        if k:
            keep = {q: dict(sorted(c.items(), key=lambda kv: -kv[1])[:k]) for q, c in keep.items()}
        by_q = {q: set(c) for q, c in zip(ds["qid"], ds["cids"], strict=True)}
        unknown = [(q, c) for q, cands in keep.items() for c in cands if c not in by_q.get(q, ())]
        if unknown:
            raise DataError(f"{candidates_run}: {len(unknown)} pair(s) not in the data, e.g. {unknown[:5]}")
    pairs = []
    for row in ds:
        if protocol == "clean" and not is_clean(row["labels"]):  # a candidates run may list it: not an error
            continue
        wanted = keep.get(row["qid"]) if keep is not None else None
        if keep is not None and not wanted:
            continue
        for cid, text in zip(row["cids"], row["candidates"], strict=True):
            if wanted is None or cid in wanted:
                pairs.append((row["qid"], cid, row["question"], text))
    if protocol == "clean" and not pairs:
        raise DataError(
            f"{source}: no question has both a correct and an incorrect candidate (protocol clean)"
        )
    return pairs


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(PredictConfig, argv, description=__doc__)
    rank, world = shards.init()  # one process, or the ranks of a launcher (deepspeed, torchrun)
    setup_logging(rank)
    from transformers import AutoTokenizer

    # 1. model, tokenizer and the pairs to score
    model = CerberusStudent.from_pretrained(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    pairs = select_pairs(
        load_split(cfg.data), cfg.candidates or None, cfg.candidates_k, cfg.protocol, cfg.data
    )
    model, resolved, dtype = for_inference(model, cfg.precision)

    # 2. score in chunks of pairs, shared out among the ranks, each cached until the runs are written
    width = model.num_heads + 1
    starts = list(range(0, len(pairs), cfg.chunk_pairs))
    settings = {"precision": resolved, "max_length": cfg.max_length, "batch_size": cfg.batch_size,
                "chunk_pairs": cfg.chunk_pairs}  # fmt: skip
    pairs_hash = hashlib.sha256()
    for pair in pairs:  # one pair at a time: no string the size of the whole split
        pairs_hash.update(json.dumps(pair).encode())
    key = teacher_fingerprint(cfg.model, settings, pairs_hash.hexdigest())
    cache_root = Path(cfg.out) / f".{cfg.name}.cache"

    computed = [0]  # pairs scored in this run (a resumed run scores only the chunks not cached)

    def compute(i: int):
        part = pairs[starts[i] : starts[i] + cfg.chunk_pairs]
        computed[0] += len(part)
        return score_pairs(model, tokenizer, [p[2] for p in part], [p[3] for p in part], batch_size=cfg.batch_size,
                           max_length=cfg.max_length, dtype=dtype)  # fmt: skip

    sizes = [width * len(pairs[s : s + cfg.chunk_pairs]) for s in starts]
    start = time.perf_counter()
    chunks = shards.compute_chunks(sizes, compute, cache_root / key[:16], rank, world, desc="score")
    seconds = time.perf_counter() - start
    if rank != 0:
        shards.barrier(world)
        shutil.rmtree(cache_root, ignore_errors=True)
        return {}
    scores = np.concatenate(chunks).reshape(-1, width) if chunks else np.zeros((0, width), np.float32)

    # 3. one run per head (multi-head students) and one for the combined score
    out = Path(cfg.out)
    columns = {cfg.name: -1}
    if model.num_heads > 1:
        columns.update({f"{cfg.name}.{h}": j for j, h in enumerate(model.head_names)})
    files = {}
    for run_name, col in columns.items():
        run: dict[str, dict[str, float]] = {}
        for (qid, cid, _, _), s in zip(pairs, scores[:, col], strict=True):
            run.setdefault(qid, {})[cid] = float(s)
        files[run_name] = str(write_run(out / f"{run_name}.trec", run, run_name))
    summary = {
        "model": cfg.model,
        "data": cfg.data,
        "protocol": cfg.protocol,
        "pairs": len(pairs),
        "pairs_scored_here": computed[0],  # fewer than pairs after a resume: the rest came from the cache
        "seconds": seconds,
        "ms_per_pair": 1000 * seconds / computed[0] if computed[0] else None,
        "precision": resolved,
        "ranks": world,
        "hardware": precisions.hardware(),
        "runs": files,
    }
    write_json(out / f"{cfg.name}.predict.json", summary)
    shards.barrier(world)
    shutil.rmtree(cache_root, ignore_errors=True)
    logger.info("scored %d pairs in %.1f s (%s); runs: %s", len(pairs), seconds, resolved, ", ".join(files))
    return summary


if __name__ == "__main__":
    cli(main)
