"""as2.agreement: how alike two runs rank, question by question."""

from __future__ import annotations

import json
import math

import pytest

from as2 import agreement
from as2.data import DataError
from as2.runs import write_run

A = {"q1": {"c1": 3.0, "c2": 2.0, "c3": 1.0, "c4": 0.0}, "q2": {"c1": 0.1, "c2": 0.2, "c3": 0.3}}


def test_same_order_is_1_and_reversed_is_minus_1_on_any_scale():
    same = {q: {c: 10 * s - 7 for c, s in cands.items()} for q, cands in A.items()}  # another scale
    reversed_ = {q: {c: -s for c, s in cands.items()} for q, cands in A.items()}
    assert agreement.agreement(A, same) == (pytest.approx(1.0), 2)
    assert agreement.agreement(A, reversed_) == (pytest.approx(-1.0), 2)


def test_mean_over_questions_on_shared_candidates_skipping_undefined_ones():
    b = {
        "q1": {"c1": 3.0, "c2": 1.0, "c3": 2.0, "c4": 0.0, "c9": 5.0},  # c9 not in A: ignored; rho 0.8
        "q2": {"c1": 1.0, "c2": 1.0, "c3": 1.0},  # all alike: undefined, skipped
        "q3": {"c1": 1.0, "c2": 2.0, "c3": 3.0},  # not in A
    }
    rho, n = agreement.agreement(A, b)
    assert n == 1 and rho == pytest.approx(0.8)
    two = {"q1": {"c1": 1.0, "c2": 2.0}}  # fewer than 3 shared candidates
    rho, n = agreement.agreement(A, two)
    assert n == 0 and math.isnan(rho)


def test_cli_prints_the_matrix_and_writes_json(tmp_path, capsys):
    write_run(tmp_path / "a.trec", A, "a")
    write_run(tmp_path / "b.trec", {q: {c: -s for c, s in cands.items()} for q, cands in A.items()}, "b")
    write_run(tmp_path / "c.trec", A, "c")
    out = tmp_path / "new" / "agree.json"  # its folder made on the way
    runs = [str(tmp_path / f"{x}.trec") for x in "abc"]
    result = agreement.main(["--run", *runs, "--out", str(out)])
    assert json.loads(out.read_text()) == result
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    assert pairs["a", "b"]["spearman"] == pytest.approx(-1.0) and pairs["a", "c"]["spearman"] == 1.0
    assert pairs["b", "c"]["questions"] == 2
    table = capsys.readouterr().out
    assert "| a     | 1      | -1.000 | 1.000  |" in table, table
    with pytest.raises(DataError, match="appears twice"):
        agreement.main(["--run", runs[0], runs[0]])
    with pytest.raises(ValueError, match="at least two"):
        agreement.main(["--run", runs[0]])
