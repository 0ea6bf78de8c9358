"""The DeepSpeed training loop shared by ``cerberus/train.py`` and ``twin/train.py``.

A track supplies a model, a function giving the (deterministic) micro-batches of an epoch, and a function
computing the loss of one micro-batch; this module owns the rest:

- distributed set-up: under the ``deepspeed`` launcher the ranks come from its environment; a plain
  ``python`` run becomes a one-process world (gloo on CPU, NCCL on GPU, as DeepSpeed's accelerator says);
- the engine from a DeepSpeed JSON (optimizer, precision, ZeRO stage, micro-batch), into which the code
  writes only what it must compute (the scheduler's total steps);
- checkpoints with ``engine.save_checkpoint`` every ``save_steps`` optimizer steps, and resume from the
  latest one: the epoch's data order is a function of ``(seed, epoch)`` and the RNG state travels in the
  checkpoint, so an interrupted-and-resumed run ends with the same weights as an uninterrupted one;
- stale runs: :func:`start_run` keeps an output folder's checkpoints only while the run's config and
  training data are the ones they were made with; otherwise training starts over (a re-run after a change
  redoes what changed, a re-run after an interruption continues);
- logging: per-step losses to ``train_log.jsonl`` and the console, on rank 0 only; a resumed run first drops
  the lines of steps after its checkpoint, so each step is logged once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from as2 import precision

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed() -> tuple[int, int]:
    """Initialise torch.distributed through DeepSpeed; returns ``(rank, world_size)``."""
    import deepspeed

    if "RANK" not in os.environ:  # not started by a launcher: a world of one
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    if not torch.distributed.is_initialized():
        # DeepSpeed's CPU backend JIT-compiles its shared-memory all-reduce op (g++, 1-2 min) at every first
        # init on a machine; that op serves only tensor-parallel inference, never training, so it is marked
        # unavailable (DeepSpeed then uses the process group's all-reduce, as on any platform without it).
        # DeepSpeed keeps this dict once probed, so the edit holds for the process.
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        deepspeed.init_distributed(verbose=False)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass


def load_ds_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a DeepSpeed JSON (it owns optimizer, precision, ZeRO stage and micro-batch).

    ``"bf16": {"enabled": "auto"}`` is resolved here by :func:`as2.precision.resolve`: bf16 where the
    hardware runs it natively, fp32 elsewhere; ``true`` / ``false`` are kept (``true`` on hardware that
    emulates bf16 warns with the measured slowdown).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DeepSpeed config {path} does not exist")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if "train_micro_batch_size_per_gpu" not in cfg:
        raise ValueError(f"{path}: 'train_micro_batch_size_per_gpu' is required")
    cfg.pop("train_batch_size", None)  # DeepSpeed derives it: micro-batch x accumulation x world size
    cfg.setdefault("gradient_accumulation_steps", 1)
    enabled = cfg.get("bf16", {}).get("enabled", False)
    if enabled not in (True, False, "auto"):
        raise ValueError(f'{path}: "bf16": {{"enabled": ...}} must be true, false or "auto", got {enabled!r}')
    if enabled is not False:
        wanted = "auto" if enabled == "auto" else "bf16"
        cfg["bf16"]["enabled"] = precision.resolve(wanted) == "bf16"
    return cfg


def ds_precision(cfg: dict[str, Any]) -> str:
    """The precision a (resolved) DeepSpeed config trains in."""
    if cfg.get("bf16", {}).get("enabled") is True:
        return "bf16"
    if cfg.get("fp16", {}).get("enabled") is True:
        return "fp16"
    return "fp32"


def fill_ds_config(cfg: dict[str, Any], total_steps: int) -> dict[str, Any]:
    """Write in what only the code knows: the scheduler's total (and, if ``"auto"``, warm-up) steps."""
    sched = cfg.get("scheduler", {}).get("params")
    if sched is not None and sched.get("total_num_steps", "auto") == "auto":
        sched["total_num_steps"] = max(1, total_steps)
    if sched is not None and sched.get("warmup_num_steps") == "auto":
        sched["warmup_num_steps"] = max(1, total_steps // 10)
    return cfg


# Fields that do not change what a run computes: changing them keeps the checkpoints. The length of a run
# (max_steps, epochs) is one of them (an epoch's order depends on the seed and its number only, so a longer
# run continues the shorter one), unless the learning-rate schedule spans the run: the resolved DeepSpeed
# config then holds the schedule's total steps, and a run whose schedule changed starts over.
VOLATILE_FIELDS = ("output_dir", "log_steps", "save_steps", "local_rank", "max_steps", "epochs")


def run_key(
    cfg: Any, data_dirs: Iterable[str | os.PathLike], ds_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a run's checkpoints depend on: its config, its resolved DeepSpeed config (precision included)
    and the saved state of its training data."""
    from as2.config import to_dict

    config = {k: v for k, v in to_dict(cfg).items() if k not in VOLATILE_FIELDS}
    if ds_config is not None:
        config["ds_config"] = ds_config
    data = {}
    for d in data_dirs:
        h = hashlib.sha256()
        for name in ("state.json", "as2.json", "dataset_dict.json"):
            f = Path(d) / name
            if f.is_file():
                h.update(name.encode() + f.read_bytes())
        data[str(d)] = h.hexdigest()
    return {"config": config, "data": data}


def _comparable(old: dict, key: dict, length: dict, defaults: dict | None = None) -> dict:
    """A run key saved by an earlier version, made comparable with ``key``: fields volatile since then left
    out, fields added since given their value where this run keeps their default (``defaults``), and a
    scheduler saved with ``"auto"`` steps (before they were resolved into the key) given the resolved ones if
    that run had the same length (``length``: this run's max_steps and epochs)."""
    old = json.loads(json.dumps(old))
    config = old.get("config", {})
    for k, v in (defaults or {}).items():
        if k not in config and k in key["config"] and key["config"][k] == v:
            config[k] = v
    same_length = all(config.get(k, v) == v for k, v in length.items())
    for k in VOLATILE_FIELDS:
        config.pop(k, None)
    if not same_length:
        return old
    then = config.get("ds_config", {}).get("scheduler", {}).get("params", {})
    now = key["config"].get("ds_config", {}).get("scheduler", {}).get("params", {})
    for k in ("total_num_steps", "warmup_num_steps"):
        if then.get(k) == "auto" and k in now:
            then[k] = now[k]
    return old


def _defaults(cfg: Any) -> dict[str, Any]:
    """The default value of each field of the dataclass ``cfg`` that has one."""
    out = {}
    for f in dataclasses.fields(cfg):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def start_run(
    cfg: Any,
    out_dir: str | os.PathLike,
    rank: int,
    data_dirs: Iterable[str | os.PathLike],
    ds_config: dict[str, Any] | None = None,
) -> None:
    """Write the resolved configs beside the outputs; drop checkpoints made by another config or data.

    ``config.yaml`` is the run's config, ``ds_config.json`` the DeepSpeed config as resolved on this
    machine (``bf16.enabled`` decided). Rank 0 decides and writes; every rank waits for it before it looks
    for a checkpoint to resume.
    """
    from as2.config import save_resolved, write_json

    out = Path(out_dir)
    if rank == 0:
        key = run_key(cfg, data_dirs, ds_config)
        key_file = out / "run_key.json"
        length = {k: getattr(cfg, k) for k in ("max_steps", "epochs") if hasattr(cfg, k)}
        defaults = _defaults(cfg)
        old = (
            _comparable(json.loads(key_file.read_text()), key, length, defaults)
            if key_file.is_file()
            else None
        )
        if old is None and (out / "config.yaml").is_file():
            # a run from before keys: keep it if its config agrees (fields added since keep their defaults)
            import yaml

            saved = yaml.safe_load((out / "config.yaml").read_text()) or {}
            agree = all(key["config"].get(k) == v for k, v in saved.items() if k not in VOLATILE_FIELDS)
            if agree:
                old = key
        if old != key and (out / CHECKPOINTS).exists():
            changed = sorted(
                {k for k in key["config"] if key["config"][k] != (old or {}).get("config", {}).get(k)}
                | ({"training data"} if key["data"] != (old or {}).get("data") else set())
            )
            old_sched = (old or {}).get("config", {}).get("ds_config", {}).get("scheduler")
            new_sched = key["config"].get("ds_config", {}).get("scheduler")
            why = (
                " (the learning-rate schedule spans the run: its total steps follow max_steps and epochs)"
                if old_sched != new_sched
                else ""
            )
            logger.warning(
                "%s: %s changed since its checkpoints were made: starting over%s", out, changed, why
            )
            for stale in (CHECKPOINTS, "model", "train_log.jsonl"):
                path = out / stale
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        save_resolved(cfg, out)
        if ds_config is not None:
            write_json(out / "ds_config.json", ds_config)
        write_json(key_file, key)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def log_plan(
    questions: int,
    groups: int,
    no_positive: int,
    max_candidates: int,
    per_epoch: int,
    total: int,
    ds_config: dict[str, Any],
) -> None:
    """One line saying what a run will train on, how long, in which precision and on what device."""
    logger.info(
        "%d questions in %d training groups (at most %d candidates each: longer lists are split; %d groups "
        "without a correct candidate), %d micro-batches/epoch/rank, %d optimizer steps, %s on %s",
        questions,
        groups,
        max_candidates,
        no_positive,
        per_epoch,
        total,
        ds_precision(ds_config),
        precision.describe_device(),
    )


def build_engine(model: torch.nn.Module, ds_config: dict[str, Any]):
    import deepspeed

    params = [p for p in model.parameters() if p.requires_grad]
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=params, config=ds_config)
    return engine


def autocast_dtype(engine) -> torch.dtype:
    if engine.bfloat16_enabled():
        return torch.bfloat16
    if engine.fp16_enabled():
        return torch.float16
    return torch.float32


@dataclass
class LoopState:
    epoch: int = 0
    micro_in_epoch: int = 0  # micro-batches already consumed in ``epoch``
    global_step: int = 0  # optimizer steps


def resume(engine, out_dir: Path) -> LoopState:
    """Load the latest checkpoint under ``out_dir/checkpoints`` if there is one."""
    ckpt = out_dir / CHECKPOINTS
    if not (ckpt / "latest").is_file():
        return LoopState()
    path, client = engine.load_checkpoint(str(ckpt))
    if path is None:
        raise RuntimeError(f"{ckpt}: 'latest' names a checkpoint that could not be loaded")
    state = LoopState(**client["loop"])
    torch.set_rng_state(client["torch_rng"])
    random.setstate(tuple(client["py_rng"]) if isinstance(client["py_rng"], list) else client["py_rng"])
    logger.info("resumed from %s at epoch %d, step %d", path, state.epoch, state.global_step)
    return state


def save(engine, out_dir: Path, state: LoopState, keep: int = 1) -> None:
    """Checkpoint through DeepSpeed (tag ``step<N>``), then drop all but the newest ``keep`` on rank 0."""
    client = {"loop": vars(state).copy(), "torch_rng": torch.get_rng_state(), "py_rng": random.getstate()}
    tag = f"step{state.global_step}"
    engine.save_checkpoint(str(out_dir / CHECKPOINTS), tag=tag, client_state=client)
    if torch.distributed.get_rank() == 0:
        old = sorted(
            (p for p in (out_dir / CHECKPOINTS).glob("step*") if p.name != tag),
            key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1,
        )
        for p in old[: max(0, len(old) - (keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)


def train_loop(
    engine,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[Any, Any], tuple[torch.Tensor, dict[str, float]]],
    *,
    out_dir: str | os.PathLike,
    epochs: int,
    micro_per_epoch: int,
    max_steps: int = 0,
    save_steps: int = 0,
    log_steps: int = 10,
) -> dict[str, Any]:
    """Run (or resume) training; returns a summary with the last logged losses.

    Args:
        batches: ``epoch -> iterable of micro-batches`` for this rank, the same each time it is called.
        loss_fn: ``(engine, micro_batch) -> (loss, {name: value})``; the dict is logged.
        micro_per_epoch: micro-batches per epoch on this rank (for progress and the total step count).
        max_steps: stop after this many optimizer steps (0: run all epochs).
        save_steps: checkpoint every this many optimizer steps (0: only at the end).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    accum = engine.gradient_accumulation_steps()
    total = total_steps(epochs, micro_per_epoch, accum, max_steps)
    usable = (micro_per_epoch // accum) * accum
    state = resume(engine, out_dir)
    if (
        state.global_step > total
    ):  # a shorter run than the one checkpointed: its model would be the longer one
        from as2.config import ConfigError

        raise ConfigError(
            f"{out_dir}: its checkpoint is at step {state.global_step}, beyond this run's {total} steps; give "
            "another output_dir (or remove its checkpoints/) to train the shorter run"
        )
    log_path = out_dir / "train_log.jsonl"
    if rank == 0:
        trim_log(log_path, state.global_step)
    last: dict[str, float] = {}
    resumed_from, start = state.global_step, time.perf_counter()
    bar = tqdm(total=total, initial=state.global_step, desc="train", disable=rank != 0, unit="step")
    engine.train()
    while state.global_step < total and state.epoch < epochs:
        for i, batch in enumerate(batches(state.epoch)):
            if i >= usable:
                break
            if i < state.micro_in_epoch:
                continue  # consumed before the interruption
            loss, logs = loss_fn(engine, batch)
            engine.backward(loss)
            engine.step()
            state.micro_in_epoch = i + 1
            if not engine.is_gradient_accumulation_boundary():
                continue
            state.global_step += 1
            bar.update(1)
            last = {"step": state.global_step, "epoch": state.epoch, "loss": loss.item(), **logs}
            if rank == 0 and (state.global_step % log_steps == 0 or state.global_step == total):
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                with open(log_path, "a") as f:
                    f.write(json.dumps(last) + "\n")
            if save_steps and state.global_step % save_steps == 0 and state.global_step < total:
                save(engine, out_dir, state)
            if state.global_step >= total:
                break
        if state.micro_in_epoch >= usable:
            state.epoch, state.micro_in_epoch = state.epoch + 1, 0
    bar.close()
    save(engine, out_dir, state)
    return {
        "global_step": state.global_step,
        "epochs_done": state.epoch,
        "seconds": time.perf_counter() - start,  # this run's own: a resumed run's from its resumed step
        "resumed_from_step": resumed_from,
        **last,
    }


def trim_log(path: Path, last_step: int) -> None:
    """Drop the log lines of steps after ``last_step``: those a resumed run is about to train again."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= last_step]
    if len(kept) != len(lines):
        from as2.config import atomic_write_text

        atomic_write_text(path, "".join(kept))


def total_steps(epochs: int, micro_per_epoch: int, accum: int, max_steps: int = 0) -> int:
    """Optimizer steps of a run; an epoch's trailing micro-batches that fill no whole step are skipped."""
    per_epoch = micro_per_epoch // max(1, accum)
    if per_epoch == 0:
        raise ValueError(
            f"an epoch has {micro_per_epoch} micro-batches on this rank, fewer than the "
            f"{accum} gradient-accumulation steps of one optimizer step: use less data per step"
        )
    total = epochs * per_epoch
    return min(total, max_steps) if max_steps else total
