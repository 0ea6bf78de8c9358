"""Distillation losses for multi-head students, over padded question batches.

Every loss here works on a batch of ``Q`` questions padded to ``C`` candidates, with ``k`` heads:

===========  =================  ===============================================================
input        shape / dtype      meaning
===========  =================  ===============================================================
student      ``[Q, C, k]`` f    student logits, one per head
teacher      ``[Q, C, k]`` f    logit of head j's teacher (``None`` when ``alpha == 1``)
labels       ``[Q, C]`` int     1 = correct answer, 0 = not
mask         ``[Q, C]`` bool    True for real candidates, False for padding
===========  =================  ===============================================================

Distillation kinds (``kind``), each at temperature ``T``:

- ``kl``: pointwise KL between the teacher's and the student's softened 2-way distribution
  ``[1 - sigmoid(z / T), sigmoid(z / T)]``, scaled by ``T**2`` (Hinton et al.);
- ``mse``: squared error between logits;
- ``listwise``: KL between the teacher's and student's softmax over one question's candidates, ``T**2``;
- ``margin_mse``: Margin-MSE (Hofstätter et al. 2020) over every pair of one question's candidates: the
  squared difference between the student's margin ``s_i - s_j`` and the teacher's ``t_i - t_j``, averaged
  over the pairs (twice the variance of ``s - t`` within the question). It asks for the teacher's
  differences, not its scale or offset, and needs no label, so every question with two candidates teaches.

The per-head loss is ``alpha * label loss + (1 - alpha) * distillation``; padding never counts. The label
loss (``label_loss``) is pointwise ``bce`` on each candidate, or ``listwise``: cross-entropy between the
softmax over one question's candidates and its correct ones (uniform over them; a question with no correct
candidate gives no listwise signal and is skipped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("kl", "mse", "listwise", "margin_mse")
LABEL_LOSSES = ("bce", "listwise")


def _check(student, teacher, labels, mask, need_teacher: bool) -> None:
    if student.dim() != 3:
        raise ValueError(f"student logits must be [Q, C, k], got shape {tuple(student.shape)}")
    q, c, _ = student.shape
    if labels.shape != (q, c) or mask.shape != (q, c):
        raise ValueError(
            f"labels and mask must be [Q, C] = [{q}, {c}], got {tuple(labels.shape)} and {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    if need_teacher:
        if teacher is None:
            raise ValueError("teacher logits are required when alpha < 1")
        if teacher.shape != student.shape:
            raise ValueError(
                f"teacher logits must match student logits {tuple(student.shape)}, got {tuple(teacher.shape)}"
            )
        if not torch.isfinite(teacher[mask]).all():
            raise ValueError("teacher logits contain NaN or inf at real (unmasked) candidates")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real candidates of ``x`` [Q, C, k] -> [k]."""
    m = mask.unsqueeze(-1)  # [Q, C, 1]
    # where, not a product: NaN or inf at padding times 0 would still be NaN
    return torch.where(m, x, 0.0).sum((0, 1)) / m.sum((0, 1)).to(x.dtype).clamp(min=1.0)


def pointwise_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float):
    """KL(teacher || student) on sigmoid(z / T) per candidate, times T**2 -> [k]."""
    t = temperature
    p_teacher = torch.sigmoid(teacher / t)
    # BCE(s, p) - BCE(t, p) = KL(p || sigmoid(s)); zero exactly when student == teacher
    kl = F.binary_cross_entropy_with_logits(student / t, p_teacher, reduction="none")
    kl = kl - F.binary_cross_entropy_with_logits(teacher / t, p_teacher, reduction="none")
    return _masked_mean(kl, mask) * t * t


def logit_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _masked_mean((student - teacher) ** 2, mask)


