"""as2.fuse: the teacher-ensemble baseline is ranx fusion of the teachers' runs."""

from __future__ import annotations

import pytest

from as2 import fuse
from as2.data import DataError
from as2.runs import read_run, write_run


def test_zmuv_sum_weighs_scales_equally(tmp_path):
    # run a scores on a logit scale, run b on a cosine scale; per-question z-scores make them comparable:
    # q1: a = (-1, 0, 1) after z-scoring of (0, 10, 20); b = (1, 0, -1) of (0.3, 0.2, 0.1)... sums tie at 0,
    # so c1 (a: 1.2247, b: -1.2247) and c3 sum to 0 too; use asymmetric b to get a strict order instead.
    write_run(tmp_path / "a.trec", {"q1": {"c1": 0.0, "c2": 10.0, "c3": 20.0}}, "a")
    write_run(tmp_path / "b.trec", {"q1": {"c1": 0.9, "c2": 0.8, "c3": 0.1}}, "b")
    summary = fuse.main(
        [
            "--run",
            str(tmp_path / "a.trec"),
            str(tmp_path / "b.trec"),
            "--name",
            "ens",
            "--out",
            str(tmp_path / "ens.trec"),
        ]
    )
    assert summary["members"] == ["a", "b"]
    name, run = read_run(tmp_path / "ens.trec")
    assert name == "ens"
    # z(a) = (-1.2247, 0, 1.2247); z(b) of (0.9, 0.8, 0.1): mean 0.6, std 0.3559 -> (0.8429, 0.5620, -1.4049)
    assert run["q1"]["c1"] == pytest.approx(-1.2247 + 0.8429, abs=1e-3)
    assert run["q1"]["c2"] == pytest.approx(0.5620, abs=1e-3)
    assert run["q1"]["c3"] == pytest.approx(1.2247 - 1.4049, abs=1e-3)
    assert max(run["q1"], key=run["q1"].get) == "c2"  # neither member's top candidate wins alone


def test_runs_over_different_pairs_are_refused(tmp_path):
    write_run(tmp_path / "a.trec", {"q1": {"c1": 1.0, "c2": 0.0}}, "a")
    write_run(tmp_path / "b.trec", {"q1": {"c1": 1.0}}, "b")
    with pytest.raises(DataError, match="do not score the same"):
        fuse.main(
            [
                "--run",
                str(tmp_path / "a.trec"),
                "--run",
                str(tmp_path / "b.trec"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
    with pytest.raises(ValueError, match="at least two"):
        fuse.main(["--run", str(tmp_path / "a.trec"), "--out", str(tmp_path / "x")])
