"""Distilling a cross-encoder into twin encoders: the teacher's logits for the candidates of a question.

==================  ============  ==================================================================
input               shape         meaning
==================  ============  ==================================================================
``student``         ``[Q, C]``    twin scores of each group's own candidates (padding: anything)
``teacher``         ``[Q, C]``    teacher logits (``None`` when ``alpha == 1``: labels only)
``labels``          ``[Q, C]``    1 = correct answer
``mask``            ``[Q, C]``    bool, True on real candidates
``negatives``       ``[Q, M]``    optional: twin scores of the group's question against candidates of
                                  *other* questions in the micro-batch (in-batch negatives)
``negatives_mask``  ``[Q, M]``    bool, True where that score is a real negative
==================  ============  ==================================================================

``loss = (1 - alpha) * distill + alpha * hard + inbatch * in_batch``, where ``distill`` is ``mse`` (on
probabilities: ``sigmoid(teacher)`` vs ``sigmoid(student)``, TwinBERT's choice) or ``kl`` (listwise over a
question's candidates, temperature ``T``, scaled by ``T**2``); ``hard`` is binary cross-entropy on labels;
``in_batch`` is, for each group with a correct answer, the cross-entropy of picking its correct candidates
among its own candidates and the in-batch negatives.
"""

from __future__ import annotations

import torch
from torch import nn

KINDS = ("mse", "kl")


class TwinDistillLoss(nn.Module):
    def __init__(self, kind: str = "mse", temperature: float = 1.0, alpha: float = 0.0, inbatch: float = 0.0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"loss must be one of {KINDS}, got {kind!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha (weight of the hard-label loss) must be in [0, 1], got {alpha}")
        if inbatch < 0:
            raise ValueError(f"inbatch (weight of the in-batch negatives loss) must be >= 0, got {inbatch}")
        self.kind, self.temperature, self.alpha, self.inbatch = kind, temperature, alpha, inbatch

    def forward(
        self,
        student: torch.Tensor,
        teacher: torch.Tensor | None,
        labels: torch.Tensor,
        mask: torch.Tensor,
        negatives: torch.Tensor | None = None,
        negatives_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if student.dim() != 2 or labels.shape != student.shape or mask.shape != student.shape:
            raise ValueError(
                f"expected student, labels, mask of one shape [Q, C], got {student.shape}, {labels.shape}, "
                f"{mask.shape}"
            )
        if self.alpha < 1 and (teacher is None or teacher.shape != student.shape):
            got = None if teacher is None else tuple(teacher.shape)
            raise ValueError(
                f"teacher scores [Q, C] = {tuple(student.shape)} are needed (alpha < 1), got {got}"
            )
        mask = mask.bool()
        student = student.float()
        logs: dict[str, float] = {}
        total = student.new_zeros(())
        if self.alpha < 1:
            distill = self._distill(student, teacher.float(), mask)
            total = total + (1 - self.alpha) * distill
            logs["loss/distill"] = distill.item()
        if self.alpha > 0:
            hard = nn.functional.binary_cross_entropy_with_logits(student[mask], labels[mask].float())
            total = total + self.alpha * hard
            logs["loss/hard"] = hard.item()
        if self.inbatch > 0 and negatives is not None and negatives.numel():
            if (
                negatives_mask is None
                or negatives_mask.shape != negatives.shape
                or negatives.shape[0] != student.shape[0]
            ):
                raise ValueError(f"negatives [Q, M] need a mask of the same shape, got {negatives.shape}")
            ib = self._in_batch(student, labels, mask, negatives.float(), negatives_mask.bool())
            total = total + self.inbatch * ib
            logs["loss/inbatch"] = ib.item()
        return total, logs

    def _distill(self, s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "mse":
            return ((torch.sigmoid(s) - torch.sigmoid(t)) ** 2)[mask].mean()
        temp = self.temperature
        s = (s / temp).masked_fill(~mask, float("-inf"))
        t = (t / temp).masked_fill(~mask, float("-inf"))
        p = torch.softmax(t, dim=-1)
        kl = p * (torch.log_softmax(t, dim=-1) - torch.log_softmax(s, dim=-1))  # [Q, C]
        return kl.masked_fill(~mask, 0.0).sum(-1).mean() * temp**2

    @staticmethod
    def _in_batch(s, labels, mask, neg, neg_mask) -> torch.Tensor:
        logits = torch.cat(
            [s.masked_fill(~mask, float("-inf")), neg.masked_fill(~neg_mask, float("-inf"))], -1
        )
        pos = torch.cat([(labels > 0) & mask, torch.zeros_like(neg_mask)], dim=-1)  # [Q, C + M]
        has_pos = pos.any(-1)
        if not has_pos.any():
            return s.new_zeros(())
        log_all = torch.logsumexp(logits[has_pos], dim=-1)
        log_pos = torch.logsumexp(logits[has_pos].masked_fill(~pos[has_pos], float("-inf")), dim=-1)
        return (log_all - log_pos).mean()
