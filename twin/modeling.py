"""TwinBERT (Lu, Jiao, Zhang, CIKM 2020): a query tower and a document tower, and a crossing layer.

- **Towers**: any ``AutoModel`` encoder each (one shared set of weights, or two), followed by pooling:
  ``cls`` (first token), ``mean`` (over unmasked tokens) or ``weighted`` (TwinBERT's learned pooling: a
  linear score per token, softmax over the unmasked tokens, weighted sum).
- **Crossing**: ``cos`` (TwinBERT_cos: ``scale * cos(q, d) + bias``, with ``scale = exp(log_scale) > 0``,
  so the ranking is that of the inner product of the L2-normalized vectors and a FAISS inner-product index
  ranks exactly like the model), or ``res`` (TwinBERT_res: a residual network over ``[q; d]`` giving a
  logit; *not* an inner product, so it cannot be served from a vector index).

Saved as ``twin_config.json`` + ``model.safetensors`` + the tokenizer (the document tower's own tokenizer in
``doc_tokenizer/`` when the towers come from different encoders). :func:`fingerprint` hashes those files;
an index records it and refuses to be searched with another model.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from as2.hashing import sha256_tree
from as2.layers import POOLING_MODES, Pooling, encoder_config, init_linear, load_encoder, load_weights

logger = logging.getLogger(__name__)

CONFIG_NAME = "twin_config.json"
WEIGHTS_NAME = "model.safetensors"
DOC_TOKENIZER = "doc_tokenizer"
CROSSING_MODES = ("cos", "res")


@dataclass
class TwinConfig:
    """Shape of a twin model; saved as ``twin_config.json`` beside the weights."""

    pooling: str = "mean"
    crossing: str = "cos"
    shared: bool = True
    max_length: int = 128  # tokens per text when encoding (queries and documents)
    init_scale: float = 5.0  # initial scale of the cosine crossing
    query_encoder: dict = field(default_factory=dict)  # transformers config of each tower, as a dict
    doc_encoder: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.crossing not in CROSSING_MODES:
            raise ValueError(f"crossing must be one of {CROSSING_MODES}, got {self.crossing!r}")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {self.max_length}")


class Tower(nn.Module):
    """An encoder and its pooling: token ids -> one vector per text."""

    def __init__(self, encoder: nn.Module, pooling: str):
        super().__init__()
        if (
            getattr(encoder, "pooler", None) is not None
        ):  # BERT's pooler is unused here (and gets no gradient)
            encoder.pooler = None
        self.encoder = encoder
        self.pool = Pooling(pooling, encoder.config.hidden_size)

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state  # [N, T, H]
        return self.pool(hidden, attention_mask)


class CosineCrossing(nn.Module):
    """TwinBERT_cos: ``exp(log_scale) * <q, d> + bias`` on L2-normalized vectors (inputs are normalized)."""

    inner_product = True

    def __init__(self, init_scale: float):
        super().__init__()
        self.log_scale = nn.Parameter(
            torch.tensor([float(init_scale)]).log()
        )  # [1]: DeepSpeed broadcasts 1-d
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``q`` ``[N, H]``, ``d`` ``[N, H]`` -> ``[N]``."""
        return self.log_scale.exp() * (q * d).sum(-1) + self.bias

    def matrix(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``q`` ``[Q, H]``, ``d`` ``[D, H]`` -> ``[Q, D]``: every query against every document."""
        return self.log_scale.exp() * q @ d.T + self.bias


class ResidualCrossing(nn.Module):
    """TwinBERT_res: ``x = [q; d]``, ``h = x + W2 relu(W1 x)``, logit ``= w . h + b``."""

    inner_product = False

    def __init__(self, hidden: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Linear(2 * hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, 2 * hidden)
        )
        self.out = nn.Linear(2 * hidden, 1)

    def forward(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        x = torch.cat([q, d], dim=-1)  # [N, 2H]
        return self.out(x + self.block(x)).squeeze(-1)

    def matrix(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        qq = q.unsqueeze(1).expand(-1, d.shape[0], -1)  # [Q, D, H]
        dd = d.unsqueeze(0).expand(q.shape[0], -1, -1)
        return self.forward(qq, dd)  # [Q, D]


class TwinModel(nn.Module):
    """Two towers and a crossing. ``query_tokenizer`` / ``doc_tokenizer`` are attached on loading."""

    def __init__(self, config: TwinConfig, query_encoder: nn.Module, doc_encoder: nn.Module | None = None):
        super().__init__()
        if config.shared and doc_encoder is not None:
            raise ValueError("shared towers take one encoder")
        if not config.shared and doc_encoder is None:
            raise ValueError("separate towers need a document encoder")
        self.config = config
        self.query_tower = Tower(query_encoder, config.pooling)
        self._doc = Tower(doc_encoder, config.pooling) if doc_encoder is not None else None
        if self._doc is not None and self._doc.encoder.config.hidden_size != query_encoder.config.hidden_size:
            raise ValueError("the two towers must have the same hidden size")
        hidden = query_encoder.config.hidden_size
        self.crossing = (
            CosineCrossing(config.init_scale) if config.crossing == "cos" else ResidualCrossing(hidden)
        )
        self.query_tokenizer = self.doc_tokenizer = None

    @property
    def doc_tower(self) -> Tower:
        return self._doc if self._doc is not None else self.query_tower

    @property
    def normalize(self) -> bool:
        return self.config.crossing == "cos"

    @property
    def dim(self) -> int:
        return self.query_tower.encoder.config.hidden_size

    def embed(self, side: str, **inputs) -> torch.Tensor:
        """Token inputs of one side (``query`` or ``doc``) -> ``[N, H]`` (unit length under ``cos``)."""
        tower = self.query_tower if side == "query" else self.doc_tower
        v = tower(**inputs)
        return nn.functional.normalize(v.float(), dim=-1) if self.normalize else v.float()

    def forward(self, query_inputs: dict, doc_inputs: dict, matrix: bool = False) -> torch.Tensor:
        """Scores of aligned (query, document) pairs ``[N]``, or with ``matrix`` of all pairs ``[Q, D]``."""
        q, d = self.embed("query", **query_inputs), self.embed("doc", **doc_inputs)
        return self.crossing.matrix(q, d) if matrix else self.crossing(q, d)

    # --- persistence -------------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | os.PathLike) -> None:
        from safetensors.torch import save_model

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.config)
        cfg["query_encoder"] = self.query_tower.encoder.config.to_dict()
        cfg["doc_encoder"] = self._doc.encoder.config.to_dict() if self._doc is not None else {}
        (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
        save_model(self, str(out / WEIGHTS_NAME))
        if self.query_tokenizer is not None:
            self.query_tokenizer.save_pretrained(str(out))
        if self.doc_tokenizer is not None and self.doc_tokenizer is not self.query_tokenizer:
            self.doc_tokenizer.save_pretrained(str(out / DOC_TOKENIZER))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> TwinModel:
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(
                f"{path}: not a saved twin model (needs {CONFIG_NAME} and {WEIGHTS_NAME})"
            )
        cfg = json.loads((path / CONFIG_NAME).read_text())
        encoders = []
        for key in ("query_encoder", "doc_encoder"):
            enc = cfg.pop(key)
            encoders.append(AutoModel.from_config(encoder_config(enc)) if enc else None)
        model = cls(TwinConfig(**cfg), *encoders)
        load_weights(model, path / WEIGHTS_NAME)
        model.eval()
        model.query_tokenizer = AutoTokenizer.from_pretrained(str(path))
        doc_tok = path / DOC_TOKENIZER
        model.doc_tokenizer = (
            AutoTokenizer.from_pretrained(str(doc_tok)) if doc_tok.is_dir() else model.query_tokenizer
        )
        return model

    @classmethod
    def from_encoders(cls, query: str, config: TwinConfig, doc: str | None = None) -> TwinModel:
        """Build from pretrained encoders (hub names, HF folders or sentence-transformers folders).

        With ``config.shared`` one encoder serves both sides; otherwise the document tower starts from
        ``doc`` (default: a separate copy of ``query``).
        """
        from transformers import AutoTokenizer

        query = os.path.expanduser(query)
        doc = os.path.expanduser(doc) if doc else None
        q_enc = load_encoder(query)
        d_enc = None if config.shared else load_encoder(doc or query)
        config.source = f"{query}" if config.shared else f"{query} | {doc or query}"
        model = cls(config, q_enc, d_enc)
        if model.crossing.__class__ is ResidualCrossing or config.pooling == "weighted":
            std = getattr(q_enc.config, "initializer_range", 0.02)
            init_linear(model.crossing, std)
            init_linear(model.query_tower.pool, std)
        model.query_tokenizer = AutoTokenizer.from_pretrained(query)
        model.doc_tokenizer = (
            AutoTokenizer.from_pretrained(doc) if doc and doc != query else model.query_tokenizer
        )
        return model


def fingerprint(model_dir: str | os.PathLike) -> str:
    """SHA-256 of every file of a saved twin folder (names and bytes, sorted): weights, config, tokenizer."""
    root = Path(model_dir)
    if not (root / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{root}: not a saved twin model (no {CONFIG_NAME})")
    return sha256_tree(root)
