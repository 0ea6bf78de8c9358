"""twin.bench on a tiny untrained twin: the per-query cost is timed on the split's questions when one is given
(the synthetic questions only without one), and every section of bench.json is filled."""

import json

from twin import bench


def test_per_query_cost_on_the_split_or_synthetic(tiny_bert, tiny_split, tmp_path):
    args = ["--encoder", str(tiny_bert), "--corpus_size", "300", "--queries", "4", "--threads", "1",
            "--max_length", "32"]  # fmt: skip
    result = bench.main([*args, "--out", str(tmp_path / "split"), "--data", str(tiny_split)])
    assert "per_query_synthetic" not in result  # the split's questions are timed: no synthetic pass
    pq = result["per_query"]
    assert pq["queries"] == 4 and pq["twin_ms_per_query"] > 0 and pq["speedup"] > 0
    assert result["index_build"]["docs_per_s"] > 0 and set(result["recall@10"]) >= {"Flat", "HNSW32"}
    assert json.loads((tmp_path / "split" / "bench.json").read_text())["per_query"] == pq

    alone = bench.main([*args, "--out", str(tmp_path / "alone")])
    assert "per_query" not in alone and alone["per_query_synthetic"]["queries"] == 4
