"""Rank with a twin: re-rank each question's own candidates, or retrieve from a FAISS index. TREC run out.

    python -m twin.search --model runs/twin/model --data data/wikiqa/test --out runs/twin/pred \\
        --mode rerank [--k 10]                                    # (a) twin as a cheap AS2 ranker
    python -m twin.search --model runs/twin/model --data data/wikiqa/test --out runs/twin/pred \\
        --mode retrieve --index runs/twin/index_test --k 100 [--hits own]   # (b) open retrieval
    python -m twin.search --model ... --queries queries.tsv --index ... --mode retrieve --hits all

(a) ``rerank``: each question's candidates scored by the crossing layer (no index; any crossing); run ids
are the split's cids, so ``python -m as2.evaluate --data ... --run OUT/NAME.trec`` scores it directly.
(b) ``retrieve``: questions (or a TSV / JSONL queries file with ``--hits all``) search the index built by
``twin.index`` over the pool of all candidate sentences. ``--hits own`` (default) keeps, of each question's
top ``k`` pool hits, those that are its own candidates and writes their cids: an ``as2.evaluate``-ready run
in which a candidate missed by retrieval counts as not ranked. ``--hits all`` writes every hit with its doc
id (``<qid>/<cid>`` for a split index): the raw open-retrieval run.

Scores are the model's (``scale * <q, d> + bias`` under the cosine crossing), in both modes. Cascade: the
``rerank`` run with ``--k 10`` is the candidate list of the second stage:
``python -m cerberus.predict --model runs/student/model --data ... --candidates OUT/twin.trec``.
Writes ``OUT/NAME.trec`` and ``OUT/NAME.search.json`` (counts, timing).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from as2 import precision as precisions
from as2.config import cli, parse, setup_logging, write_json
from as2.data import DataError, load
from as2.runs import write_run
from twin.encode import read_queries
from twin.rank import rerank, retrieve

logger = logging.getLogger("twin.search")


@dataclass
class SearchConfig:
    model: str = field(default="", metadata={"help": "saved twin folder (model/ of twin/train.py)"})
    data: str = field(default="", metadata={"help": "converted split: its questions (and candidates)"})
    queries: str = field(
        default="", metadata={"help": "instead of data: TSV / JSONL queries (retrieve, hits all)"}
    )
    index: str = field(default="", metadata={"help": "index folder of twin.index (retrieve mode)"})
    mode: str = field(default="rerank", metadata={"help": "rerank (own candidates) or retrieve (index)"})
    hits: str = field(default="own", metadata={"help": "retrieve: own (cids, evaluable) or all (doc ids)"})
    k: int = field(default=0, metadata={"help": "hits per question (rerank: 0 = all candidates)"})
    name: str = field(default="twin", metadata={"help": "run name (and file name)"})
    out: str = field(default="", metadata={"help": "output folder for NAME.trec and NAME.search.json"})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass"})
    params: str = field(
        default="", metadata={"help": "faiss search parameters, e.g. nprobe=16 or efSearch=64"}
    )
    precision: str = field(
        default="auto", metadata={"help": "encoding: auto (bf16 where the hardware has it), fp32, bf16"}
    )

    def __post_init__(self):
        if not self.model or not self.out:
            raise ValueError("model and out are required")
        if self.mode not in ("rerank", "retrieve"):
            raise ValueError(f"mode must be rerank or retrieve, got {self.mode!r}")
        if self.hits not in ("own", "all"):
            raise ValueError(f"hits must be own or all, got {self.hits!r}")
        if bool(self.data) == bool(self.queries):
            raise ValueError("give exactly one of data (a split) and queries (a queries file)")
        if self.queries and (self.mode != "retrieve" or self.hits != "all"):
            raise ValueError("a queries file has no candidates: use --mode retrieve --hits all")
        if self.mode == "retrieve" and (not self.index or self.k < 1):
            raise ValueError("retrieve needs --index and --k >= 1")
        if self.k < 0:
            raise ValueError(f"k must be >= 0, got {self.k}")
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"name must be one word, got {self.name!r}")
        precisions.check(self.precision)


def main(argv: list[str] | None = None) -> dict:
    from twin.modeling import TwinModel, fingerprint

    cfg, _ = parse(SearchConfig, argv, description=__doc__)
    setup_logging()
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU-feature probe

    # 1. model, and the questions (a split, or a queries file)
    model = TwinModel.from_pretrained(cfg.model)
    ds = load(cfg.data) if cfg.data else None
    queries = (
        list(zip(ds["qid"], ds["question"], strict=True)) if ds is not None else read_queries(cfg.queries)
    )

    # 2. rank: own candidates by the crossing, or the index's top k
    precision = precisions.resolve(cfg.precision)
    start = time.perf_counter()
    if cfg.mode == "rerank":
        run = rerank(model, ds, cfg.k, cfg.batch_size, precision)
    else:
        from twin.store import open_index

        vindex = open_index(cfg.index)
        vindex.check_model(fingerprint(cfg.model), model.dim)
        if cfg.hits == "own" and vindex.meta.get("doc_ids") != "<qid>/<cid>":
            raise DataError(
                f"{cfg.index}: not an index of a split (doc ids are not <qid>/<cid>); use --hits all"
            )
        own = dict(zip(ds["qid"], ds["cids"], strict=True)) if cfg.hits == "own" else None
        run = retrieve(model, vindex, queries, cfg.k, cfg.batch_size, cfg.params, own, precision)
    seconds = time.perf_counter() - start

    # 3. the TREC run and a summary
    out = Path(cfg.out)
    path = write_run(out / f"{cfg.name}.trec", run, cfg.name)
    summary = {
        "model": cfg.model,
        "mode": cfg.mode,
        "hits": cfg.hits if cfg.mode == "retrieve" else "own",
        "k": cfg.k,
        "queries": len(queries),
        "pairs": sum(len(v) for v in run.values()),
        "questions_with_hits": sum(1 for v in run.values() if v),
        "seconds": seconds,
        "ms_per_query": 1000 * seconds / max(1, len(queries)),
        "precision": precision,
        "hardware": precisions.hardware(),
        "run": str(path),
    }
    write_json(out / f"{cfg.name}.search.json", summary)
    logger.info(
        "%s: %d queries, %d pairs in %.2f s -> %s", cfg.mode, len(queries), summary["pairs"], seconds, path
    )
    return summary


if __name__ == "__main__":
    cli(main)
