"""The training skeleton both tracks run: ``cerberus/train.py`` and ``twin/train.py`` are recipes on top of it.

A track declares its config as a subclass of :class:`TrainingArguments` (the fields every run has) and
hands :func:`train` a ``prepare`` function that turns the training questions into a :class:`Recipe`: the
model, the collator of question groups, the loss of one micro-batch and how to save the model. The rest is
written once, here:

1. distributed set-up, logging, seeds; the DeepSpeed JSON with precision ``auto`` resolved; stale
   checkpoints dropped (``as2.engine.start_run``);
2. the training split under the run's protocol;
3. question groups, a seeded order per epoch, one shard per rank; the engine with the scheduler's steps;
4. ``as2.engine.train_loop`` (resuming from ``output_dir/checkpoints``);
5. the model exported on rank 0 as safetensors, atomically (``model.tmp`` renamed to ``model``), and
   ``summary.json`` (steps, losses, groups, precision, machine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from as2 import batching, engine, precision
from as2.config import setup_logging, write_json
from as2.data import PROTOCOLS, atomic_dir, is_clean, load

logger = logging.getLogger(__name__)


@dataclass
class TrainingArguments:
    """The fields every training run has; a track's config subclasses this and adds its own."""

    train_data: str = field(default="", metadata={"help": "converted split to train on (data_prep.convert)"})
    output_dir: str = field(default="", metadata={"help": "folder for checkpoints, model/, logs"})
    deepspeed_config: str = field(default="configs/ds_cpu.json", metadata={"help": "DeepSpeed JSON"})
    protocol: str = field(default="raw", metadata={"help": f"training questions: {PROTOCOLS}"})
    max_length: int = field(default=128, metadata={"help": "tokens per input"})
    max_candidates: int = field(default=16, metadata={"help": "candidates per training group"})
    group_positives: bool = field(
        default=False,
        metadata={"help": "a question split into several groups puts its correct candidates in each"},
    )
    epochs: int = field(default=1, metadata={"help": "passes over the training groups"})
    max_steps: int = field(
        default=0, metadata={"help": "stop after this many optimizer steps (0: all epochs)"}
    )
    save_steps: int = field(
        default=0, metadata={"help": "checkpoint every N optimizer steps (0: at the end)"}
    )
    log_steps: int = field(default=10, metadata={"help": "log every N optimizer steps"})
    seed: int = field(default=42, metadata={"help": "seed for initialization, order and dropout"})

    def __post_init__(self):
        for name in ("train_data", "output_dir"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")


@dataclass
class Recipe:
    """What a track supplies: its training data (possibly cut further), model, collator, loss and saver."""

    data: Any  # the datasets.Dataset the groups index
    model: Any  # torch.nn.Module
    collate: Callable[[list[batching.Group]], Any]
    step: Callable[[Any, Any], tuple[Any, dict[str, float]]]  # (engine, micro-batch) -> (loss, logs)
    save: Callable[[Any, Path], None]  # (fp32 module, folder) -> writes the model folder
    summary: dict[str, Any] = field(default_factory=dict)  # more fields for summary.json


def train(cfg: TrainingArguments, prepare: Callable[[Any], Recipe]) -> dict[str, Any]:
    """Run (or resume) one training run of ``cfg``; returns what ``summary.json`` holds."""
    import torch

    # 1. ranks, logging, seeds, the resolved DeepSpeed config, stale checkpoints
    rank, world = engine.init_distributed()
    setup_logging(rank)
    engine.seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    ds_config = engine.load_ds_config(cfg.deepspeed_config)  # precision "auto" resolved for this machine

    # 2. the training questions, and the track's model, collator and loss for them
    ds = load(cfg.train_data)
    if cfg.protocol == "clean":
        ds = ds.filter(lambda row: is_clean(row["labels"]))
    recipe = prepare(ds)

    # 3. question groups, a seeded order per epoch, one shard per rank; the engine
    labels = recipe.data["labels"]
    groups = batching.question_groups(
        [len(c) for c in labels], cfg.max_candidates, labels if cfg.group_positives else None
    )
    micro = ds_config["train_micro_batch_size_per_gpu"]
    per_epoch = batching.micro_batches_per_epoch(len(groups), micro, world)
    total = engine.total_steps(cfg.epochs, per_epoch, ds_config["gradient_accumulation_steps"], cfg.max_steps)
    ds_config = engine.fill_ds_config(ds_config, total)
    # checkpoints of another config, data or learning-rate schedule are dropped here, before the engine exists
    engine.start_run(cfg, out, rank, [cfg.train_data], ds_config)
    eng = engine.build_engine(recipe.model, ds_config)
    no_positive = sum(not any(g.pick(labels[g.question])) for g in groups)
    engine.log_plan(
        len(recipe.data), len(groups), no_positive, cfg.max_candidates, per_epoch, total, ds_config
    )

    def batches(epoch: int):
        for items in batching.epoch_batches(groups, micro, epoch, cfg.seed, rank, world):
            yield recipe.collate(items)

    # 4. train, resuming from out/checkpoints if a run was interrupted
    summary = engine.train_loop(
        eng,
        batches,
        recipe.step,
        out_dir=out,
        epochs=cfg.epochs,
        micro_per_epoch=per_epoch,
        max_steps=cfg.max_steps,
        save_steps=cfg.save_steps,
        log_steps=cfg.log_steps,
    )

    # 5. export on rank 0, atomically, in fp32 whatever the training precision
    if rank == 0:
        with atomic_dir(out / "model") as tmp:
            recipe.save(eng.module.float() if eng.bfloat16_enabled() else eng.module, tmp)
        summary.update(recipe.summary, world_size=world, groups=len(groups), total_steps=total)
        summary.update(precision=engine.ds_precision(ds_config), hardware=precision.hardware())
        write_json(out / "summary.json", summary)
        logger.info("saved %s", out / "model")
    torch.distributed.barrier()
    return summary


def autocast(eng):
    """The forward pass's autocast context under a DeepSpeed engine (its bf16 setting decides)."""
    import torch

    return torch.autocast(eng.device.type, dtype=engine.autocast_dtype(eng), enabled=eng.bfloat16_enabled())
