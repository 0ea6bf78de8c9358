"""Export a twin tower as a sentence-transformers folder: ``Transformer`` + ``Pooling`` (+ ``Normalize``).

    python -m twin.export --model runs/twin/model --out runs/twin/st_doc --side doc

Only ``cls`` and ``mean`` pooling map onto sentence-transformers modules; TwinBERT's learned weighted
pooling has no counterpart there, and is refused. The exported folder loads with
``SentenceTransformer(folder)`` and encodes exactly like the twin's own tower (checked in the tests).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import cli, parse, setup_logging

logger = logging.getLogger("twin.export")


@dataclass
class ExportConfig:
    model: str = field(default="", metadata={"help": "saved twin folder (model/ of twin/train.py)"})
    out: str = field(default="", metadata={"help": "output sentence-transformers folder"})
    side: str = field(default="doc", metadata={"help": "tower to export: query or doc"})

    def __post_init__(self):
        if not self.model or not self.out:
            raise ValueError("model and out are required")
        if self.side not in ("query", "doc"):
            raise ValueError(f"side must be query or doc, got {self.side!r}")


def export_sentence_transformer(model, out_dir: str | Path, side: str = "doc") -> Path:
    """Write one tower of ``model`` (a :class:`twin.modeling.TwinModel`) as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from as2.data import atomic_dir

    if model.config.pooling not in ("cls", "mean"):
        raise ValueError(
            f"pooling {model.config.pooling!r} has no sentence-transformers module; export needs cls or mean"
        )
    tower = model.query_tower if side == "query" else model.doc_tower
    tokenizer = model.query_tokenizer if side == "query" else model.doc_tokenizer
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".twin-export-", dir=out.parent) as tmp, atomic_dir(out) as final:
        hf_dir = Path(tmp) / "hf"  # the encoder as transformers saves it, read back by the Transformer module
        tower.encoder.save_pretrained(str(hf_dir))
        tokenizer.save_pretrained(str(hf_dir))
        modules = [
            Transformer(str(hf_dir), max_seq_length=model.config.max_length),
            Pooling(model.dim, pooling_mode=model.config.pooling),
        ]
        if model.normalize:
            modules.append(Normalize())
        st = SentenceTransformer(
            modules=modules, device="cpu", similarity_fn_name="cosine" if model.normalize else "dot"
        )
        st.save(str(final), create_model_card=False, safe_serialization=True)
    logger.info("exported the %s tower to %s", side, out)
    return out


def main(argv: list[str] | None = None) -> str:
    from twin.modeling import TwinModel

    cfg, _ = parse(ExportConfig, argv, description=__doc__)
    setup_logging()
    # 1. load the twin, 2. write the tower as a sentence-transformers folder
    model = TwinModel.from_pretrained(cfg.model)
    return str(export_sentence_transformer(model, cfg.out, cfg.side))


if __name__ == "__main__":
    cli(main)