def listwise_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float):
    """KL between softmaxes over each question's real candidates, averaged over questions -> [k]."""
    t = temperature
    m = mask.unsqueeze(-1)  # [Q, C, 1]
    neg = torch.finfo(student.dtype).min
    log_p_s = torch.log_softmax((student / t).masked_fill(~m, neg), dim=1)  # [Q, C, k]
    log_p_t = torch.log_softmax((teacher / t).masked_fill(~m, neg), dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).masked_fill(~m, 0.0).sum(1)  # [Q, k]
    has = mask.any(1).to(kl.dtype).unsqueeze(-1)  # [Q, 1]
    return (kl * has).sum(0) / has.sum().clamp(min=1.0) * t * t


def margin_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each question's candidate pairs of ``((s_i - s_j) - (t_i - t_j))**2``, over questions -> [k]."""
    m = mask.unsqueeze(-1)  # [Q, C, 1]
    d = (student - teacher).masked_fill(~m, 0.0)  # [Q, C, k]
    n = m.sum(1).to(d.dtype)  # [Q, 1]: real candidates per question
    centred = (d - d.sum(1, keepdim=True) / n.clamp(min=1.0).unsqueeze(1)).masked_fill(~m, 0.0)
    per_question = 2 * (centred**2).sum(1) / n.clamp(min=1.0)  # [Q, k]: mean over ordered pairs (i, j)
    used = (n >= 2).to(d.dtype)  # [Q, 1]: a single candidate has no margin
    return (per_question * used).sum(0) / used.sum().clamp(min=1.0)


def listwise_ce(student: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against the correct candidates of each question that has one -> [k]."""
    m = mask.unsqueeze(-1)  # [Q, C, 1]
    log_p = torch.log_softmax(student.masked_fill(~m, torch.finfo(student.dtype).min), dim=1)  # [Q, C, k]
    target = (labels * mask).to(student.dtype)  # [Q, C]
    has = target.sum(1, keepdim=True)  # [Q, 1]: correct candidates per question
    target = (target / has.clamp(min=1.0)).unsqueeze(-1)  # [Q, C, 1]
    ce = -(target * log_p.masked_fill(~m, 0.0)).sum(1)  # [Q, k]
    used = (has > 0).to(student.dtype)  # [Q, 1]
    return (ce * used).sum(0) / used.sum().clamp(min=1.0)


class MultiHeadDistillLoss(nn.Module):
    """``alpha * label loss + (1 - alpha) * distillation`` per head; returns ``(total, per_head [k])``."""

    def __init__(
        self, kind: str = "kl", temperature: float = 1.0, alpha: float = 0.0, label_loss: str = "bce"
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"distillation kind must be one of {KINDS}, got {kind!r}")
        if label_loss not in LABEL_LOSSES:
            raise ValueError(f"label loss must be one of {LABEL_LOSSES}, got {label_loss!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha (weight of the hard-label loss) must be in [0, 1], got {alpha}")
        self.kind, self.temperature, self.alpha, self.label_loss = kind, temperature, alpha, label_loss

    def forward(self, student, teacher, labels, mask) -> tuple[torch.Tensor, torch.Tensor]:
        _check(student, teacher, labels, mask, need_teacher=self.alpha < 1.0)
        student = student.float()
        per_head = torch.zeros(student.shape[-1], device=student.device)
        if self.alpha > 0 and self.label_loss == "listwise":
            per_head = per_head + self.alpha * listwise_ce(student, labels, mask)
        elif self.alpha > 0:
            target = labels.float().unsqueeze(-1).expand_as(student)
            bce = F.binary_cross_entropy_with_logits(student, target, reduction="none")
            per_head = per_head + self.alpha * _masked_mean(bce, mask)
        if self.alpha < 1:
            teacher = teacher.float().masked_fill(~mask.unsqueeze(-1), 0.0)  # padding may hold NaN
            if self.kind == "kl":
                kd = pointwise_kl(student, teacher, mask, self.temperature)
            elif self.kind == "mse":
                kd = logit_mse(student, teacher, mask)
            elif self.kind == "margin_mse":
                kd = margin_mse(student, teacher, mask)
            else:
                kd = listwise_kl(student, teacher, mask, self.temperature)
            per_head = per_head + (1 - self.alpha) * kd
        return per_head.sum(), per_head
