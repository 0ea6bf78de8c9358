"""Train a CERBERUS student (or a one-head cross-encoder teacher) with DeepSpeed.

    deepspeed cerberus/train.py --config configs/wikiqa/student.yaml
    deepspeed --num_accelerators 2 cerberus/train.py --config ...      # 2 CPU ranks over gloo
    python cerberus/train.py --config ... --max_steps 10                # one process, no launcher

Reads a converted split (``data_prep.convert``) whose teacher-score columns are named after the heads,
and the DeepSpeed JSON named by ``deepspeed_config`` (optimizer, precision, ZeRO stage, micro-batch in
questions). Writes to ``output_dir``: ``checkpoints/`` (DeepSpeed, for resume), ``model/`` (safetensors
student + tokenizer), ``train_log.jsonl``, ``config.yaml`` (resolved), ``ds_config.json`` (resolved) and
``summary.json``. The skeleton (ranks, resume, groups, engine, export) is the shared ``as2.training.train``;
this file is the recipe: the student, its collator and its loss.

Heads: each entry of ``heads`` is a teacher-score column (the head is distilled from that teacher) or
``name=t1+t2+...`` (distilled from the mean of those teachers' normalized scores). With ``alpha: 1`` the
heads learn from labels only: that is how teachers are fine-tuned (one head, all layers kept), and a
TANDA sequence is two runs, the second with ``init_from`` pointing at the first's ``model/``.

Combined score: each head learns its own teacher, and the heads' mean combination (``combine``,
``head_weights``) is scored without being trained. ``fused_weight: w`` adds one more term of the same loss,
weighted ``w``: the logit of that combination of the student's heads against the same combination of their
teachers' normalized logits, so the heads also learn to fuse as the teachers' ensemble does. Its label
weight is ``fused_alpha`` (default ``alpha``): ``alpha: 0, fused_alpha: 1`` distils each head from its
teacher alone and teaches the labels only through the combination.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from as2.config import ConfigError, cli, parse
from as2.data import require_teachers, sample_negatives
from as2.training import Recipe, TrainingArguments, autocast, train
from cerberus.collate import GroupCollator, forward_chunks, scatter, teacher_stats
from cerberus.losses import KINDS, LABEL_LOSSES, MultiHeadDistillLoss
from cerberus.modeling import COMBINE_MODES, POOLING_MODES, CerberusStudent, StudentConfig


@dataclass
class TrainConfig(TrainingArguments):
    model: str = field(default="", metadata={"help": "pretrained encoder, or a one-head model trained here"})
    init_from: str = field(default="", metadata={"help": "start from a saved student model/ folder instead"})
    heads: list[str] = field(
        default_factory=list, metadata={"help": "head names = teacher columns (or name=t1+t2)"}
    )
    body_layers: int = field(default=3, metadata={"help": "encoder layers in the shared body"})
    head_layers: int = field(default=1, metadata={"help": "transformer layers per head"})
    combine: str = field(default="prob_mean", metadata={"help": f"head combination: {COMBINE_MODES}"})
    head_weights: list[float] = field(
        default_factory=list, metadata={"help": "weights of the heads in the combined score (empty: equal)"}
    )
    pooling: str = field(default="cls", metadata={"help": f"pair representation: {POOLING_MODES}"})
    loss: str = field(default="kl", metadata={"help": f"distillation loss: {KINDS}"})
    temperature: float = field(default=1.0, metadata={"help": "distillation temperature"})
    alpha: float = field(default=0.0, metadata={"help": "weight of the hard-label loss (1 = labels only)"})
    label_loss: str = field(default="bce", metadata={"help": f"hard-label loss: {LABEL_LOSSES}"})
    teacher_norm: str = field(
        default="zscore", metadata={"help": "teacher scores: zscore (per teacher) or none"}
    )
    max_negatives: int = field(
        default=0, metadata={"help": "keep at most N negatives per question, a seeded choice (0: all)"}
    )
    fused_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of one more loss term: the combined score against the teachers' combination"
        },
    )
    fused_alpha: float | None = field(
        default=None,
        metadata={
            "help": "weight of the hard-label loss in the fused_weight term (default: alpha; unused "
            "when fused_weight is 0)"
        },
    )
    length_chunks: int = field(
        default=2,
        metadata={"help": "forward passes per micro-batch, its pairs sorted by length (1: one padded batch)"},
    )

    def __post_init__(self):
        super().__post_init__()
        if bool(self.model) == bool(self.init_from):
            raise ValueError(
                "give exactly one of model (a pretrained encoder) and init_from (a saved student)"
            )
        if not self.heads:
            raise ValueError("heads: give at least one head name")
        if self.max_negatives < 0:
            raise ValueError(f"max_negatives must be >= 0, got {self.max_negatives}")
        if self.length_chunks < 1:
            raise ValueError(f"length_chunks must be >= 1, got {self.length_chunks}")
        if self.fused_weight < 0:
            raise ValueError(f"fused_weight must be >= 0, got {self.fused_weight}")
        if self.fused_weight and self.combine == "pooler":
            raise ValueError(
                "fused_weight distils a mean combination; a learned pooler has its own loss term"
            )
        # fused_alpha alone is inert (no combined term): a config's recipe can switch the term off with
        # `--fused_weight 0` (the KD baselines of configs/wikiqa/student.yaml) without unsetting it
        if self.fused_alpha is not None and not 0.0 <= self.fused_alpha <= 1.0:
            raise ValueError(f"fused_alpha must be in [0, 1], got {self.fused_alpha}")
        if self.teacher_norm not in ("zscore", "none"):
            raise ValueError(f"teacher_norm must be zscore or none, got {self.teacher_norm!r}")
        self.student_config()  # validates the shape
        MultiHeadDistillLoss(self.loss, self.temperature, self.alpha, self.label_loss)  # validates the loss

    def student_config(self) -> StudentConfig:
        return StudentConfig(head_names=self.head_names(), body_layers=self.body_layers, head_layers=self.head_layers,
                             combine=self.combine, pooling=self.pooling, head_weights=self.head_weights)  # fmt: skip

    def head_names(self) -> list[str]:
        return [h.split("=", 1)[0] for h in self.heads]

    def head_teachers(self) -> list[list[str]]:
        return [h.split("=", 1)[1].split("+") if "=" in h else [h] for h in self.heads]


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(TrainConfig, argv, description=__doc__)
    return train(cfg, lambda ds: recipe(cfg, ds))


def recipe(cfg: TrainConfig, ds) -> Recipe:
    """The CERBERUS student, its collator, loss and saver for the training questions ``ds``."""
    from transformers import AutoTokenizer

    # 1. data: a seeded sample of negatives, and (unless labels alone teach) the teacher columns of each head
    if cfg.max_negatives:
        ds = sample_negatives(ds, cfg.max_negatives, cfg.seed)
    # the combined score's label weight: fused_alpha with a fused_weight term (a learned pooler's term uses alpha)
    fused_alpha = cfg.fused_alpha if cfg.fused_weight > 0 and cfg.fused_alpha is not None else cfg.alpha
    taught = cfg.alpha < 1 or (cfg.fused_weight > 0 and fused_alpha < 1)  # some term learns from teachers
    columns = cfg.head_teachers() if taught else None
    if columns:
        for head, cols in zip(cfg.head_names(), columns, strict=True):
            require_teachers(ds.column_names, cols, cfg.train_data, f"head {head!r}")
    used = sorted({c for cols in columns or [] for c in cols})
    stats = teacher_stats(ds, used) if cfg.teacher_norm == "zscore" else {}

    # 2. model and tokenizer: a new student from an encoder, or a saved one (TANDA's second step)
    if cfg.init_from:
        model = CerberusStudent.from_pretrained(cfg.init_from)
        if model.head_names != cfg.head_names():
            raise ConfigError(
                f"{cfg.init_from} has heads {model.head_names}, the config asks for {cfg.head_names()}"
            )
        tokenizer = AutoTokenizer.from_pretrained(cfg.init_from)
    else:
        model = CerberusStudent.from_encoder(cfg.model, cfg.student_config())
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)

    # 3. the loss of one micro-batch: every head against its teacher (and the labels), on whole groups
    loss_fn = MultiHeadDistillLoss(cfg.loss, cfg.temperature, cfg.alpha, cfg.label_loss)
    fused_loss = MultiHeadDistillLoss(cfg.loss, cfg.temperature, fused_alpha, cfg.label_loss)
    fused = cfg.combine == "pooler" or cfg.fused_weight > 0
    names = cfg.head_names() + (["combined"] if fused else [])
    # each head's term weighs 1; the combined score's (the pooler's, or fused_weight's) its own
    term_weights = torch.tensor([1.0] * len(cfg.head_names()) + ([cfg.fused_weight or 1.0] if fused else []))

    def step(eng, batch):
        with autocast(eng):  # one forward pass per length chunk; the pairs stay in chunk order
            out = forward_chunks(eng, batch["inputs"], eng.device)
        logits = out["logits"].float()  # [N, k]
        teacher = batch["teacher"].to(eng.device) if batch["teacher"] is not None else None
        if cfg.combine == "pooler":  # the learned pooler is one more output, taught by the teachers' mean
            logits = torch.cat([logits, out["score"].float().unsqueeze(-1)], dim=-1)  # [N, k + 1]
            if teacher is not None:
                teacher = torch.cat([teacher, teacher.mean(-1, keepdim=True)], dim=-1)  # [Q, C, k + 1]
        elif fused:  # the heads' combination, taught by the same combination of their teachers' logits
            logits = torch.cat([logits, model.combined_logit(logits).unsqueeze(-1)], dim=-1)  # [N, k + 1]
            if teacher is not None:
                teacher = torch.cat([teacher, model.combined_logit(teacher).unsqueeze(-1)], dim=-1)
        q, c = batch["mask"].shape
        student = scatter(logits, batch["index"].to(eng.device), (q, c))  # [Q, C, k(+1)]
        labels, mask = batch["labels"].to(eng.device), batch["mask"].to(eng.device)
        k = len(cfg.head_names())
        _, per_head = loss_fn(student[..., :k], None if teacher is None else teacher[..., :k], labels, mask)
        if fused:  # the combined score's term, with its own label weight
            t = None if teacher is None or fused_alpha == 1 else teacher[..., k:]
            per_head = torch.cat([per_head, fused_loss(student[..., k:], t, labels, mask)[1]])
        total_loss = per_head @ term_weights.to(per_head.device)
        return total_loss, {f"loss/{n}": v for n, v in zip(names, per_head.detach().tolist(), strict=True)}

    return Recipe(
        data=ds,
        model=model,
        collate=GroupCollator(ds, tokenizer, cfg.max_length, columns, stats, cfg.length_chunks),
        step=step,
        save=lambda module, folder: module.save_pretrained(folder, tokenizer=tokenizer),
        summary={"heads": cfg.head_names()},
    )


if __name__ == "__main__":
    cli(main)
