"""The measurements behind ``python -m twin.bench``: throughput, peak memory, per-query cost, recall.

Each function returns plain numbers (a dict) so that the entry point only strings them together.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from as2.timing import steady
from twin.encode import encode

WORDS = (
    "the of and to in is was a for on that by with as from at his it an were are which this be its has had "
    "first born city river capital country world war state university new american people known film "
    "series season album song team game player president government company population area water "
    "century year years during after before between under over most many several large small long "
    "north south east west national international history music church school family name called"
).split()


def synthetic_corpus(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` lines ``s<i><TAB><8-30 words>`` written as a stream (the corpus never sits in memory)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"s{i}\t{' '.join(rng.choices(WORDS, k=rng.randint(8, 30)))}\n")
    return path


def raw_throughput(model, texts: Sequence[str], batch_size: int, chunk_size: int) -> dict:
    """Documents/s of the document tower alone (tokenize + forward + pool), texts already in memory."""
    start = time.perf_counter()
    for s in range(0, len(texts), chunk_size):
        encode(model, texts[s : s + chunk_size], "doc", batch_size=batch_size)
    seconds = time.perf_counter() - start
    return {"docs": len(texts), "seconds": seconds, "docs_per_s": len(texts) / seconds}


def build_in_child(
    model_dir: str, corpus: Path, out: Path, spec: str, batch_size: int, chunk_size: int, threads: int
) -> dict:
    """Run ``python -m twin.index`` in a child process; its build time, docs/s and peak RSS (``wait4``)."""
    cmd = [
        sys.executable,
        "-m",
        "twin.index",
        "--model",
        model_dir,
        "--corpus",
        str(corpus),
        "--out",
        str(out),
    ]
    cmd += ["--spec", spec, "--batch_size", str(batch_size), "--chunk_size", str(chunk_size)]
    cmd += ["--threads", str(threads or torch.get_num_threads())]  # the same threads as the raw measurement
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    meta = json.loads(stdout.strip().splitlines()[-1])
    rss_kib = usage.ru_maxrss  # Linux: KiB
    index_mib = (out / "index.faiss").stat().st_size / 2**20
    t = meta["timings"]
    steady = meta["seconds"] - t["load_seconds"]  # the raw measurement has its model loaded already
    return {
        "docs": meta["count"],
        "build_seconds": meta["seconds"],
        **t,
        "docs_per_s_after_load": meta["count"] / steady,
        "process_seconds": wall,
        "docs_per_s": meta["count"] / meta["seconds"],
        "peak_rss_mib": rss_kib / 1024,
        "index_mib": index_mib,
        "peak_rss_minus_index_mib": rss_kib / 1024 - index_mib,
    }


@torch.inference_mode()
def per_query_cost(twin, cross, cross_tok, groups, max_length: int, repeats: int = 1) -> dict:
    """ms/query: twin (encode the question, inner products with the precomputed candidate vectors) vs a
    cross-encoder scoring every (question, candidate) pair of the same question in one batch. Each side: one
    untimed pass over the questions, then the median of ``repeats`` timed passes."""
    doc_vecs = [torch.from_numpy(encode(twin, cands, "doc")) for _, cands in groups]  # offline

    def twin_pass() -> None:
        for (question, _), d in zip(groups, doc_vecs, strict=True):
            q = torch.from_numpy(encode(twin, [question], "query", batch_size=1))
            twin.crossing(q.expand_as(d), d).argsort(descending=True)

    def cross_pass() -> None:
        for question, cands in groups:
            inputs = cross_tok([question] * len(cands), cands, padding=True, truncation=True,
                               max_length=max_length, return_tensors="pt")  # fmt: skip
            cross(**inputs).logits[:, 0].argsort(descending=True)

    twin_ms = 1000 * steady(twin_pass, repeats)[0] / len(groups)
    cross_ms = 1000 * steady(cross_pass, repeats)[0] / len(groups)
    pairs = sum(len(c) for _, c in groups)
    return {
        "queries": len(groups),
        "candidates_per_query": pairs / len(groups),
        "twin_ms_per_query": twin_ms,
        "cross_encoder_ms_per_query": cross_ms,
        "speedup": cross_ms / twin_ms,
    }


def recall_at_k(
    docs: np.ndarray,
    queries: np.ndarray,
    specs: dict[str, str],
    k: int = 10,
    train_size: int = 100_000,
    seed: int = 0,
) -> dict:
    """Recall@k of approximate indexes against exact search (``Flat``) on the same vectors.

    ``specs`` maps an index_factory string to its search parameters (``efSearch=64``, ``nprobe=16``).
    """
    import faiss

    from twin.store import new_index

    flat = new_index(docs.shape[1], "Flat")
    flat.add(docs)
    start = time.perf_counter()
    _, exact = flat.search(queries, k)
    out = {"Flat": {"recall": 1.0, "ms_per_query": 1000 * (time.perf_counter() - start) / len(queries)}}
    rng = np.random.default_rng(seed)
    for spec, params in specs.items():
        index = new_index(docs.shape[1], spec)
        start = time.perf_counter()
        if not index.is_trained:
            index.train(docs[rng.choice(len(docs), size=min(train_size, len(docs)), replace=False)])
        index.add(docs)
        build = time.perf_counter() - start
        if params:
            faiss.ParameterSpace().set_index_parameters(index, params)
        start = time.perf_counter()
        _, got = index.search(queries, k)
        ms = 1000 * (time.perf_counter() - start) / len(queries)
        hits = [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(got, exact, strict=True)]
        out[spec] = {
            "params": params,
            "recall": float(np.mean(hits)),
            "ms_per_query": ms,
            "build_seconds": build,
        }
    return out
