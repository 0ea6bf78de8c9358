"""The peer a user gets from the libraries' defaults: a sentence-transformers ``CrossEncoder`` fine-tuned with
that library's own trainer and recipe, to measure our teachers against (``make peers``).

    python -m cerberus.peer --model ~/.cache/as2-models/minilm-l6 --train_data runs/wikiqa/data/train \\
        --output_dir runs/wikiqa/peers/minilm_peer

The recipe is sentence-transformers' default for a reranker: ``CrossEncoder(model, num_labels=1,
max_length=128)``, ``BinaryCrossEntropyLoss``, ``CrossEncoderTrainer``, every (question, candidate) pair of
every training question (``protocol raw``: questions without a correct candidate give negatives too), batch
32, lr 2e-5, linear schedule with 10% warm-up, 1 epoch, seed 42; bf16 autocast where the hardware runs it
natively (``precision auto``, ``as2.precision``). Nothing of ours is in the loop: this is the baseline.

Reads a converted split (``data_prep.convert``). Writes ``OUTPUT_DIR/model/`` (a ``CrossEncoder`` folder that
``data_prep.teacher_scores`` scores as kind ``cross-encoder``), ``config.yaml`` and ``summary.json`` (pairs,
training seconds, precision, machine).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from as2 import precision as precisions
from as2.config import cli, parse, save_resolved, setup_logging, write_json
from as2.data import PROTOCOLS, apply_protocol, atomic_dir, from_dataset, load

logger = logging.getLogger("cerberus.peer")


@dataclass
class PeerConfig:
    model: str = field(default="", metadata={"help": "pretrained encoder (hub name or folder)"})
    train_data: str = field(default="", metadata={"help": "converted split to train on (data_prep.convert)"})
    output_dir: str = field(default="", metadata={"help": "folder for model/, config.yaml, summary.json"})
    protocol: str = field(default="raw", metadata={"help": f"training questions: {PROTOCOLS}"})
    max_length: int = field(default=128, metadata={"help": "tokens per (question, candidate) pair"})
    batch_size: int = field(default=32, metadata={"help": "pairs per step"})
    learning_rate: float = field(default=2e-5, metadata={"help": "peak learning rate (linear schedule)"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "fraction of steps warming up"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the pairs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after N steps (-1: all epochs)"})
    seed: int = field(default=42, metadata={"help": "seed of the head, the order and dropout"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 where native), fp32, bf16"})

    def __post_init__(self):
        for name in ("model", "train_data", "output_dir"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        precisions.check(self.precision)


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(PeerConfig, argv, description=__doc__)
    setup_logging()
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    out = Path(cfg.output_dir)
    save_resolved(cfg, out)
    resolved = precisions.resolve(cfg.precision)

    # 1. every (question, candidate, label) pair of the training questions, in file order (the trainer shuffles)
    questions = apply_protocol(from_dataset(load(cfg.train_data)), cfg.protocol)
    pairs = Dataset.from_dict(
        {
            "question": [q.question for q in questions for _ in q.cids],
            "candidate": [c for q in questions for c in q.candidates],
            "label": [float(label) for q in questions for label in q.labels],
        }
    )

    # 2. the library's cross-encoder, loss, arguments and trainer
    model = CrossEncoder(
        cfg.model, num_labels=1, max_length=cfg.max_length, device=precisions.default_device()
    )
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / "trainer"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_ratio=cfg.warmup_ratio,
        lr_scheduler_type="linear",
        bf16=resolved == "bf16",
        use_cpu=precisions.default_device() == "cpu",  # transformers refuses bf16 on a CPU unless told
        seed=cfg.seed,
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=precisions.default_device() == "cuda",
    )
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=pairs, loss=BinaryCrossEntropyLoss(model)
    )
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start

    # 3. the model folder, atomically, and a summary
    with atomic_dir(out / "model") as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
    shutil.rmtree(out / "trainer", ignore_errors=True)
    summary = {
        "model": cfg.model,
        "questions": len(questions),
        "pairs": len(pairs),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "seconds": seconds,
        "precision": resolved,
        "hardware": precisions.hardware(),
    }
    write_json(out / "summary.json", summary)
    logger.info(
        "trained the peer on %d pairs in %.0f s (%s): %s", len(pairs), seconds, resolved, out / "model"
    )
    return summary


if __name__ == "__main__":
    cli(main)
