"""cerberus.losses on hand-made tensors: zeros, hand-computed values, masking, mixing and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from cerberus.losses import MultiHeadDistillLoss, listwise_kl, logit_mse, pointwise_kl

KINDS = ["kl", "mse", "listwise"]


def batch(seed: int = 0, q: int = 2, c: int = 4, k: int = 3):
    """Random student/teacher logits [Q, C, k], labels and a mask whose last question has 2 pads."""
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(q, c, k, generator=g)
    teacher = torch.randn(q, c, k, generator=g)
    labels = torch.zeros(q, c, dtype=torch.long)
    labels[:, 0] = 1
    mask = torch.ones(q, c, dtype=torch.bool)
    mask[-1, -2:] = False
    return student, teacher, labels, mask


@pytest.mark.parametrize("kind", KINDS)
def test_zero_when_the_student_is_the_teacher_and_positive_otherwise(kind):
    student, teacher, labels, mask = batch()
    loss = MultiHeadDistillLoss(kind, temperature=2.0)
    total, per_head = loss(teacher.clone(), teacher, labels, mask)
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(per_head, torch.zeros(3), atol=1e-6)
    total, per_head = loss(student, teacher, labels, mask)
    assert total.item() > 1e-3 and (per_head > 0).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_padding_never_counts(kind, alpha):
    student, teacher, labels, mask = batch()
    loss = MultiHeadDistillLoss(kind, temperature=2.0, alpha=alpha)
    _, before = loss(student, teacher, labels, mask)
    pad = ~mask
    s2, t2, y2 = student.clone(), teacher.clone(), labels.clone()
    s2[pad] = 50.0
    t2[pad] = float("nan")  # a missing teacher score at a padded slot is allowed
    y2[pad] = 1
    _, after = loss(s2, t2, y2, mask)
    assert torch.isfinite(after).all()
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


def test_pointwise_kl_by_hand_at_temperature_2():
    s, t, temp = 1.0, 3.0, 2.0
    p = 1 / (1 + math.exp(-t / temp))  # teacher: sigmoid(3 / 2) = 0.8176
    q = 1 / (1 + math.exp(-s / temp))  # student: sigmoid(1 / 2) = 0.6225
    want = (p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))) * temp**2  # 0.0902 * 4
    mask = torch.tensor([[True]])
    got = pointwise_kl(torch.tensor([[[s]]]), torch.tensor([[[t]]]), mask, temp)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(want, rel=1e-5)
    assert want == pytest.approx(0.3610, abs=1e-4)


def test_listwise_kl_by_hand_on_one_question():
    # teacher softmax over the 3 real candidates: [1, 2, 1] / 4; student: uniform 1/3 each; slot 4 is padding
    teacher = torch.tensor([[0.0, math.log(2.0), 0.0, 9.0]]).unsqueeze(-1)  # [1, 4, 1]
    student = torch.tensor([[5.0, 5.0, 5.0, -9.0]]).unsqueeze(-1)
    mask = torch.tensor([[True, True, True, False]])
    # KL = 1/4 ln(3/4) + 1/2 ln(3/2) + 1/4 ln(3/4) = 1/2 ln(9/8) = 0.0589
    want = 0.25 * math.log(0.75) + 0.5 * math.log(1.5) + 0.25 * math.log(0.75)
    assert want == pytest.approx(0.5 * math.log(9 / 8))
    got = listwise_kl(student, teacher, mask, temperature=1.0)
    assert got.item() == pytest.approx(want, rel=1e-5)
    # at T = 2 the softmaxes use logits / 2 and the result is scaled by 4
    p_t = torch.softmax(torch.tensor([0.0, math.log(2.0), 0.0]) / 2, 0)
    want_t2 = 4 * (p_t * (p_t / (1 / 3)).log()).sum().item()
    assert listwise_kl(student, teacher, mask, temperature=2.0).item() == pytest.approx(want_t2, rel=1e-5)


def test_listwise_kl_averages_questions_and_skips_empty_ones():
    one_t = torch.tensor([[0.0, math.log(2.0), 0.0]]).unsqueeze(-1)
    one_s = torch.zeros(1, 3, 1)
    single = listwise_kl(one_s, one_t, torch.ones(1, 3, dtype=torch.bool), 1.0).item()
    # question 2 agrees with its teacher (KL 0); question 3 is all padding and must not count
    teacher = torch.cat([one_t, torch.tensor([[[1.0], [2.0], [3.0]]]), torch.zeros(1, 3, 1)])
    student = torch.cat([one_s, torch.tensor([[[1.0], [2.0], [3.0]]]), torch.ones(1, 3, 1)])
    mask = torch.tensor([[True] * 3, [True] * 3, [False] * 3])
    assert listwise_kl(student, teacher, mask, 1.0).item() == pytest.approx(single / 2, rel=1e-5)


def test_logit_mse_by_hand():
    student = torch.tensor([[[1.0], [2.0], [7.0]]])
    teacher = torch.tensor([[[0.0], [0.0], [-7.0]]])
    mask = torch.tensor([[True, True, False]])
    assert logit_mse(student, teacher, mask).item() == pytest.approx((1 + 4) / 2)


def test_alpha_one_is_bce_on_labels_and_needs_no_teacher():
    student, _, labels, mask = batch()
    total, per_head = MultiHeadDistillLoss("kl", alpha=1.0)(student, None, labels, mask)
    target = labels.float().unsqueeze(-1).expand_as(student)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        student[mask], target[mask], reduction="none"
    )  # [real candidates, k]
    torch.testing.assert_close(per_head, bce.mean(0))
    assert total.item() == pytest.approx(per_head.sum().item())


def test_listwise_label_loss_by_hand_skips_questions_without_a_correct_candidate():
    student = torch.tensor([[[2.0], [0.0], [1.0]], [[0.5], [0.1], [9.0]], [[1.0], [2.0], [3.0]]])  # [3, 3, 1]
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0]])  # two correct; one with its third padded; none
    mask = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    total, per_head = MultiHeadDistillLoss("kl", alpha=1.0, label_loss="listwise")(
        student, None, labels, mask
    )
    lse0 = math.log(math.exp(2) + math.exp(0) + math.exp(1))
    q0 = -0.5 * ((2 - lse0) + (1 - lse0))  # uniform over the two correct candidates
    q1 = -(0.1 - math.log(math.exp(0.5) + math.exp(0.1)))  # the padded 9.0 never counts
    assert per_head.item() == pytest.approx((q0 + q1) / 2, rel=1e-6)  # question 3 has no correct candidate
    assert total.item() == pytest.approx(per_head.item())


@pytest.mark.parametrize("kind", KINDS)
def test_alpha_mixes_labels_and_distillation(kind):
    student, teacher, labels, mask = batch(seed=3)
    _, bce = MultiHeadDistillLoss(kind, temperature=2.0, alpha=1.0)(student, None, labels, mask)
    _, kd = MultiHeadDistillLoss(kind, temperature=2.0, alpha=0.0)(student, teacher, labels, mask)
    total, mixed = MultiHeadDistillLoss(kind, temperature=2.0, alpha=0.3)(student, teacher, labels, mask)
    torch.testing.assert_close(mixed, 0.3 * bce + 0.7 * kd)
    assert mixed.shape == (3,)
    assert total.item() == pytest.approx(mixed.sum().item(), rel=1e-6)


def test_heads_are_independent():
    student, teacher, labels, mask = batch()
    loss = MultiHeadDistillLoss("kl")
    _, per_head = loss(student, teacher, labels, mask)
    student2 = student.clone()
    student2[..., 1] += 1.0
    _, per_head2 = loss(student2, teacher, labels, mask)
    assert per_head2[0] == per_head[0] and per_head2[2] == per_head[2] and per_head2[1] != per_head[1]


def test_gradients_are_finite_with_nan_teacher_padding():
    student, teacher, labels, mask = batch()
    teacher[~mask] = float("nan")
    student.requires_grad_(True)
    total, _ = MultiHeadDistillLoss("kl", alpha=0.5)(student, teacher, labels, mask)
    total.backward()
    assert torch.isfinite(student.grad).all() and (student.grad[~mask] == 0).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, t, y, m: (s[..., 0], t, y, m), r"student logits must be \[Q, C, k\]"),
        (lambda s, t, y, m: (s, t, y[:, :3], m), r"labels and mask must be \[Q, C\] = \[2, 4\]"),
        (lambda s, t, y, m: (s, t, y, m[:1]), r"labels and mask must be \[Q, C\]"),
        (lambda s, t, y, m: (s, t, y, m.long()), "mask must be a bool tensor"),
        (lambda s, t, y, m: (s, t[..., :2], y, m), r"teacher logits must match student logits \(2, 4, 3\)"),
        (lambda s, t, y, m: (s, None, y, m), "teacher logits are required when alpha < 1"),
    ],
)
def test_bad_inputs_raise_with_a_message(change, message):
    student, teacher, labels, mask = batch()
    with pytest.raises(ValueError, match=message):
        MultiHeadDistillLoss("kl", alpha=0.5)(*change(student, teacher, labels, mask))


def test_nan_teacher_at_a_real_candidate_raises():
    student, teacher, labels, mask = batch()
    teacher[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf at real"):
        MultiHeadDistillLoss("mse")(student, teacher, labels, mask)
    # labels alone do not look at the teacher
    MultiHeadDistillLoss("mse", alpha=1.0)(student, teacher, labels, mask)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "cosine"}, "distillation kind must be one of"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"temperature": -1.0}, "temperature must be > 0"),
        ({"alpha": 1.5}, r"alpha .* must be in \[0, 1\]"),
        ({"alpha": -0.1}, r"alpha .* must be in \[0, 1\]"),
        ({"label_loss": "hinge"}, "label loss must be one of"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadDistillLoss(**kwargs)


def test_margin_mse_is_the_mean_over_candidate_pairs_and_ignores_the_teachers_offset():
    """Bugs caught: padding counted as candidates, pairs across questions, a loss that asks for the teacher's
    offset (a student shifted by a constant is as good as the teacher under Margin-MSE)."""
    from cerberus.losses import margin_mse

    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(3, 5, 2, generator=g), torch.randn(3, 5, 2, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    expect = []
    for q in range(2):  # the third question has one candidate: no margin, not counted
        idx = mask[q].nonzero().flatten().tolist()
        diffs = [
            ((student[q, i] - student[q, j]) - (teacher[q, i] - teacher[q, j])) ** 2 for i in idx for j in idx
        ]
        expect.append(torch.stack(diffs).mean(0))
    torch.testing.assert_close(margin_mse(student, teacher, mask), torch.stack(expect).mean(0))
    shifted = teacher + torch.tensor([3.0, -7.0])  # a per-head offset of the teacher changes nothing
    torch.testing.assert_close(margin_mse(teacher, shifted, mask), torch.zeros(2), atol=1e-5, rtol=0)
    total, per_head = MultiHeadDistillLoss("margin_mse")(
        student, teacher, torch.zeros(3, 5, dtype=torch.long), mask
    )
    torch.testing.assert_close(per_head, margin_mse(student, teacher, mask))
