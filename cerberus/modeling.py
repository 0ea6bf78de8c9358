"""The CERBERUS student: a shared transformer body and k ranking heads (``B_b kH_h``).

- **Body**: the embeddings and the first ``b`` transformer layers of a pretrained encoder.
- **Heads**: ``k`` stacks of ``h`` transformer layers each, all initialized from the encoder's layers
  ``b .. b+h-1``, plus a classifier giving one logit per (question, candidate) pair. Layers above ``b+h``
  are dropped. ``h = 0`` gives heads that are a classifier on the body's output.
- **Combination**: mean of head probabilities (``prob_mean``, default), mean of logits (``logit_mean``),
  or a learned pooler over the heads' pooled representations (``pooler``). ``head_weights`` makes either
  mean a weighted one (the ensemble's fusion weights chosen on dev, ``as2.select``).

It works for any encoder ``AutoModel`` loads (BERT, MPNet, RoBERTa, ELECTRA, DeBERTa, DistilBERT, ...):
the body is that model truncated to ``b`` layers, and each head is the same model class truncated to its
``h`` layers whose embedding module passes hidden states through, so attention masks and position biases
are built by the architecture's own code, never re-implemented here.

A teacher cross-encoder is the one-head case (``k=1``) trained on labels.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from as2.layers import Pooling, encoder_config, init_linear, load_encoder, load_weights

logger = logging.getLogger(__name__)

CONFIG_NAME = "cerberus_config.json"
WEIGHTS_NAME = "model.safetensors"
COMBINE_MODES = ("prob_mean", "logit_mean", "pooler")
POOLING_MODES = ("cls", "mean")


@dataclass
class StudentConfig:
    """Shape of a student; saved as ``cerberus_config.json`` beside the weights."""

    head_names: list[str]
    body_layers: int
    head_layers: int = 1
    combine: str = "prob_mean"
    pooling: str = "cls"
    classifier_dropout: float = 0.1
    head_weights: list[float] = field(default_factory=list)  # of the mean combinations; empty: equal
    # parameters an encoder keeps outside its layers and applies to every layer (MPNet's relative position
    # bias, DeBERTa's relative embeddings) are the body's own in every head, as in the pretrained encoder;
    # students saved before this option had a copy per head (False when their config lacks it)
    share_encoder_extras: bool = True
    encoder: dict = field(default_factory=dict)  # the transformers config of the encoder, as a dict
    source: str = ""  # where the encoder weights came from

    def __post_init__(self):
        if not self.head_names:
            raise ValueError("a student needs at least one head name")
        if len(set(self.head_names)) != len(self.head_names):
            raise ValueError(f"head names must be unique, got {self.head_names}")
        if self.body_layers < 0 or self.head_layers < 0:
            raise ValueError(
                f"body_layers and head_layers must be >= 0, got {self.body_layers}, {self.head_layers}"
            )
        if self.combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {self.combine!r}")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.head_weights:
            if len(self.head_weights) != len(self.head_names):
                raise ValueError(f"{len(self.head_weights)} head weights for {len(self.head_names)} heads")
            if min(self.head_weights) < 0 or sum(self.head_weights) <= 0:
                raise ValueError(f"head weights must be >= 0 with a positive sum, got {self.head_weights}")
            if self.combine == "pooler":
                raise ValueError("head weights apply to prob_mean and logit_mean, not to a learned pooler")

    def combination_weights(self) -> list[float]:
        """Weights of the heads in the combined score, summing to 1."""
        w = self.head_weights or [1.0] * len(self.head_names)
        return [x / sum(w) for x in w]


class PassThroughEmbeddings(nn.Module):
    """Stands in for a head's embedding module: returns the hidden states handed in as ``inputs_embeds``."""

    def forward(self, *args, **kwargs):
        x = kwargs.get("inputs_embeds")
        if x is None:  # some architectures (DistilBERT, DeBERTa) pass it positionally
            x = next(a for a in args if torch.is_tensor(a) and a.is_floating_point() and a.dim() == 3)
        return x


