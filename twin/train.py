"""Distil a cross-encoder teacher's precomputed scores into TwinBERT twin encoders, with DeepSpeed.

    deepspeed twin/train.py --config configs/wikiqa/twin.yaml
    deepspeed --num_accelerators 2 twin/train.py --config ...          # 2 CPU ranks over gloo
    python twin/train.py --config ... --max_steps 10                    # one process, no launcher

Reads a converted split whose teacher-score column ``teacher`` holds the cross-encoder's logits
(``data_prep.teacher_scores``), and the DeepSpeed JSON ``deepspeed_config`` (optimizer, precision, ZeRO
stage, micro-batch in question groups). Writes to ``output_dir``: ``checkpoints/`` (resume),
``model/`` (safetensors twin + tokenizer, see ``twin.modeling``), ``train_log.jsonl``, ``config.yaml``
(resolved) and ``summary.json``. The loop is the shared ``as2.engine.train_loop``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from as2 import batching, engine, precision
from as2.config import cli, parse, setup_logging, write_json
from as2.data import PROTOCOLS, DataError, is_clean, load, replace_dir, teacher_names
from twin.collate import TwinCollator
from twin.losses import KINDS, TwinDistillLoss
from twin.modeling import CROSSING_MODES, POOLING_MODES, TwinConfig, TwinModel

logger = logging.getLogger("twin.train")


@dataclass
class TrainConfig:
    train_data: str = field(default="", metadata={"help": "converted split with the teacher's score column"})
    output_dir: str = field(default="", metadata={"help": "folder for checkpoints, model/, logs"})
    deepspeed_config: str = field(default="configs/ds_twin.json", metadata={"help": "DeepSpeed JSON"})
    model: str = field(default="", metadata={"help": "query-tower encoder (hub name, HF or ST folder)"})
    doc_model: str = field(
        default="", metadata={"help": "document-tower encoder if not shared (default: model)"}
    )
    shared: bool = field(default=True, metadata={"help": "one set of weights for both towers"})
    teacher: str = field(default="", metadata={"help": "teacher-score column to distil (empty: labels only)"})
    pooling: str = field(default="mean", metadata={"help": f"tower pooling: {POOLING_MODES}"})
    crossing: str = field(default="cos", metadata={"help": f"crossing layer: {CROSSING_MODES} (cos indexes)"})
    loss: str = field(default="mse", metadata={"help": f"distillation loss: {KINDS}"})
    temperature: float = field(default=1.0, metadata={"help": "KL temperature"})
    alpha: float = field(default=0.0, metadata={"help": "weight of the hard-label loss (1 = labels only)"})
    inbatch: float = field(default=0.0, metadata={"help": "weight of the in-batch negatives loss"})
    protocol: str = field(default="raw", metadata={"help": f"training questions: {PROTOCOLS}"})
    max_length: int = field(default=128, metadata={"help": "tokens per text (question or candidate)"})
    max_candidates: int = field(default=16, metadata={"help": "candidates per training group"})
    epochs: int = field(default=1, metadata={"help": "passes over the training groups"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many optimizer steps (0: all)"})
    save_steps: int = field(
        default=0, metadata={"help": "checkpoint every N optimizer steps (0: at the end)"}
    )
    log_steps: int = field(default=10, metadata={"help": "log every N optimizer steps"})
    seed: int = field(default=42, metadata={"help": "seed for initialization, order and dropout"})

    def __post_init__(self):
        for name in ("train_data", "output_dir", "model"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if self.alpha < 1 and not self.teacher:
            raise ValueError("teacher (a score column) is required unless alpha is 1 (labels only)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.doc_model and self.shared:
            raise ValueError("doc_model needs shared: false")
        TwinConfig(pooling=self.pooling, crossing=self.crossing, max_length=self.max_length)  # validates
        TwinDistillLoss(self.loss, self.temperature, self.alpha, self.inbatch)  # validates


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(TrainConfig, argv, description=__doc__)
    rank, world = engine.init_distributed()
    setup_logging(rank)
    engine.seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    ds_config = engine.load_ds_config(cfg.deepspeed_config)  # precision "auto" resolved for this machine
    engine.start_run(cfg, out, rank, [cfg.train_data], ds_config)

    # 1. data: training questions and the teacher's column
    ds = load(cfg.train_data)
    if cfg.protocol == "clean":
        ds = ds.filter(lambda row: is_clean(row["labels"]))
    teacher = cfg.teacher if cfg.alpha < 1 else None
    if teacher and teacher not in teacher_names(ds.column_names):
        raise DataError(
            f"{cfg.train_data}: no teacher column {teacher!r}; the split has {teacher_names(ds.column_names)}"
        )

    # 2. model: two towers from the encoder(s) and a crossing layer
    shape = TwinConfig(
        pooling=cfg.pooling, crossing=cfg.crossing, shared=cfg.shared, max_length=cfg.max_length
    )
    model = TwinModel.from_encoders(cfg.model, shape, doc=cfg.doc_model or None)
    q_tok, d_tok = model.query_tokenizer, model.doc_tokenizer
    if not model.crossing.inner_product:
        logger.warning(
            "crossing %r is not an inner product: the twin can rerank but cannot be indexed", cfg.crossing
        )

    # 3. batches: question groups, a seeded order per epoch, one shard per rank
    groups = batching.question_groups([len(c) for c in ds["cids"]], cfg.max_candidates)
    collate = TwinCollator(ds, q_tok, d_tok, cfg.max_length, teacher)
    micro = ds_config["train_micro_batch_size_per_gpu"]
    per_epoch = batching.micro_batches_per_epoch(len(groups), micro, world)
    total = engine.total_steps(cfg.epochs, per_epoch, ds_config["gradient_accumulation_steps"], cfg.max_steps)
    eng = engine.build_engine(model, engine.fill_ds_config(ds_config, total))
    loss_fn = TwinDistillLoss(cfg.loss, cfg.temperature, cfg.alpha, cfg.inbatch)
    engine.log_plan(len(ds), len(groups), cfg.max_candidates, per_epoch, total, ds_config)

    def batches(epoch: int):
        for items in batching.epoch_batches(groups, micro, epoch, cfg.seed, rank, world):
            yield collate(items)

    def step(eng, batch):
        dev = eng.device
        q_in = {k: v.to(dev) for k, v in batch["query"].items()}
        d_in = {k: v.to(dev) for k, v in batch["doc"].items()}
        with torch.autocast(dev.type, dtype=engine.autocast_dtype(eng), enabled=eng.bfloat16_enabled()):
            scores = eng(q_in, d_in, matrix=True).float()  # [Q, N]: every group's question vs every candidate
        index = batch["index"].to(dev)
        own = scores[index[:, 0], torch.arange(len(index), device=dev)]  # [N]
        student = scores.new_zeros(batch["mask"].shape)
        student[index[:, 0], index[:, 1]] = own  # [Q, C]
        neg_mask = batch["group_question"].to(dev)[:, None] != batch["owner"].to(dev)[None, :]  # [Q, N]
        teacher_scores = batch["teacher"].to(dev) if batch["teacher"] is not None else None
        return loss_fn(
            student, teacher_scores, batch["labels"].to(dev), batch["mask"].to(dev), scores, neg_mask
        )

    # 4. train (resuming from out/checkpoints if a run was interrupted)
    summary = engine.train_loop(
        eng,
        batches,
        step,
        out_dir=out,
        epochs=cfg.epochs,
        micro_per_epoch=per_epoch,
        max_steps=cfg.max_steps,
        save_steps=cfg.save_steps,
        log_steps=cfg.log_steps,
    )

    # 5. export the twin as safetensors (rank 0), atomically
    if rank == 0:
        tmp = out / "model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        module = eng.module.float() if eng.bfloat16_enabled() else eng.module
        module.query_tokenizer, module.doc_tokenizer = q_tok, d_tok
        module.save_pretrained(tmp)
        replace_dir(tmp, out / "model")
        summary.update(teacher=teacher, world_size=world, groups=len(groups), total_steps=total)
        summary.update(precision=engine.ds_precision(ds_config), hardware=precision.hardware())
        write_json(out / "summary.json", summary)
        logger.info("saved %s", out / "model")
    torch.distributed.barrier()
    return summary


if __name__ == "__main__":
    cli(main)
