"""A CERBERUS student (or a teacher trained here) run by ONNX Runtime on CPU: precisions ``onnx`` and ``onnx_int8``.

    pip install -e ".[onnx]"                        # onnxruntime, onnx, onnxscript (an optional extra)
    Ranker("runs/demo/student/model", precision="onnx_int8")
    python -m cerberus.predict --model ... --precision onnx_int8

The student is exported with ``torch.onnx.export`` (the dynamo exporter; batch and sequence length dynamic)
to a temporary folder, ``onnx_int8`` then quantizes its MatMul weights to int8 with ONNX Runtime's own
``quantize_dynamic`` (activations quantized per batch at run time), and the session is built from the bytes:
nothing is written beside the model. The session uses as many intra-op threads as torch does, so that
timings compare with the PyTorch precisions. An :class:`OnnxStudent` is called like the torch student
(``input_ids``, ``attention_mask``, ``token_type_ids`` -> ``{"logits", "score"}``), so ``score_pairs``,
``Ranker``, ``cerberus.predict`` and ``cerberus.bench`` use it unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from inspect import signature
from pathlib import Path

import numpy as np
import torch

from as2.config import ConfigError

logger = logging.getLogger(__name__)

ONNX_PRECISIONS = ("onnx", "onnx_int8")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "precision onnx / onnx_int8 needs ONNX Runtime: pip install -e '.[onnx]' (onnxruntime, onnx, onnxscript)"
        ) from None
    return onnxruntime


class _Outputs(torch.nn.Module):
    """The student with tensor inputs and a tuple of outputs, as the exporter wants them."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.model(input_ids, attention_mask, token_type_ids)
        return out["logits"], out["score"]


def export_onnx(model: torch.nn.Module, path: Path, int8: bool = False) -> Path:
    """Write ``model`` (a ``CerberusStudent``) as ONNX to ``path``; with ``int8``, its dynamically quantized form.

    Returns the file of the model to run (``path`` itself, or ``<path>.int8.onnx`` beside it).
    """
    example = {
        "input_ids": torch.tensor([[2, 5, 6, 7, 3], [2, 5, 3, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
        "token_type_ids": torch.zeros(2, 5, dtype=torch.long),
    }
    # token type ids only for encoders that take them (BERT does, MPNet and RoBERTa-likes do not)
    names = [
        k
        for k in INPUTS
        if k != "token_type_ids" or "token_type_ids" in signature(model.body.forward).parameters
    ]
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    wrapper = _Outputs(model).eval()  # a module is exported in the mode it is in: never with dropout
    with contextlib.redirect_stdout(sys.stderr):  # the exporter's progress lines: stdout carries results
        torch.onnx.export(
            wrapper,
            tuple(example[k] for k in names),
            str(path),
            input_names=names,
            output_names=["logits", "score"],
            dynamic_shapes=tuple({0: batch, 1: seq} for _ in names),
            dynamo=True,
            external_data=False,  # weights inside the file (students are far below ONNX's 2 GB limit)
            verbose=False,
        )
    if not int8:
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
    return quantized


class OnnxStudent:
    """A student exported to ONNX and run by an ONNX Runtime CPU session; called like the torch student."""

    def __init__(self, model: torch.nn.Module, int8: bool = False, threads: int = 0):
        _onnxruntime()  # a clear message before any export work
        model.eval()
        with tempfile.TemporaryDirectory(prefix="as2-onnx-") as tmp:
            self._start(
                export_onnx(model, Path(tmp) / "student.onnx", int8=int8).read_bytes(), model, threads
            )

    @classmethod
    def from_file(cls, path: str | Path, model: torch.nn.Module, threads: int = 0) -> OnnxStudent:
        """A session over an exported ``model.onnx``; ``model`` supplies the head names and config."""
        new = cls.__new__(cls)
        new._start(Path(path).read_bytes(), model, threads)
        return new

    def _start(self, graph: bytes, model: torch.nn.Module, threads: int) -> None:
        ort = _onnxruntime()
        self.head_names = list(model.head_names)
        self.num_heads = len(self.head_names)
        self.config = model.config
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()  # as torch: timings compare
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        logger.info("ONNX Runtime %s session, %d threads", ort.__version__, options.intra_op_num_threads)

    def __call__(self, input_ids, attention_mask, token_type_ids=None) -> dict[str, torch.Tensor]:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # fed only to a graph that takes them
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {k: given[k].cpu().numpy().astype(np.int64) for k in self.inputs}
        logits, score = self.session.run(["logits", "score"], feed)
        return {"logits": torch.from_numpy(logits), "score": torch.from_numpy(score)}
