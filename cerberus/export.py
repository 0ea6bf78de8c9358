"""Export one head of a trained student (or a teacher) as a standard sequence-classification model.

    python -m cerberus.export --model runs/wikiqa/students/cerberus/model --out exported/ --head mpnet_ce

The folder written loads with ``transformers.AutoModelForSequenceClassification`` (one logit) and with
``sentence_transformers.CrossEncoder``, which ranks exactly as the head it came from:

    from sentence_transformers import CrossEncoder

    CrossEncoder("exported/").rank("Where was Marie Curie born?", ["She won two Nobel prizes.", "..."])

A head is the student's body layers followed by the head's own layers and its classifier (dense, tanh, one
logit), which is the architecture's own classification head over the first token: BERT-like models map the
dense layer onto ``pooler.dense`` and the logit onto ``classifier``; RoBERTa-, MPNet- and ELECTRA-like
models onto ``classifier.dense`` and ``classifier.out_proj``. Only a head that pools the first token
(``pooling: cls``) has that form; a mean-pooled head, the combined score of several heads, and an MPNet head
of a student saved before heads shared the body's relative position bias have no standard equivalent and
are refused with a message. A one-head model (a teacher) needs no ``--head``.
The export checks itself: it scores a few pairs with both models and refuses a difference above 1e-4.

Any student, mean-pooled or multi-head, exports whole to ONNX (``pip install -e ".[onnx]"``):

    python -m cerberus.export --model runs/wikiqa/students/cerberus/model --out exported/ --format onnx

writes ``model.onnx`` (inputs as the tokenizer names them; outputs ``logits`` ``[N, heads]`` and the combined
``score`` ``[N]``) beside the tokenizer files, checked the same way against the student (``onnx_int8``:
ONNX Runtime's dynamic int8 quantization of it, its difference stated, not bounded). To rank with it:

    import onnxruntime, transformers
    tok = transformers.AutoTokenizer.from_pretrained("exported/")
    session = onnxruntime.InferenceSession("exported/model.onnx")
    enc = tok(["Where was Marie Curie born?"] * 2, ["She won two Nobel prizes.", "..."], padding=True,
              return_tensors="np")
    logits, score = session.run(None, {i.name: enc[i.name] for i in session.get_inputs()})
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import torch

from as2.config import ConfigError, cli, parse, setup_logging
from as2.layers import encoder_config
from cerberus.modeling import stacked_state

logger = logging.getLogger("cerberus.export")

CHECK_PAIRS = [
    ("where was marie curie born ?", "she was born in warsaw , then part of the russian empire ."),
    ("what is the capital of france ?", "paris is the capital and largest city of france ."),
    ("who wrote hamlet ?", "the tragedy was written by william shakespeare around 1600 ."),
]
MAX_DIFF = 1e-4
FORMATS = ("standard", "onnx", "onnx_int8")


@dataclass
class ExportConfig:
    model: str = field(default="", metadata={"help": "trained student or teacher folder (model/)"})
    out: str = field(default="", metadata={"help": "output folder of the standard model"})
    head: str = field(default="", metadata={"help": "head to export (needed when the model has several)"})
    max_length: int = field(default=0, metadata={"help": "CrossEncoder max_length to save (0: tokenizer's)"})
    format: str = field(default="standard", metadata={"help": f"one of {FORMATS}"})

    def __post_init__(self):
        if not self.model or not self.out:
            raise ValueError("model and out are required")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")


def _classifier_keys(standard: torch.nn.Module) -> dict[str, str]:
    """Where the head's classifier (``dense``, ``out``) goes in the standard model's state dict."""
    keys = set(standard.state_dict())
    prefix = standard.base_model_prefix
    if f"{prefix}.pooler.dense.weight" in keys and "classifier.weight" in keys:  # BERT-like
        return {"dense": f"{prefix}.pooler.dense", "out": "classifier"}
    if "classifier.dense.weight" in keys and "classifier.out_proj.weight" in keys:  # RoBERTa, MPNet, ELECTRA
        return {"dense": "classifier.dense", "out": "classifier.out_proj"}
    raise ConfigError(
        f"{type(standard).__name__}: its classification head is not dense + tanh + one logit over the first "
        "token (BERT-, RoBERTa-, MPNet- and ELECTRA-like models are): no standard model computes this head"
    )


def to_standard(student, head: str = ""):
    """The standard ``*ForSequenceClassification`` (``num_labels=1``) computing ``head``'s logit."""
    from transformers import AutoModelForSequenceClassification

    names = student.head_names
    if not head:
        if len(names) > 1:
            raise ConfigError(f"the model has {len(names)} heads {names}: choose one with --head")
        head = names[0]
    if head not in names:
        raise ConfigError(f"no head named {head!r}; heads are {names}")
    cfg = student.config
    if cfg.pooling != "cls":
        raise ConfigError(
            f"head {head!r} pools with {cfg.pooling!r}: a standard classification head reads the first token "
            "only (train with --pooling cls to export)"
        )
    b, h = cfg.body_layers, cfg.head_layers
    config = encoder_config(student.body.config.to_dict(), num_hidden_layers=b + h, num_labels=1,
                            id2label={0: "LABEL_0"}, label2id={"LABEL_0": 0})  # fmt: skip
    standard = AutoModelForSequenceClassification.from_config(config)
    chosen = student.heads[names.index(head)]
    try:
        state = stacked_state(student, head)
    except ValueError as e:  # e.g. MPNet's relative position bias
        raise ConfigError(f"{e}; it cannot be exported exactly") from None
    prefix = standard.base_model_prefix
    full = {f"{prefix}.{k}": v for k, v in state.items()}
    target = _classifier_keys(standard)
    for part in ("dense", "out"):
        module = getattr(chosen.classifier, part)
        full[f"{target[part]}.weight"] = module.weight
        full[f"{target[part]}.bias"] = module.bias
    missing, unexpected = standard.load_state_dict(full, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]  # buffers some versions list
    if missing or unexpected:
        raise ConfigError(
            f"weights do not map onto {type(standard).__name__}: missing {missing}, extra {unexpected}"
        )
    return standard.eval(), head


