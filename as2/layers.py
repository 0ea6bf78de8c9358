"""Model pieces shared by the CERBERUS student and the twin encoders: pooling, head initialisation, and
loading a pretrained encoder without transformers' warnings about weights a model deliberately leaves out."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

POOLING_MODES = ("cls", "mean", "weighted")


class Pooling(nn.Module):
    """``[N, T, H]`` token states and ``[N, T]`` mask -> ``[N, H]``; padded tokens never contribute.

    ``cls``: the first token; ``mean``: the mean of the unpadded tokens; ``weighted``: a learned softmax
    weighting of the unpadded tokens (one ``Linear(H, 1)``).
    """

    def __init__(self, mode: str, hidden: int):
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {mode!r}")
        self.mode = mode
        self.weight = nn.Linear(hidden, 1) if mode == "weighted" else None

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if hidden.dim() != 3 or mask.shape != hidden.shape[:2]:
            raise ValueError(f"expected hidden [N, T, H] and mask [N, T], got {hidden.shape}, {mask.shape}")
        if self.mode == "cls":
            return hidden[:, 0]
        keep = mask.bool()
        if self.mode == "mean":
            m = keep.unsqueeze(-1).to(hidden.dtype)  # [N, T, 1]
            return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        logits = self.weight(hidden).squeeze(-1).float()  # [N, T]
        logits = logits.masked_fill(~keep, float("-inf"))
        w = torch.softmax(logits, dim=-1).nan_to_num(0.0).to(hidden.dtype)  # all-masked rows -> zeros
        return (w.unsqueeze(-1) * hidden).sum(1)


def init_linear(module: nn.Module, std: float = 0.02) -> None:
    """Every ``nn.Linear`` under ``module`` drawn as the encoder initialises its own (normal weights, zero bias)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)


def load_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """A safetensors file into ``module`` (strict); a missing, truncated or mismatched file is a ``DataError``
    naming it, not a library traceback."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from as2.data import DataError

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        load_model(module, str(path))
    except SafetensorError as e:
        raise DataError(f"{path}: not a complete safetensors file ({e})") from None
    except RuntimeError as e:  # missing or unexpected tensors, or tensors of other shapes
        raise DataError(
            f"{path}: its tensors do not fit the model of its config ({str(e).splitlines()[0]})"
        ) from None


def load_encoder(name_or_path: str, **kwargs) -> nn.Module:
    """``AutoModel.from_pretrained`` without the warnings about weights left out on purpose (dropped upper
    layers, a pooler a sentence-transformers folder does not ship); ``kwargs`` go to ``from_pretrained``."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoModel.from_pretrained(name_or_path, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def encoder_config(saved: dict, **changes):
    """A transformers config from an encoder config's ``to_dict()`` (as our model configs save it), with
    ``changes`` applied (``num_hidden_layers=...``)."""
    from transformers import AutoConfig

    enc = {**saved, **changes}
    return AutoConfig.for_model(enc.pop("model_type"), **enc)
