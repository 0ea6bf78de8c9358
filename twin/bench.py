"""Cost and recall of the twin pipeline: index build vs raw encoding, memory, per-query cost, ANN recall.

    python -m twin.bench --encoder ~/.cache/as2-models/minilm-l6 --out runs/twin_bench \\
        --corpus_size 20000 [--model runs/twin/model] [--data data/wikiqa/test] [--rss_size 1000000]

- **Build throughput**: docs/s of ``python -m twin.index`` (Flat) on a synthetic corpus of
  ``corpus_size`` sentences vs the document tower alone on the same texts in memory; ``overhead`` is
  ``raw / build - 1`` (goal <= 10 %) with the build's model loading left out (the raw measurement has
  its model loaded), ``overhead_with_load`` with it.
- **Peak RSS** of that build process (``wait4``), and of a build over ``rss_size`` sentences if given.
- **Per-query cost**: the twin (encode the question, inner products with precomputed candidate vectors)
  vs a cross-encoder of the same encoder scoring each (question, candidate) pair, batch = one question's
  candidates: on the first ``queries`` questions of ``data``, or without it on 50 synthetic questions of
  ``candidates`` candidates each.
- **Recall@10** of ``HNSW32``, ``IVF<n>,PQ<m>`` and the same re-ranked exactly (``,RFlat``) against
  ``Flat`` on the built index's vectors (queries: the questions timed above).

``model`` is a trained twin; without it one is made from ``encoder`` (shared towers, mean pooling,
cosine crossing, untrained: costs do not depend on training). Writes ``OUT/bench.json``; prints it.
On a shared machine pass ``--threads 1``: torch's spinning worker threads collapse under oversubscription.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import cli, parse, setup_logging, write_json
from as2.precision import hardware

logger = logging.getLogger("twin.bench")


@dataclass
class BenchConfig:
    out: str = field(default="", metadata={"help": "output folder (bench.json, corpus, indexes)"})
    encoder: str = field(default="", metadata={"help": "encoder for an untrained twin and the cross-encoder"})
    model: str = field(default="", metadata={"help": "trained twin folder (default: untrained from encoder)"})
    data: str = field(default="", metadata={"help": "split whose questions and candidates time queries"})
    corpus_size: int = field(
        default=20_000, metadata={"help": "synthetic sentences for throughput and recall"}
    )
    rss_size: int = field(default=0, metadata={"help": "also build over this many sentences for peak RSS"})
    queries: int = field(default=200, metadata={"help": "queries timed (per-query cost) and for recall"})
    candidates: int = field(default=50, metadata={"help": "candidates per synthetic query (per-query cost)"})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass"})
    chunk_size: int = field(default=20_000, metadata={"help": "documents per spilled chunk"})
    max_length: int = field(default=128, metadata={"help": "tokens per text / pair"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: torch's default)"})

    def __post_init__(self):
        if not self.out or not (self.encoder or self.model):
            raise ValueError("out and one of encoder / model are required")


def main(argv: list[str] | None = None) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from twin import measure
    from twin.modeling import TwinConfig, TwinModel
    from twin.store import open_index

    cfg, _ = parse(BenchConfig, argv, description=__doc__)
    setup_logging()
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU-feature probe
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"threads": torch.get_num_threads(), "config": vars(cfg), "hardware": hardware()}

    # 1. the twin (trained, or an untrained one from the encoder) and a synthetic corpus
    model_dir = cfg.model or str(out / "twin_model")
    if not cfg.model:
        TwinModel.from_encoders(
            cfg.encoder, TwinConfig(pooling="mean", max_length=cfg.max_length)
        ).save_pretrained(model_dir)
    twin = TwinModel.from_pretrained(model_dir)
    corpus = measure.synthetic_corpus(out / f"corpus_{cfg.corpus_size}.tsv", cfg.corpus_size)
    texts = [line.split("\t", 1)[1].rstrip("\n") for line in open(corpus, encoding="utf-8")]

    # 2. build throughput vs the raw document tower on the same texts, and peak RSS of the build
    result["raw_encoder"] = measure.raw_throughput(twin, texts, cfg.batch_size, cfg.chunk_size)
    del texts
    build = measure.build_in_child(
        model_dir, corpus, out / "index_flat", "Flat", cfg.batch_size, cfg.chunk_size, cfg.threads
    )
    build["overhead"] = result["raw_encoder"]["docs_per_s"] / build["docs_per_s_after_load"] - 1
    build["overhead_with_load"] = result["raw_encoder"]["docs_per_s"] / build["docs_per_s"] - 1
    result["index_build"] = build
    logger.info(
        "build %.1f docs/s vs raw %.1f docs/s", build["docs_per_s"], result["raw_encoder"]["docs_per_s"]
    )
    if cfg.rss_size:
        big = measure.synthetic_corpus(out / f"corpus_{cfg.rss_size}.tsv", cfg.rss_size)
        result["index_build_rss"] = measure.build_in_child(
            model_dir, big, out / "index_rss", "Flat", cfg.batch_size, cfg.chunk_size, cfg.threads
        )

    # 3. per-query cost: twin vs a cross-encoder on the same candidates
    source = cfg.encoder or twin.config.source.split(" | ")[0]
    cross = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).eval()
    cross_tok = AutoTokenizer.from_pretrained(source)
    words, n = measure.WORDS, len(measure.WORDS)
    groups = [
        (
            " ".join(words[i % n : i % n + 6]) + " ?",
            [" ".join(words[(i + j) % n :][:15]) for j in range(cfg.candidates)],
        )
        for i in range(cfg.queries)
    ]
    if cfg.data:
        from as2.data import load

        ds = load(cfg.data).select_columns(["question", "candidates"])
        groups = [(r["question"], r["candidates"]) for r in ds.select(range(min(cfg.queries, len(ds))))]
        result["per_query"] = measure.per_query_cost(twin, cross, cross_tok, groups, cfg.max_length)
    else:
        result["per_query_synthetic"] = measure.per_query_cost(
            twin, cross, cross_tok, groups[:50], cfg.max_length
        )

    # 4. recall@10 of approximate indexes against Flat, on the built index's vectors
    flat = open_index(out / "index_flat")
    docs = flat.index.reconstruct_n(0, flat.index.ntotal)
    q_texts = [g[0] for g in groups]
    queries = measure.encode(twin, q_texts, "query", batch_size=cfg.batch_size)
    nlist = max(1, int(4 * math.sqrt(len(docs))))
    pq = f"IVF{nlist},PQ{twin.dim // 8}"
    specs = {"HNSW32": "efSearch=64", pq: "nprobe=16", f"{pq},RFlat": "nprobe=16,k_factor_rf=4"}
    result["recall@10"] = measure.recall_at_k(docs, queries, specs)

    write_json(out / "bench.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))
    return result


if __name__ == "__main__":
    cli(main)
