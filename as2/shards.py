"""Data parallelism for the inference stages: ranks started by a launcher share out chunks, rank 0 merges.

    deepspeed --num_accelerators 2 data_prep/teacher_scores.py --config ...     # 2 ranks on this machine
    deepspeed --hostfile hosts --num_nodes 2 data_prep/teacher_scores.py ...    # several machines
    torchrun --nproc_per_node 2 data_prep/teacher_scores.py ...

A launcher (``deepspeed``, ``torchrun``) sets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT``;
without one, a stage runs as a world of one and never touches ``torch.distributed``. Work comes in chunks
numbered ``0 .. n-1``; chunk ``i`` belongs to rank ``i % world`` (:func:`my_chunks`), so the split depends
on nothing but the chunk count and the world size. Each rank caches the chunks it computed (an interrupted
run resumes per chunk, on every rank), then :func:`gather_chunks` brings every chunk's float32 values to
rank 0 through the process group (gloo: CPU tensors, each shard sent once, to rank 0 only; no shared filesystem
needed), where the stage writes its output exactly as a single process would. Errors raised by one rank
end the run through the launcher, which stops the others.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np


def init() -> tuple[int, int]:
    """``(rank, world size)``; joins the launcher's process group (gloo) when there is more than one rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():  # env:// from the launcher; ranks may wait long while rank 0 works alone
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
    return dist.get_rank(), dist.get_world_size()


def my_chunks(n: int, rank: int, world: int) -> list[int]:
    """The chunk indices of ``rank``: ``rank, rank + world, ...`` below ``n``."""
    return list(range(rank, n, world))


def gather_chunks(
    mine: Mapping[int, np.ndarray], sizes: Sequence[int], rank: int, world: int
) -> list[np.ndarray]:
    """Every chunk's 1-D float32 values, in chunk order, on rank 0 (other ranks get ``[]``).

    ``mine`` holds this rank's chunks (``my_chunks``); ``sizes`` the length of every chunk, which every rank
    knows from the data, so that each rank sends one flat tensor padded to the longest shard.
    """
    if world == 1:
        return [np.asarray(mine[i], dtype=np.float32) for i in range(len(sizes))]
    import torch
    import torch.distributed as dist

    def shard(r: int) -> list[int]:
        return my_chunks(len(sizes), r, world)

    longest = max(sum(sizes[i] for i in shard(r)) for r in range(world))
    flat = np.zeros(longest, dtype=np.float32)
    parts = [np.asarray(mine[i], dtype=np.float32) for i in shard(rank)]
    if parts:
        joined = np.concatenate(parts)
        flat[: len(joined)] = joined
    received = [torch.zeros(longest) for _ in range(world)] if rank == 0 else None
    dist.gather(torch.from_numpy(flat), received, dst=0)  # each shard sent once, to rank 0 only
    if rank != 0:
        return []
    chunks: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(sizes)
    for r in range(world):
        values, at = received[r].numpy(), 0
        for i in shard(r):
            chunks[i] = values[at : at + sizes[i]].copy()
            at += sizes[i]
    return chunks


def compute_chunks(
    sizes: Sequence[int],
    compute: Callable[[int], np.ndarray],
    cache: Path,
    rank: int = 0,
    world: int = 1,
    desc: str = "chunks",
) -> list[np.ndarray]:
    """Every chunk's float32 values on rank 0, in chunk order (``[]`` on the other ranks).

    Each rank computes its chunks (``my_chunks``) with ``compute(i)``, which must return ``sizes[i]``
    values, and caches each in ``cache/<i>.npy`` (written aside, then renamed): a rerun after an
    interruption computes only the chunks not cached yet. ``cache`` must be keyed by whatever the values
    depend on (model, settings, data): a cached chunk is never checked again.
    """
    from tqdm.auto import tqdm

    cache.mkdir(parents=True, exist_ok=True)
    mine = my_chunks(len(sizes), rank, world)
    todo = [i for i in mine if not _cached(cache / f"{i:08d}.npy", sizes[i])]
    for i in tqdm(todo, desc=desc, unit="chunk", disable=rank != 0 or not todo):
        values = np.asarray(compute(i), dtype=np.float32).ravel()
        if len(values) != sizes[i]:
            raise ValueError(f"chunk {i}: {len(values)} values, expected {sizes[i]}")
        tmp = cache / f".{i:08d}.tmp.npy"
        np.save(tmp, values, allow_pickle=False)
        tmp.rename(cache / f"{i:08d}.npy")
    values = {i: np.load(cache / f"{i:08d}.npy", allow_pickle=False) for i in mine}
    return gather_chunks(values, sizes, rank, world)


def _cached(path: Path, size: int) -> bool:
    """A chunk file that holds ``size`` values (another length: a cache of another chunking, recomputed)."""
    if not path.is_file():
        return False
    return np.load(path, mmap_mode="r", allow_pickle=False).shape == (size,)


def agree(flag: bool, world: int) -> bool:
    """Rank 0's ``flag`` on every rank (so that all ranks take the same branch, e.g. "up to date")."""
    if world == 1:
        return flag
    import torch
    import torch.distributed as dist

    value = torch.tensor([int(flag)])
    dist.broadcast(value, src=0)
    return bool(value.item())


def barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def launch(
    script: str, args: Sequence[str], ranks: int, threads: int, cwd=None, timeout: float | None = None
):
    """Run ``script`` under the ``deepspeed`` launcher on ``ranks`` ranks of this machine, ``threads`` torch
    threads each, on a free port (another job may hold the default 29500); the finished process, or a
    ``RuntimeError`` with the end of its output if it failed."""
    import subprocess
    import sys

    from as2.engine import free_port

    launcher = Path(sys.executable).parent / "deepspeed"
    cmd = [
        str(launcher),
        "--num_accelerators",
        str(ranks),
        "--master_port",
        str(free_port()),
        script,
        *map(str, args),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc
