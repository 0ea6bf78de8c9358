"""Build the offline FAISS index of a corpus with a twin's document tower.

    python -m twin.index --model runs/twin/model --corpus data/wikiqa/test --out runs/twin/index_test \\
        --spec Flat                     # or HNSW32, IVF256,PQ16, ... (faiss.index_factory strings)
    python -m twin.index --model runs/twin/model --corpus sentences.tsv --out runs/twin/index --spec HNSW32

``--corpus`` is a converted split (every candidate sentence; doc id ``<qid>/<cid>``) or a TSV
(``id<TAB>text``) / JSONL (``{"id", "text"}``) file. Writes ``OUT/index.faiss``, ``OUT/ids.txt`` (one id per
line, index order) and ``OUT/meta.json`` (model fingerprint, dim, normalization, metric, spec, count);
prints the meta and the build time as one JSON line. Memory stays at one chunk plus the index (vectors are spilled to
``.OUT.work-<key>/``); rerunning an interrupted build resumes from the spilled chunks. Only a twin with the
cosine crossing can be indexed (its score is an inner product of normalized vectors).

Under a launcher the ranks encode every ``world``-th chunk each, and for ``Flat`` / ``IVF...`` specs add
their chunks to shards of the trained index that rank 0 merges (``twin.store.build_index``): the same
neighbours as one process.

    OMP_NUM_THREADS=1 deepspeed --num_accelerators 2 twin/index.py --model ... --corpus ... --out ... --spec IVF256,Flat
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from as2.config import cli, parse, setup_logging
from as2.precision import check as check_precision

logger = logging.getLogger("twin.index")


@dataclass
class IndexConfig:
    model: str = field(default="", metadata={"help": "saved twin folder (model/ of twin/train.py)"})
    corpus: str = field(default="", metadata={"help": "converted split, or a TSV / JSONL file of id, text"})
    out: str = field(default="", metadata={"help": "index folder to write"})
    spec: str = field(
        default="Flat", metadata={"help": "faiss.index_factory string: Flat, HNSW32, IVF256,PQ16"}
    )
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass"})
    chunk_size: int = field(default=20_000, metadata={"help": "documents per spilled chunk (resume unit)"})
    train_size: int = field(default=100_000, metadata={"help": "vectors sampled to train IVF / PQ indexes"})
    seed: int = field(default=0, metadata={"help": "seed of the training sample"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)"})
    precision: str = field(
        default="auto", metadata={"help": "encoding: auto (bf16 where the hardware has it), fp32, bf16"}
    )

    def __post_init__(self):
        for name in ("model", "corpus", "out"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        check_precision(self.precision)
        for name in ("batch_size", "chunk_size", "train_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(IndexConfig, argv, description=__doc__)
    import torch

    from as2 import shards
    from twin.store import build_index

    rank, world = shards.init()  # one process, or the ranks of a launcher (deepspeed, torchrun)
    setup_logging(rank)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU-feature probe
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    import faiss  # noqa: F401  (imported before the clock starts: "seconds" is the build, not the imports)
    import transformers  # noqa: F401

    # 1. encode the corpus chunk by chunk, 2. train (if needed) and fill the index, 3. write it atomically
    start = time.perf_counter()
    meta = build_index(
        cfg.model,
        cfg.corpus,
        cfg.out,
        spec=cfg.spec,
        batch_size=cfg.batch_size,
        chunk_size=cfg.chunk_size,
        train_size=cfg.train_size,
        seed=cfg.seed,
        precision=cfg.precision,
        rank=rank,
        world=world,
    )
    if rank != 0:
        return {}
    meta = {**meta, "seconds": time.perf_counter() - start, "ranks": world}
    print(json.dumps(meta))
    return meta


if __name__ == "__main__":
    cli(main)