def check_inputs(tokenizer) -> dict[str, torch.Tensor]:
    """The model inputs of ``CHECK_PAIRS``: what every export is checked on."""
    from cerberus.collate import encode_pairs

    enc = encode_pairs(tokenizer, [q for q, _ in CHECK_PAIRS], [c for _, c in CHECK_PAIRS], max_length=64)
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def check_parity(student, standard, head: str, tokenizer) -> float:
    """Largest absolute difference between the head's logits and the standard model's on a few pairs."""
    inputs = check_inputs(tokenizer)
    with torch.no_grad():
        ours = student.eval()(**inputs)["logits"][:, student.head_names.index(head)].float()
        theirs = standard(**inputs).logits[:, 0].float()
    return float((ours - theirs).abs().max())


def export_onnx_folder(student, tokenizer, cfg: ExportConfig) -> dict:
    """The whole student as ``model.onnx`` (every head's logit and the combined score) beside its tokenizer."""
    from as2.data import atomic_dir
    from cerberus.onnx_student import OnnxStudent, export_onnx

    int8 = cfg.format == "onnx_int8"
    inputs = check_inputs(tokenizer)
    with torch.no_grad():
        ours = student.eval()(**inputs)
    with atomic_dir(cfg.out) as tmp:
        file = export_onnx(student, tmp / "model.fp32.onnx", int8=int8)
        file.rename(tmp / "model.onnx")
        (tmp / "model.fp32.onnx").unlink(missing_ok=True)
        theirs = OnnxStudent.from_file(tmp / "model.onnx", student)(**inputs)
        diff = max(float((ours[k] - theirs[k]).abs().max()) for k in ("logits", "score"))
        if diff > MAX_DIFF and not int8:
            raise ConfigError(
                f"the ONNX graph scores differently (max abs difference {diff:.2e}); nothing written"
            )
        tokenizer.save_pretrained(tmp)
        summary = {"model": cfg.model, "out": cfg.out, "format": cfg.format, "heads": student.head_names,
                   "combine": student.config.combine, "outputs": ["logits", "score"], "max_abs_diff": diff}  # fmt: skip
        (tmp / "export.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("exported the student (%s) to %s (max abs difference %.2e)", cfg.format, cfg.out, diff)
    return summary


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(ExportConfig, argv, description=__doc__)
    setup_logging()
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer

    from as2.data import atomic_dir
    from cerberus.modeling import CerberusStudent

    student = CerberusStudent.from_pretrained(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    if cfg.format != "standard":
        summary = export_onnx_folder(student, tokenizer, cfg)
        print(json.dumps(summary))
        return summary
    standard, head = to_standard(student, cfg.head)
    diff = check_parity(student, standard, head, tokenizer)
    if diff > MAX_DIFF:
        raise ConfigError(
            f"the exported head scores differently (max abs difference {diff:.2e}); nothing written"
        )
    summary = {"model": cfg.model, "head": head, "out": cfg.out, "class": type(standard).__name__,
               "max_abs_diff": diff}  # fmt: skip
    with atomic_dir(cfg.out) as tmp:  # written aside, moved into place when complete
        standard.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        ce = CrossEncoder(str(tmp), max_length=cfg.max_length or None, device="cpu")
        ce.save_pretrained(str(tmp), safe_serialization=True)  # its own config: one label, activation, length
        (tmp / "export.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info(
        "exported head %s as %s to %s (max abs difference %.2e)", head, summary["class"], cfg.out, diff
    )
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(main)
