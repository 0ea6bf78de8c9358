"""Distil a cross-encoder teacher's precomputed scores into TwinBERT twin encoders, with DeepSpeed.

    deepspeed twin/train.py --config configs/wikiqa/twin.yaml
    deepspeed --num_accelerators 2 twin/train.py --config ...          # 2 CPU ranks over gloo
    python twin/train.py --config ... --max_steps 10                    # one process, no launcher

Reads a converted split whose teacher-score column ``teacher`` holds the cross-encoder's logits
(``data_prep.teacher_scores``), and the DeepSpeed JSON ``deepspeed_config`` (optimizer, precision, ZeRO
stage, micro-batch in question groups). Writes to ``output_dir``: ``checkpoints/`` (resume),
``model/`` (safetensors twin + tokenizer, see ``twin.modeling``), ``train_log.jsonl``, ``config.yaml``
(resolved) and ``summary.json``. The skeleton is the shared ``as2.training.train``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from as2.config import cli, parse
from as2.data import require_teachers
from as2.training import Recipe, TrainingArguments, autocast, train
from twin.collate import TwinCollator
from twin.losses import KINDS, TwinDistillLoss
from twin.modeling import CROSSING_MODES, POOLING_MODES, TwinConfig, TwinModel

logger = logging.getLogger("twin.train")


@dataclass
class TrainConfig(TrainingArguments):
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

    def __post_init__(self):
        super().__post_init__()
        if not self.model:
            raise ValueError("model is required")
        if self.alpha < 1 and not self.teacher:
            raise ValueError("teacher (a score column) is required unless alpha is 1 (labels only)")
        if self.doc_model and self.shared:
            raise ValueError("doc_model needs shared: false")
        TwinConfig(pooling=self.pooling, crossing=self.crossing, max_length=self.max_length)  # validates
        TwinDistillLoss(self.loss, self.temperature, self.alpha, self.inbatch)  # validates


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(TrainConfig, argv, description=__doc__)
    return train(cfg, lambda ds: recipe(cfg, ds))


def recipe(cfg: TrainConfig, ds) -> Recipe:
    """The twin towers, their collator, loss and saver for the training questions ``ds``."""
    # 1. data: the teacher's column
    teacher = cfg.teacher if cfg.alpha < 1 else None
    if teacher:
        require_teachers(ds.column_names, [teacher], cfg.train_data, "the twin")

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

    # 3. the loss of one micro-batch: own candidates against the teacher, other groups' as in-batch negatives
    loss_fn = TwinDistillLoss(cfg.loss, cfg.temperature, cfg.alpha, cfg.inbatch)

    def step(eng, batch):
        dev = eng.device
        q_in = {k: v.to(dev) for k, v in batch["query"].items()}
        d_in = {k: v.to(dev) for k, v in batch["doc"].items()}
        with autocast(eng):
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

    def save(module, folder):
        module.query_tokenizer, module.doc_tokenizer = q_tok, d_tok
        module.save_pretrained(folder)

    return Recipe(
        data=ds,
        model=model,
        collate=TwinCollator(ds, q_tok, d_tok, cfg.max_length, teacher),
        step=step,
        save=save,
        summary={"teacher": teacher},
    )


if __name__ == "__main__":
    cli(main)
