"""as2.bench_ranks: the same command on 1 and 2 ranks of this machine, timed, with the threads split."""

from __future__ import annotations

import json

import pytest

from as2 import bench_ranks


def test_each_rank_count_runs_once_with_its_share_of_the_cores(tmp_path):
    """Bugs caught: a run that resumes the previous one (outputs not cleaned), ranks that all get every core
    (two torch processes of 2 threads each on 2 cores ran 5-10x slower), an efficiency of the wrong sign."""
    script = tmp_path / "work.py"
    script.write_text(
        "import os, sys, json, pathlib\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]); out.mkdir(exist_ok=True)\n"
        "done = out / f\"rank{os.environ['RANK']}-of-{os.environ['WORLD_SIZE']}.json\"\n"
        "assert not done.exists(), 'not cleaned'\n"
        "done.write_text(json.dumps({'threads': os.environ['OMP_NUM_THREADS']}))\n"
    )
    result = bench_ranks.main(["--name", "toy", "--script", str(script), "--items", "100", "--unit", "docs",
                               "--clean", str(tmp_path / "o"), "--out", str(tmp_path / "r"), "--",
                               "--out", str(tmp_path / "o")])  # fmt: skip
    cores = result["cores"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["rank0-of-2.json", "rank1-of-2.json"]
    assert json.loads((tmp_path / "o" / "rank1-of-2.json").read_text())["threads"] == str(max(1, cores // 2))
    one, two = result["ranks"][1], result["ranks"][2]
    assert one["efficiency"] == 1.0 and two["efficiency"] == pytest.approx(
        one["seconds"] / two["seconds"] / 2
    )
    assert result["ranks"][2]["docs_per_s"] == 100 / result["ranks"][2]["seconds"]
    assert json.loads((tmp_path / "r" / "toy.json").read_text())["name"] == "toy"