def find_layers(model: nn.Module) -> tuple[nn.Module, str]:
    """The module holding the transformer layers as a ``ModuleList`` and its attribute name."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == n:
                return module, name
    raise ValueError(f"{type(model).__name__}: found no ModuleList of {n} transformer layers")


def layer_path(model: nn.Module) -> str:
    """Dotted name of the ModuleList of transformer layers inside ``model`` (``encoder.layer`` for BERT)."""
    parent, name = find_layers(model)
    prefix = next(path for path, module in model.named_modules() if module is parent)
    return f"{prefix}.{name}" if prefix else name


def stacked_state(student: CerberusStudent, head: str) -> dict[str, torch.Tensor]:
    """The state dict of one head's whole encoder: the body's, with the head's own layers numbered after the
    body's (``b, b + 1, ...``): the weights of a plain encoder of ``b + h`` layers.

    Raises ``ValueError`` if the head holds its own copy of a module the body applies to every layer (an
    MPNet head trained before heads shared the body's relative position bias) that differs from the body's.
    """
    b, layers = student.config.body_layers, layer_path(student.body)
    chosen = student.heads[student.head_names.index(head)]
    state = dict(student.body.state_dict())
    if chosen.layers is not None:
        head_layers = layer_path(chosen.layers)
        for key, value in chosen.layers.state_dict().items():
            if key.startswith(head_layers + "."):
                i, rest = key[len(head_layers) + 1 :].split(".", 1)
                state[f"{layers}.{b + int(i)}.{rest}"] = value
            elif key in state and not torch.equal(state[key], value):
                raise ValueError(
                    f"head {head!r} has its own {key!r}, different from the body's: one encoder shares one"
                )
    return state


def truncate(model: nn.Module, start: int, stop: int) -> nn.Module:
    """Keep only layers ``start .. stop-1`` of ``model`` (in place) and update its config."""
    parent, name = find_layers(model)
    layers = getattr(parent, name)
    setattr(parent, name, nn.ModuleList(list(layers)[start:stop]))
    model.config.num_hidden_layers = stop - start
    for i, layer in enumerate(getattr(parent, name)):  # some layers carry their index (attention caches)
        for m in layer.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = i
    return model


class Classifier(nn.Module):
    """Dense + tanh + dropout + linear to one logit, as in BERT's sequence-classification head."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rep = torch.tanh(self.dense(self.dropout(pooled)))  # [N, H]
        with torch.autocast(rep.device.type, enabled=False):  # a bf16 logit has ~3 digits: ties in rankings
            logit = self.out(self.dropout(rep).to(self.out.weight.dtype))
        return logit.squeeze(-1), rep  # [N], [N, H]


class Head(nn.Module):
    """``h`` transformer layers (an encoder model with pass-through embeddings) and a classifier."""

    def __init__(self, layers: nn.Module | None, hidden: int, pooling: str, dropout: float):
        super().__init__()
        self.layers = layers
        self.pool = Pooling(pooling, hidden)
        self.classifier = Classifier(hidden, dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.layers is not None:
            hidden = self.layers(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
        return self.classifier(self.pool(hidden, mask))


def _head_stack(encoder: nn.Module, start: int, stop: int) -> nn.Module:
    head = truncate(copy.deepcopy(encoder), start, stop)
    head.embeddings = PassThroughEmbeddings()
    for attr in ("pooler", "embeddings_project"):  # applied after the encoder / before it: not in a head
        if getattr(head, attr, None) is not None:
            setattr(head, attr, None if attr == "pooler" else nn.Identity())
    return head


def _share_extras(stack: nn.Module, body: nn.Module) -> None:
    """Make the modules of a head stack that hold parameters outside its layers the body's same modules."""
    parent, name = find_layers(stack)
    in_layers = {id(p) for p in getattr(parent, name).parameters()}
    body_modules = dict(body.named_modules())
    for path, module in list(stack.named_modules()):
        own = list(module.parameters(recurse=False))
        if not path or not own or any(id(p) in in_layers for p in own):
            continue
        twin = body_modules.get(path)
        if twin is not None and type(twin) is type(module):
            owner, _, attr = path.rpartition(".")
            setattr(stack.get_submodule(owner) if owner else stack, attr, twin)


class CerberusStudent(nn.Module):
    """Shared body + k heads. ``forward`` returns per-head logits ``[N, k]`` and the combined score ``[N]``."""

    def __init__(self, config: StudentConfig, encoder: nn.Module):
        """``encoder`` is an ``AutoModel`` with at least ``body_layers + head_layers`` layers (more are dropped)."""
        super().__init__()
        self.config = config
        b, h = config.body_layers, config.head_layers
        total = encoder.config.num_hidden_layers
        if b + h > total:
            raise ValueError(f"body_layers + head_layers = {b + h} exceeds the encoder's {total} layers")
        hidden = encoder.config.hidden_size
        stacks = [_head_stack(encoder, b, b + h) if h > 0 else None for _ in config.head_names]
        self.body = truncate(encoder, 0, b)
        if getattr(self.body, "pooler", None) is not None:
            self.body.pooler = None
        if config.share_encoder_extras:
            for stack in stacks:
                if stack is not None:
                    _share_extras(stack, self.body)
        self.heads = nn.ModuleList(Head(s, hidden, config.pooling, config.classifier_dropout) for s in stacks)
        self.head_names = list(config.head_names)
        if config.combine == "pooler":
            self.combiner = Classifier(hidden * len(stacks), config.classifier_dropout)
        std = getattr(encoder.config, "initializer_range", 0.02)
        for head in self.heads:
            init_linear(head.classifier, std)
        if config.combine == "pooler":
            init_linear(self.combiner, std)
        self.register_buffer("weights", torch.tensor(config.combination_weights()), persistent=False)

    @property
    def num_heads(self) -> int:
        return len(self.heads)

    def encode(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """The shared body's hidden states ``[N, T, H]``, computed once for every head."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.body(**kwargs).last_hidden_state

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> dict[str, torch.Tensor]:
        hidden = self.encode(input_ids, attention_mask, token_type_ids)  # [N, T, H]
        logits, reps = zip(*(head(hidden, attention_mask) for head in self.heads), strict=True)
        logits = torch.stack(logits, dim=-1)  # [N, k]
        if self.config.combine == "pooler":
            score = self.combiner(torch.cat(reps, dim=-1))[0].float()
        else:
            score = self.mean_score(logits)
        return {"logits": logits, "score": score}  # [N, k], [N]

    def mean_score(self, logits: torch.Tensor, heads: list[int] | None = None) -> torch.Tensor:
        """The weighted mean combination (``prob_mean`` / ``logit_mean``) of ``logits`` ``[N, m]``, the logits
        of the heads ``heads`` (every head by default; their weights renormalised over those heads)."""
        weights = self.weights.float()  # bf16 engines cast buffers
        if heads is not None:
            weights = weights[heads] / weights[heads].sum().clamp(min=1e-12)
        values = torch.sigmoid(logits.float()) if self.config.combine == "prob_mean" else logits.float()
        with torch.autocast(values.device.type, enabled=False):  # a bf16 matmul rounds the score to ~3 digits
            return values @ weights  # [N]

    def combined_logit(self, logits: torch.Tensor) -> torch.Tensor:
        """The logit of the mean combination of ``logits`` ``[..., k]`` -> ``[...]``: the weighted mean of the
        logits (``logit_mean``), or ``logit(sum_j w_j sigmoid(z_j))`` (``prob_mean``), computed in log space.
        The same function of the teachers' logits is what the combined score is distilled from."""
        if self.config.combine == "logit_mean":
            return self.mean_score(logits)
        if self.config.combine != "prob_mean":
            raise ValueError(f"a {self.config.combine!r} combination has no closed-form logit")
        z, log_w = logits.float(), self.weights.float().clamp(min=1e-12).log()
        # p = sum_j w_j sigmoid(z_j), 1 - p = sum_j w_j sigmoid(-z_j); logit(p) = log p - log(1 - p)
        return torch.logsumexp(log_w + nn.functional.logsigmoid(z), -1) - torch.logsumexp(
            log_w + nn.functional.logsigmoid(-z), -1
        )

    def head_subset(self, names: list[str]) -> CerberusStudent:
        """A student with the same body and only the named heads (weights copied, not shared)."""
        missing = [n for n in names if n not in self.head_names]
        if missing:
            raise KeyError(f"no head named {missing}; heads are {self.head_names}")
        new = copy.deepcopy(self)
        new.heads = nn.ModuleList(new.heads[self.head_names.index(n)] for n in names)
        new.head_names = list(names)
        kept = (
            [self.config.head_weights[self.head_names.index(n)] for n in names]
            if self.config.head_weights
            else []
        )
        new.config = StudentConfig(**{**asdict(self.config), "head_names": list(names), "head_weights": kept})
        new.weights = torch.tensor(new.config.combination_weights(), device=self.weights.device)
        if new.config.combine == "pooler" and len(names) != len(self.head_names):
            raise ValueError("a learned pooler is tied to its full set of heads; choose another combine mode")
        return new

    # --- persistence: config JSON + safetensors + tokenizer files -----------------------------------------
    def save_pretrained(self, out_dir: str | os.PathLike, tokenizer=None) -> None:
        from safetensors.torch import save_model

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.config)
        cfg["encoder"] = self.body.config.to_dict()
        cfg["encoder"]["num_hidden_layers"] = self.config.body_layers + self.config.head_layers
        (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
        save_model(self, str(out / WEIGHTS_NAME))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(out))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> CerberusStudent:
        from transformers import AutoModel

        path = Path(path)
        if not (path / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{path}: not a saved student (no {CONFIG_NAME})")
        cfg = json.loads((path / CONFIG_NAME).read_text())
        enc_config = encoder_config(cfg.pop("encoder"))
        cfg.setdefault("share_encoder_extras", False)  # saved before the option: one copy per head
        config = StudentConfig(**cfg, encoder={})
        model = cls(config, AutoModel.from_config(enc_config))
        load_weights(model, path / WEIGHTS_NAME)
        model.eval()
        return model

    @classmethod
    def from_encoder(cls, name_or_path: str, config: StudentConfig) -> CerberusStudent:
        """Build from a pretrained encoder (hub name or local folder), dropping layers above ``b + h``; or from
        a one-head model trained here (a fine-tuned teacher folder): its encoder, body and head layers stacked."""
        from transformers import AutoConfig

        n = config.body_layers + config.head_layers
        source = None
        if (Path(name_or_path) / CONFIG_NAME).is_file():  # a model trained here: its stacked encoder
            source = cls.from_pretrained(name_or_path)
            if source.num_heads != 1:
                raise ValueError(
                    f"{name_or_path}: start from a one-head model (a teacher), not {source.head_names}"
                )
            available = source.config.body_layers + source.config.head_layers
        else:
            available = AutoConfig.from_pretrained(name_or_path).num_hidden_layers
        if n > available:  # loading with more layers than saved would silently add random ones
            raise ValueError(
                f"body_layers + head_layers = {n} exceeds the {available} layers of {name_or_path}"
            )
        if source is not None:
            encoder = _fine_tuned_encoder(source, n)
        else:  # the dropped upper layers: unused weights
            encoder = load_encoder(name_or_path, num_hidden_layers=n)
        logger.info("encoder %s: kept layers 0..%d of %s", name_or_path, n - 1, type(encoder).__name__)
        config.source = str(name_or_path)
        return cls(config, encoder)


def _fine_tuned_encoder(teacher: CerberusStudent, n: int) -> nn.Module:
    """The bottom ``n`` layers (and embeddings) of a one-head model's stacked encoder, as a plain encoder."""
    from transformers import AutoModel

    encoder = AutoModel.from_config(encoder_config(teacher.body.config.to_dict(), num_hidden_layers=n))
    layers = layer_path(teacher.body)
    state = {
        k: v
        for k, v in stacked_state(teacher, teacher.head_names[0]).items()
        if not k.startswith(layers + ".") or int(k[len(layers) + 1 :].split(".", 1)[0]) < n
    }
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and not k.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(
            f"the teacher's encoder does not fit {type(encoder).__name__}: {missing} {unexpected}"
        )
    return encoder
