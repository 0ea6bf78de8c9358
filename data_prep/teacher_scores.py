"""Score a converted split with each teacher; store per-candidate scores under the teacher's name.

    python -m data_prep.teacher_scores --config configs/teachers.yaml
    python -m data_prep.teacher_scores --data data/train --output data/train_scored --runs_dir runs/teachers \\
        --teachers '{"mpnet_ce": {"kind": "cerberus", "path": "runs/mpnet_ce/model"}}'
    python -m data_prep.teacher_scores --config configs/teachers.yaml --only mpnet_ce sre_ce  # a subset

Teacher kinds (they differ in architecture, tokenizer and kind; see ``cerberus/teachers.py``):

- ``cerberus``: a cross-encoder fine-tuned here (``cerberus/train.py``'s ``model/``): its logit;
- ``cross-encoder``: a sentence-transformers ``CrossEncoder`` folder or hub name: its raw logit;
- ``bi-encoder``: a ``SentenceTransformer`` folder or hub name: cosine of question and candidate;
- ``run``: a precomputed TREC run of any other system: its score (every candidate must be listed).

Writes ``output`` (the input split plus one float column per teacher; ``as2.json`` records each teacher's
fingerprint) and ``runs_dir/<teacher>.trec`` (run name = teacher name). Scores are computed in chunks of
questions cached under ``output/../.<output>.cache/<teacher>-<fingerprint>/``: an interrupted run continues
where it stopped, and a fingerprint (model files + kind + settings + data) that changed is never reused.

Under a launcher the chunks are shared out among the ranks (``as2.shards``; each rank resumes its own):

    OMP_NUM_THREADS=1 deepspeed --num_accelerators 2 data_prep/teacher_scores.py --config configs/teachers.yaml
    torchrun --nproc_per_node 2 data_prep/teacher_scores.py --config configs/teachers.yaml

and rank 0 writes the same output as one process would.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from as2 import shards
from as2.config import cli, parse, setup_logging
from as2.data import (
    BASE_COLUMNS,
    PROTOCOLS,
    SUMMARY_FILE,
    DataError,
    apply_protocol,
    from_dataset,
    load,
    save,
)
from as2.precision import check as check_precision
from as2.precision import hardware, resolve
from as2.runs import write_run
from cerberus.teachers import KINDS, data_fingerprint, load_teacher, teacher_fingerprint
from data_prep.pretrained import default_dest

logger = logging.getLogger("data_prep.teacher_scores")


@dataclass
class TeacherScoresConfig:
    data: str = field(default="", metadata={"help": "converted split to score"})
    output: str = field(default="", metadata={"help": "where to write the split with teacher columns"})
    runs_dir: str = field(default="", metadata={"help": "folder for one TREC run per teacher (optional)"})
    teachers: dict = field(default_factory=dict, metadata={"help": "name -> {kind, path[, max_length]}"})
    only: list[str] = field(
        default_factory=list,
        metadata={
            "help": "score only these teachers of `teachers` (e.g. the ensemble's members); empty: all"
        },
    )
    batch_size: int = field(default=64, metadata={"help": "pairs (or sentences) per forward pass"})
    max_length: int = field(default=256, metadata={"help": "tokens per pair (cross-encoders)"})
    chunk_questions: int = field(default=200, metadata={"help": "questions per cached chunk"})
    precision: str = field(
        default="auto", metadata={"help": "model teachers: auto (bf16 where the hardware has it), fp32, bf16"}
    )
    protocol: str = field(
        default="raw", metadata={"help": "questions kept in the output: raw (all) or clean"}
    )

    def __post_init__(self):
        for name in ("data", "output"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        check_precision(self.precision)
        if not self.teachers:
            raise ValueError("teachers: give at least one teacher (name -> {kind, path})")
        if self.only:
            unknown = [n for n in self.only if n not in self.teachers]
            if unknown:
                raise ValueError(f"only: {unknown} not among the configured teachers {sorted(self.teachers)}")
            self.teachers = {n: s for n, s in self.teachers.items() if n in self.only}
        os.environ.setdefault("AS2_MODELS", str(default_dest()))
        for name, spec in self.teachers.items():
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                spec["path"] = os.path.expandvars(spec["path"])  # e.g. ${AS2_MODELS}/minilm-l6
            if name in BASE_COLUMNS or not name or any(c.isspace() or c in "=+/" for c in name):
                raise ValueError(
                    f"teacher name {name!r} must be one word without '=+/' and not a base column"
                )
            if not isinstance(spec, dict) or spec.get("kind") not in KINDS or not spec.get("path"):
                raise ValueError(
                    f"teacher {name!r}: expected {{kind: one of {KINDS}, path: ...}}, got {spec!r}"
                )


def score_teacher(
    name: str,
    spec: dict,
    questions,
    cache: Path,
    cfg: TeacherScoresConfig,
    precision: str,
    rank: int = 0,
    world: int = 1,
) -> list[np.ndarray]:
    """Scores of one teacher for every question (on rank 0; ``[]`` on the others), computed chunk by chunk
    with a resumable cache; with several ranks, each scores its share of the chunks (``as2.shards``)."""
    starts = list(range(0, len(questions), cfg.chunk_questions))
    parts = [questions[s : s + cfg.chunk_questions] for s in starts]
    teacher = None

    def compute(i: int) -> np.ndarray:
        nonlocal teacher
        if teacher is None:  # loaded only if some chunk is not cached yet
            teacher = load_teacher(spec, batch_size=cfg.batch_size, max_length=spec.get("max_length", cfg.max_length),
                                   precision=precision)  # fmt: skip
        part = parts[i]
        return teacher.score(
            [q.question for q in part for _ in q.cids],
            [c for q in part for c in q.candidates],
            [q.qid for q in part for _ in q.cids],
            [c for q in part for c in q.cids],
        )

    sizes = [sum(len(q.cids) for q in part) for part in parts]
    gathered = shards.compute_chunks(sizes, compute, cache, rank, world, desc=f"teacher {name}")
    if rank != 0:
        return []
    flat = np.concatenate(gathered)
    if not np.isfinite(flat).all():
        raise DataError(f"teacher {name!r} produced NaN or inf scores (cache {cache})")
    bounds = np.cumsum([0] + [len(q.cids) for q in questions])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def previous_scores(out: Path, data_fp: str) -> dict[str, tuple[str, list]]:
    """``{teacher: (fingerprint, per-question scores)}`` of an earlier output of the same data, if any."""
    if not (out / SUMMARY_FILE).is_file():
        return {}
    old = from_dataset(load(out))
    if data_fingerprint(old) != data_fp:
        return {}
    records = json.loads((out / SUMMARY_FILE).read_text()).get("teachers", {})
    return {
        name: (rec["fingerprint"], [q.scores[name] for q in old])
        for name, rec in records.items()
        if all(name in q.scores for q in old)
    }


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(TeacherScoresConfig, argv, description=__doc__)
    rank, world = shards.init()  # one process, or the ranks of a launcher (deepspeed, torchrun)
    setup_logging(rank)

    # 1. the split and its fingerprint; teacher columns already present are kept unless re-scored
    questions = apply_protocol(from_dataset(load(cfg.data)), cfg.protocol)
    data_fp = data_fingerprint(questions)
    out = Path(cfg.output)
    cache_root = out.parent / f".{out.name}.cache"
    meta = json.loads((Path(cfg.data) / SUMMARY_FILE).read_text())
    records = dict(meta.get("teachers", {}))
    done = previous_scores(out, data_fp) if rank == 0 else {}  # rank 0's output decides, for every rank

    # 2. each teacher: fingerprint, cached chunks, scores into the questions
    precision = resolve(cfg.precision)  # auto: bf16 where the hardware runs it natively, else fp32
    for name, spec in cfg.teachers.items():
        settings = {
            "kind": spec["kind"],
            "max_length": spec.get("max_length", cfg.max_length),
            "precision": precision if spec["kind"] != "run" else None,
            # scores of model teachers are float32 logits (combined scores): cached bf16-rounded ones are stale
            "logit": "float32" if spec["kind"] != "run" else None,
        }
        fp = teacher_fingerprint(spec["path"], settings, data_fp)
        if shards.agree(done.get(name, (None,))[0] == fp, world):  # rank 0's output decides for every rank
            logger.info("teacher %s: scores in %s are up to date (fingerprint %s)", name, out, fp[:16])
            per_question = done[name][1] if rank == 0 else []
        else:
            per_question = score_teacher(
                name,
                spec,
                questions,
                cache_root / f"{name}-{fp[:16]}-q{cfg.chunk_questions}",  # chunk i depends on the chunking
                cfg,
                settings["precision"],
                rank,
                world,
            )
        if rank != 0:
            continue
        for q, s in zip(questions, per_question, strict=True):
            q.scores[name] = [float(x) for x in s]
        records[name] = {**settings, "path": str(spec["path"]), "fingerprint": fp}
        if cfg.runs_dir:
            run = {q.qid: dict(zip(q.cids, q.scores[name], strict=True)) for q in questions}
            write_run(Path(cfg.runs_dir) / f"{name}.trec", run, name)

    # 3. rank 0 writes the scored split atomically; every rank drops its chunk cache
    if rank != 0:
        shards.barrier(world)
        shutil.rmtree(cache_root, ignore_errors=True)
        return {}
    meta.update(teachers=records, scored_from=str(cfg.data), protocol=cfg.protocol, hardware=hardware())
    stats = save(questions, out, summary=meta)
    shards.barrier(world)
    shutil.rmtree(cache_root, ignore_errors=True)
    summary = {
        "output": str(out),
        "teachers": records,
        "questions": stats["questions"],
        "pairs": stats["pairs"],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    cli(main)
