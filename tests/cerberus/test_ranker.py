"""cerberus.Ranker: scores equal the student's own, ranking best first, the README's example runs as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from cerberus import Ranker
from cerberus.modeling import CerberusStudent, StudentConfig
from cerberus.scoring import score_pairs

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = ["the river is long .", "he was born in paris .", "paris is the capital of france ."]


@pytest.fixture(scope="module")
def student(tiny_bert, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ranker") / "student"
    model = CerberusStudent.from_encoder(str(tiny_bert), StudentConfig(head_names=["a", "b"], body_layers=1))
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    return out


def test_rank_sorts_by_the_students_own_scores(student):
    """Bugs caught: scores out of input order after the length sort, a ranking not best first, heads mixed up."""
    ranker = Ranker(student, precision="fp32")
    question = "where was he born ?"
    expect = score_pairs(
        CerberusStudent.from_pretrained(student), AutoTokenizer.from_pretrained(str(student)),
        [question] * 3, CANDIDATES, max_length=128,
    )  # fmt: skip
    np.testing.assert_allclose(ranker.score([(question, c) for c in CANDIDATES]), expect[:, -1], rtol=1e-6)
    hits = ranker.rank(question, CANDIDATES)
    assert [h["corpus_id"] for h in hits] == list(np.argsort(-expect[:, -1], kind="stable"))
    assert [h["text"] for h in hits] == [CANDIDATES[h["corpus_id"]] for h in hits]
    for h in hits:
        assert h["heads"] == pytest.approx({"a": expect[h["corpus_id"], 0], "b": expect[h["corpus_id"], 1]})
    assert len(ranker.rank(question, CANDIDATES, top_k=2, return_documents=False)) == 2
    assert "text" not in ranker.rank(question, CANDIDATES, return_documents=False)[0]


def test_int8_quantizes_the_linear_layers_but_not_the_logit(student):
    """Bugs caught: int8 that quantizes nothing (no speed-up) or the one-logit layer (ties), or that changes
    the model the caller holds."""
    import torch

    fp32 = Ranker(student, precision="fp32")
    int8 = Ranker(student, precision="int8")
    assert int8.precision == "int8" and int8.dtype is torch.float32
    quantized = [
        n for n, m in int8.model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
    ]
    assert quantized and not any(n.endswith(".out") for n in quantized)
    assert all(type(h.classifier.out) is torch.nn.Linear for h in int8.model.heads)
    assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in fp32.model.modules())
    pairs = [("where was he born ?", c) for c in CANDIDATES]
    a, b = fp32.score(pairs), int8.score(pairs)
    assert np.isfinite(b).all() and np.abs(a - b).max() < 0.05  # prob_mean scores in [0, 1]


def test_bad_input_is_one_clear_error(student, tmp_path):
    ranker = Ranker(student, precision="fp32")
    with pytest.raises(ValueError, match="non-empty list of candidate"):
        ranker.rank("where ?", [])
    with pytest.raises(ValueError, match="question is empty"):
        ranker.rank(" ", CANDIDATES)
    with pytest.raises(ValueError, match=r"pair 1: expected \(question, candidate\)"):
        ranker.score([("q", "c"), ("q",)])
    with pytest.raises(FileNotFoundError, match="not a saved student"):
        Ranker(tmp_path / "missing")
    with pytest.raises(ValueError, match="precision must be one of"):
        Ranker(student, precision="int4")


def test_the_readme_example_runs_as_written(student):
    """Bug caught: a README example that no longer runs (renamed API, changed keys)."""
    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(from cerberus import Ranker.*?)```", readme, re.S).group(1)
    assert code.count('"runs/demo/student/model"') == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace('"runs/demo/student/model"', repr(str(student))), {})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(re.match(r"-?\d\.\d{3} .+ \{'a': .*'b': .*\}$", line) for line in lines)
