"""The offline vector index: build it from a corpus in bounded memory, resumably; open and search it.

An index folder holds ``index.faiss`` (``faiss.write_index``), ``ids.txt`` (one document id per line, in
index order) and ``meta.json`` (model fingerprint, dimension, normalization, metric, index spec, count).

Building streams the corpus in chunks of ``chunk_size`` documents: each chunk is encoded and spilled to
``<work>/<n>.npy`` (+ ``<n>.ids``) with an atomic rename, so memory holds one chunk plus the index, and a
rerun after an interruption skips the chunks already spilled. The work folder is keyed by the model
fingerprint, the corpus file (path, size, mtime) and the encoding settings, so another model or corpus
never reuses stale vectors. Indexes that need training (``IVF...``, ``...PQ...``) train on a seeded sample of
at most ``train_size`` spilled vectors, read through memory maps. The folder is written under a temporary
name and renamed into place last: a killed build leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from as2 import precision as precisions
from as2 import shards
from as2.config import ConfigError
from as2.data import DataError, atomic_dir
from twin.encode import corpus_kind, encode, read_corpus

logger = logging.getLogger(__name__)

INDEX_FILE, IDS_FILE, META_FILE = "index.faiss", "ids.txt", "meta.json"


def _corpus_key(corpus: Path) -> str:
    p = corpus.resolve()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    return json.dumps([str(p)] + [[q.name, q.stat().st_size, q.stat().st_mtime_ns] for q in files])


def new_index(dim: int, spec: str):
    """``faiss.index_factory(dim, spec)`` with the inner-product metric; a bad spec is a ``ValueError``."""
    import faiss

    try:
        return faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise ValueError(
            f"index spec {spec!r} is not a valid faiss.index_factory string for dim {dim}: {e}"
        ) from None


def _spill(
    work: Path, n: int, ids: list[str], texts: list[str], model, batch_size: int, bar, precision: str
) -> None:
    """Encode one chunk to ``work/<n>.npy`` unless an identical chunk (same ids) is already there."""
    vec, id_file = work / f"{n:06d}.npy", work / f"{n:06d}.ids"
    if vec.is_file() and id_file.is_file() and id_file.read_text().split("\n")[:-1] == ids:
        bar.update(len(ids))
        return
    emb = encode(model, texts, "doc", batch_size=batch_size, progress=bar, precision=precision)
    for path, write in (
        (id_file, lambda f: f.write("\n".join(ids).encode() + b"\n")),
        (vec, lambda f: np.save(f, emb)),
    ):
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)  # the .npy, written last, marks the chunk done


def _encode_corpus(
    corpus: Path,
    work: Path,
    model,
    batch_size: int,
    chunk_size: int,
    progress: bool,
    precision: str,
    rank: int = 0,
    world: int = 1,
):
    """Spill the corpus chunk by chunk; returns ``(chunks, documents)``. Ids are checked on the way (by every
    rank, over the whole corpus); chunk ``n`` is encoded by rank ``n % world``."""
    from tqdm.auto import tqdm

    seen: set[str] = set()
    ids: list[str] = []
    texts: list[str] = []
    chunks = count = 0
    # closed on errors too, so that an error message starts on a line of its own
    with tqdm(desc=f"encode {corpus.name}", unit="doc", disable=not progress) as bar:
        for doc_id, text, where in read_corpus(corpus):
            if any(c.isspace() for c in doc_id):
                raise DataError(f"{where}: document id {doc_id!r} contains whitespace")
            if doc_id in seen:
                raise DataError(f"{where}: document id {doc_id!r} appears twice")
            seen.add(doc_id)
            ids.append(doc_id)
            texts.append(text)
            if len(ids) == chunk_size:
                if chunks % world == rank:
                    _spill(work, chunks, ids, texts, model, batch_size, bar, precision)
                chunks, count, ids, texts = chunks + 1, count + len(ids), [], []
        if ids:
            if chunks % world == rank:
                _spill(work, chunks, ids, texts, model, batch_size, bar, precision)
            chunks, count = chunks + 1, count + len(ids)
    if count == 0:
        raise DataError(f"{corpus}: empty corpus (no documents)")
    return chunks, count


def build_index(
    model_dir: str | os.PathLike,
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    spec: str = "Flat",
    batch_size: int = 64,
    chunk_size: int = 20_000,
    train_size: int = 100_000,
    seed: int = 0,
    progress: bool = True,
    precision: str = "auto",
    rank: int = 0,
    world: int = 1,
) -> dict:
    """Build ``out`` from every document of ``corpus`` encoded by the twin's document tower.

    With ``world`` ranks (``as2.shards``), chunk ``n`` is encoded by rank ``n % world`` into the shared work
    folder; rank 0 trains the index (if its type needs it) on a sample of all chunks; then, for index types
    that merge (``Flat``, ``IVF...``), each rank adds its own chunks to a copy of the trained index and rank 0
    merges the shards (``merge_from``), while other types (``HNSW...``) are filled by rank 0 alone. Several
    machines need ``out``'s parent folder on a shared filesystem. Rank 0 returns the meta, the others ``{}``.

    ``precision`` (auto | fp32 | bf16) is resolved once and recorded in the meta (and the resume key).

    Returns the meta written to ``meta.json`` plus ``timings`` (seconds spent loading the model, encoding
    and spilling, training and filling the index, writing), which are not written.
    """
    from tqdm.auto import tqdm

    from twin.modeling import TwinModel, fingerprint

    model_dir, corpus, out = Path(model_dir), Path(corpus), Path(out)
    kind = corpus_kind(corpus)
    clock = [time.perf_counter()]
    model = TwinModel.from_pretrained(model_dir)
    if not model.crossing.inner_product:
        raise ConfigError(
            f"{model_dir}: crossing {model.config.crossing!r} is not an inner product, so a vector index cannot "
            "rank like the model; train with crossing: cos, or rank a split with twin.search --mode rerank"
        )
    index = new_index(model.dim, spec)  # validates the spec before any encoding
    fp = fingerprint(model_dir)
    precision = precisions.resolve(precision)
    clock.append(time.perf_counter())
    key = hashlib.sha256(
        f"{fp}|{_corpus_key(corpus)}|{model.config.max_length}|{chunk_size}|{precision}".encode()
    ).hexdigest()
    work = out.parent / f".{out.name}.work-{key[:16]}"
    work.mkdir(parents=True, exist_ok=True)

    # 1. stream the corpus, spilling one encoded chunk at a time (done chunks are skipped)
    try:
        chunks, count = _encode_corpus(
            corpus, work, model, batch_size, chunk_size, progress and rank == 0, precision, rank, world
        )
    except DataError:
        shutil.rmtree(work, ignore_errors=True)  # bad input: resuming cannot fix it, leave nothing behind
        raise
    shards.barrier(world)  # every chunk spilled
    clock.append(time.perf_counter())
    vectors = _Chunks(work, chunks)
    ids_order = list(range(chunks))  # the chunks in index order

    # 2. train on a seeded sample if the index type needs it (rank 0), then add chunk by chunk
    if not index.is_trained and rank == 0:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(count, size=min(train_size, count), replace=False))
        offsets = np.cumsum([0] + vectors.lengths)
        sample = np.concatenate(
            [
                vectors[c][pick[(pick >= offsets[c]) & (pick < offsets[c + 1])] - offsets[c]]
                for c in range(chunks)
            ]
        )
        try:
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        except RuntimeError as e:
            raise ValueError(
                f"index spec {spec!r} could not be trained on {len(sample)} vectors: {e}"
            ) from None
        del sample
    if world > 1 and _mergeable(index):
        index, ids_order = _add_in_shards(index, vectors, work, rank, world)
    elif rank == 0:
        for v in tqdm(vectors, desc="index", unit="chunk", disable=not progress):
            index.add(np.ascontiguousarray(v, dtype=np.float32))
    if rank != 0:
        shards.barrier(world)  # rank 0 writes; the work folder stays until it is done
        return {}

    clock.append(time.perf_counter())

    # 3. write index, ids and meta into a temporary folder, renamed into place last
    meta = {
        "fingerprint": fp,
        "model": str(model_dir),
        "dim": model.dim,
        "normalized": model.normalize,
        "metric": "inner_product",
        "spec": spec,
        "count": int(index.ntotal),
        "corpus": str(corpus),
        "corpus_kind": kind,
        "doc_ids": "<qid>/<cid>" if kind == "split" else "corpus ids",
        "max_length": model.config.max_length,
        "precision": precision,
    }
    _write(index, work, ids_order, meta, out)
    clock.append(time.perf_counter())
    shards.barrier(world)
    shutil.rmtree(work, ignore_errors=True)
    logger.info("indexed %d documents (%s, dim %d) into %s", count, spec, model.dim, out)
    steps = ("load", "encode", "index", "write")
    return {
        **meta,
        "timings": {f"{k}_seconds": b - a for k, a, b in zip(steps, clock[:-1], clock[1:], strict=True)},
    }


class _Chunks:
    """The spilled chunks of vectors, each memory-mapped only while it is read: a chunk added to the index
    is unmapped again, so the process holds the index and one chunk, not the index and every chunk's pages."""

    def __init__(self, work: Path, chunks: int):
        self.work = work
        self.lengths = [self._map(n).shape[0] for n in range(chunks)]

    def _map(self, n: int) -> np.ndarray:
        return np.load(self.work / f"{n:06d}.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, n: int) -> np.ndarray:
        return self._map(n)

    def __iter__(self):
        return (self._map(n) for n in range(len(self)))


def _mergeable(index) -> bool:
    """Whether shards of this index type merge: flat codes (``Flat``, ``PQ16``...) and ``IVF...``, also behind
    a transform (``PCA64,IVF...``, ``OPQ...``); not ``HNSW...`` nor a refine stage (``...,RFlat``)."""
    import faiss

    if isinstance(index, faiss.IndexPreTransform):
        return _mergeable(faiss.downcast_index(index.index))
    return isinstance(index, faiss.IndexFlatCodes | faiss.IndexIVF)


def _add_in_shards(index, vectors: _Chunks, work: Path, rank: int, world: int):
    """Each rank adds its chunks (``n % world == rank``) to a copy of the trained index; rank 0 merges the
    shards in rank order. Returns ``(index, chunk order of its entries)`` on rank 0."""
    import faiss

    trained = work / "trained.faiss"
    if rank == 0:
        faiss.write_index(index, str(trained.with_suffix(".tmp")))
        os.replace(trained.with_suffix(".tmp"), trained)
    shards.barrier(world)
    shard = faiss.read_index(str(trained))
    mine = shards.my_chunks(len(vectors), rank, world)
    for n in mine:
        shard.add(np.ascontiguousarray(vectors[n], dtype=np.float32))
    faiss.write_index(shard, str(work / f".shard-{rank}.tmp"))
    os.replace(work / f".shard-{rank}.tmp", work / f"shard-{rank}.faiss")
    shards.barrier(world)
    if rank != 0:
        return None, []
    merged = faiss.read_index(str(trained))
    ivf = faiss.try_extract_index_ivf(merged) is not None
    for r in range(world):
        other = faiss.read_index(str(work / f"shard-{r}.faiss"))
        merged.merge_from(other, merged.ntotal if ivf else 0)  # IVF: ids shifted past the entries before
    return merged, [n for r in range(world) for n in shards.my_chunks(len(vectors), r, world)]


def _write(index, work: Path, order: list[int], meta: dict, out: Path) -> None:
    import faiss

    with atomic_dir(out) as tmp:
        faiss.write_index(index, str(tmp / INDEX_FILE))
        with open(tmp / IDS_FILE, "wb") as f:
            for n in order:  # ids in the order the index holds their vectors
                f.write((work / f"{n:06d}.ids").read_bytes())
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


@dataclass
class VectorIndex:
    index: object  # a faiss.Index
    ids: list[str]
    meta: dict
    path: Path

    def check_model(self, fp: str, dim: int) -> None:
        """A model whose fingerprint or dimension differs from the index's cannot search it."""
        if self.meta["dim"] != dim:
            raise DataError(f"{self.path}: index dimension {self.meta['dim']} differs from the model's {dim}")
        if self.meta["fingerprint"] != fp:
            raise DataError(
                f"{self.path}: built with model fingerprint {self.meta['fingerprint'][:12]}... "
                f"({self.meta.get('model')}), the query model's is {fp[:12]}...; rebuild the index with it"
            )

    def search(self, queries: np.ndarray, k: int, params: str = "") -> tuple[np.ndarray, list[list[str]]]:
        """Top-``k`` inner products ``[Q, k]`` and the ids of the hits (fewer than ``k`` if the index is small)."""
        import faiss

        if queries.ndim != 2 or queries.shape[1] != self.meta["dim"]:
            raise ValueError(f"queries must be [Q, {self.meta['dim']}], got {queries.shape}")
        if params:
            faiss.ParameterSpace().set_index_parameters(self.index, params)
        scores, rows = self.index.search(
            np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self.ids))
        )
        hits = [[self.ids[r] for r in row if r >= 0] for row in rows]
        return scores, hits


def open_index(path: str | os.PathLike) -> VectorIndex:
    """Read an index folder; missing, corrupt or inconsistent files are a :class:`DataError` naming them."""
    import faiss

    path = Path(path)
    for name in (META_FILE, INDEX_FILE, IDS_FILE):
        if not (path / name).is_file():
            raise DataError(f"{path / name}: missing; not a complete index folder (build it with twin.index)")
    try:
        meta = json.loads((path / META_FILE).read_text())
        meta["dim"], meta["count"], meta["fingerprint"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path / META_FILE}: corrupt index metadata ({e})") from None
    try:
        index = faiss.read_index(str(path / INDEX_FILE))
    except RuntimeError as e:
        raise DataError(
            f"{path / INDEX_FILE}: cannot be read as a faiss index ({str(e).splitlines()[0]})"
        ) from None
    ids = (path / IDS_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    if not (index.ntotal == len(ids) == meta["count"]) or index.d != meta["dim"]:
        raise DataError(
            f"{path}: inconsistent index: {index.ntotal} vectors of dim {index.d}, {len(ids)} ids in {IDS_FILE}, "
            f"meta.json says {meta['count']} of dim {meta['dim']}"
        )
    return VectorIndex(index, ids, meta, path)
