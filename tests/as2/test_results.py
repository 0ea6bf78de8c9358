"""as2.results: the results page from the stages' JSON: table, marks against the ensemble, targets, plot."""

from __future__ import annotations

import json

import pytest

from as2 import results


def _sig(p: dict[tuple[str, str], float], names: list[str]) -> dict:
    return {
        n: {"comparisons": {o: {"map": p.get((n, o), p.get((o, n), 1.0))} for o in names if o != n}}
        for n in names
    }


def _inputs(tmp_path):
    names = ["a_ce", "b_bi", "ensemble", "cerberus.a_ce", "cerberus.b_bi", "cerberus", "kd_a_ce", "twin"]
    maps = [0.60, 0.70, 0.72, 0.71, 0.70, 0.78, 0.69, 0.66]
    report = {
        "protocol": "clean",
        "ties": "pessimistic",
        "questions": 237,
        "stat_test": "fisher",
        "runs": {
            n: {"precision@1": m - 0.1, "map": m, "mrr": m + 0.01} for n, m in zip(names, maps, strict=True)
        },
        "significance": _sig({("cerberus", "ensemble"): 0.01, ("a_ce", "ensemble"): 0.001}, names),
    }
    cost = {"params": 22.7e6, "ms_per_pair_b1_fp32": 10.0, "ms_per_pair_b32_fp32": 8.0,
            "ms_per_pair_b32_bf16": 4.0, "pairs_per_s_b32_bf16": 250.0}  # fmt: skip
    systems = {"a_ce": cost, "b_bi": cost, "cerberus": {**cost, "params": 21.0e6}, "kd_a_ce": cost}
    systems["ensemble"] = {k: 2 * v for k, v in cost.items()}
    machine = {"device": "CPU Test Xeon", "cpu": "Test Xeon", "cores": 2, "memory_gib": 24.0, "os": "Linux 6",
               "cpu_bf16_instructions": ["amx_bf16"], "bf16_native": True, "auto_precision": "bf16",
               "threads": 2}  # fmt: skip
    bench = {"pairs": 64, "threads": 2, "systems": systems, "hardware": machine}
    twin_bench = {"per_query": {"queries": 200, "candidates_per_query": 10.0, "twin_ms_per_query": 2.0,
                                "cross_encoder_ms_per_query": 60.0, "speedup": 30.0}}  # fmt: skip
    selection = {
        "metric": "map",
        "members": ["a_ce", "b_bi"],
        "weights": {"a_ce": 0.7, "b_bi": 0.3},
        "map": 0.75,
        "candidates": {"a_ce": "x", "b_bi": "y"},
    }
    paths = {}
    for key, obj in {
        "report": report,
        "bench": bench,
        "twin_bench": twin_bench,
        "selection": selection,
    }.items():
        paths[key] = tmp_path / f"in_{key}.json"
        paths[key].write_text(json.dumps(obj))
    return paths


def test_page_table_marks_targets_and_plot(tmp_path, unpad):
    p = _inputs(tmp_path)
    out = tmp_path / "docs"
    argv = ["--report", str(p["report"]), "--bench", str(p["bench"]), "--twin_bench", str(p["twin_bench"]),
            "--selection", str(p["selection"]), "--twin_teacher", "a_ce", "--out", str(out)]  # fmt: skip
    result = results.main(argv)
    page = unpad((out / "RESULTS.md").read_text())
    assert "| `cerberus` | CERBERUS student | 0.680 | 0.780▲ | 0.790 | 21.0 |" in page
    assert "| `a_ce` | teacher, ensemble member | 0.500 | 0.600▼ |" in page
    assert "| `cerberus.a_ce` | CERBERUS head | 0.610 | 0.710 |" in page  # no cost of its own
    assert (out / "accuracy_latency.png").stat().st_size > 1000
    # the machine of the bench record, not the one regenerating the page
    assert "Machine (where the costs were measured): CPU Test Xeon, 2 cores, 24 GiB RAM" in page
    assert "bf16 instructions: amx_bf16 (native: bf16 timed); precision `auto` resolves to bf16" in page
    assert "dev questions): `a_ce` (0.70), `b_bi` (0.30) (dev map of the fused members 0.750)" in page
    for key in ("report", "bench", "twin_bench", "selection"):
        assert json.loads((out / "results" / f"{key}.json").read_text()) == json.loads(p[key].read_text())
    met = {t["target"]: t["met"] for t in result["targets"]}
    assert met["student MAP >= ensemble MAP"] is True
    assert met["student MAP > every single-teacher KD student"] is True
    assert met["student >= 5x faster than the ensemble (ms_per_pair_b32_bf16)"] is False  # 2x
    assert met["student params <= 1/3 of the ensemble's"] is False  # 21 / 45.4
    assert met["twin MAP >= 90% of its teacher's (a_ce)"] is True  # 0.66 / 0.60
    assert met["twin >= 20x cheaper per query than a cross-encoder"] is True

    # peers (make peers' reports) become rows and a section; their copies regenerate the page too
    for split, m in (("dev", 0.74), ("test", 0.75), ("selqa_dev", 0.8)):
        (tmp_path / "peers" / split).mkdir(parents=True)
        peer = {"precision@1": m - 0.1, "map": m, "mrr": m + 0.01}
        peer_report = {
            "runs": {"minilm_peer": peer, "a_peer": peer}
        }  # a_peer: the library's fine-tune of a_ce's encoder
        (tmp_path / "peers" / split / "report.json").write_text(json.dumps(peer_report))
    results.main([*argv, "--peers", str(tmp_path / "peers")])
    page = unpad((out / "RESULTS.md").read_text())
    assert (
        "| `minilm_peer` | peer: sentence-transformers CrossEncoder, library defaults | 0.650 | 0.750 |"
        in page
    )
    assert "| `minilm_peer` | 0.740 | 0.750 | 0.800 |" in page and "--peers docs/results/peers" in page
    assert (
        "| a_ce MAP >= its peer a_peer (same encoder) | 0.600 vs 0.750 | no |" in page
    )  # the peer wins: said

    # dev and out-of-domain dev MAP of the bench's own systems become columns beside test
    for split, m in (("dev", 0.61), ("selqa_dev", 0.52)):
        (tmp_path / "splits" / split).mkdir(parents=True)
        runs = {
            "cerberus": {"map": m},
            "ensemble": {"map": m + 0.1},
            "a_ce": {"map": m + 0.12},
            "b_bi": {"map": m},
        }
        (tmp_path / "splits" / split / "report.json").write_text(json.dumps({"runs": runs}))
    result = results.main([*argv, "--peers", str(tmp_path / "peers"), "--splits", str(tmp_path / "splits")])
    page = unpad((out / "RESULTS.md").read_text())
    # the ensemble against its members on the dev split it was chosen on: a member above it is said
    assert "| ensemble MAP > its best member's on WikiQA dev | 0.710 vs a_ce 0.730 | no |" in page
    assert {t["target"]: t["met"] for t in result["targets"]}[
        "ensemble MAP > its best member's on WikiQA dev"
    ] is False
    assert "| P@1 | MAP | MRR | MAP WikiQA dev | MAP SelQA dev (out of domain) | params (M) |" in page
    assert "| `cerberus` | CERBERUS student | 0.680 | 0.780▲ | 0.790 | 0.610 | 0.520 | 21.0 |" in page
    assert "| 0.650 | 0.750 | 0.760 | 0.740 | 0.800 |" in page  # the peer's dev and SelQA dev from make peers
    assert "--splits docs/results/splits" in page
    assert (out / "results" / "splits" / "selqa_dev" / "report.json").is_file()

    # make seeds' reports: a seed-spread section, copied beside the page
    (tmp_path / "seeds" / "test").mkdir(parents=True)
    seed_runs = {"cerberus-seed42": {"map": 0.78}, "cerberus-seed43": {"map": 0.76}}
    (tmp_path / "seeds" / "test" / "report.json").write_text(json.dumps({"runs": seed_runs}))
    # as2.agreement's JSON: members against heads, copied beside the page
    (tmp_path / "agreement").mkdir()
    pairs = [{"a": "a_ce", "b": "b_bi", "spearman": 0.5, "questions": 9},
             {"a": "cerberus.a_ce", "b": "cerberus.b_bi", "spearman": 0.8, "questions": 9},
             {"a": "a_ce", "b": "cerberus.a_ce", "spearman": 0.6, "questions": 9}]  # fmt: skip
    (tmp_path / "agreement" / "test.json").write_text(json.dumps({"runs": {}, "pairs": pairs}))
    results.main([*argv, "--seeds", str(tmp_path / "seeds"), "--agreement", str(tmp_path / "agreement")])
    page = unpad((out / "RESULTS.md").read_text())
    assert "| pair | WikiQA test: members | WikiQA test: heads |" in page
    assert (
        "| `a_ce` · `b_bi` | 0.500 | 0.800 |" in page and "| `a_ce` head · its teacher |  | 0.600 |" in page
    )
    assert "| `b_bi` head · its teacher |  |  |" in page  # not measured: blank, not made up
    assert (
        "--agreement docs/results/agreement" in page
        and (out / "results" / "agreement" / "test.json").is_file()
    )
    assert "## Seed spread" in page and "| `cerberus` | 42, 43 | 0.770 ± 0.014 (0.760-0.780) |" in page
    assert (
        "--seeds docs/results/seeds" in page
        and (out / "results" / "seeds" / "test" / "report.json").is_file()
    )

    # a hand-written discussion survives regeneration from the copied JSON
    (out / "RESULTS.md").write_text(page + "\n## Discussion\n\nHand-written.\n")
    copies = out / "results"
    results.main(["--report", str(copies / "report.json"), "--bench", str(copies / "bench.json"),
                  "--selection", str(copies / "selection.json"), "--peers", str(copies / "peers"),
                  "--out", str(out)])  # fmt: skip
    again = unpad((out / "RESULTS.md").read_text())
    assert "| `minilm_peer` | 0.740 | 0.750 | 0.800 |" in again
    assert again.count("## Discussion") == 1 and again.rstrip().endswith("Hand-written.")


def test_missing_input_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        results.main(["--report", str(tmp_path / "nope.json"), "--bench", "b.json", "--out", str(tmp_path)])


def test_precision_section_rows_map_and_change_against_fp32(unpad):
    from as2.results.sections import precision_section

    report = {
        "runs": {"cerberus": {"map": 0.781}, "cerberus_fp32": {"map": 0.780}, "cerberus_int8": {"map": 0.776}}
    }
    costs = {"ms_per_pair_b1_fp32": 9.0, "ms_per_pair_b32_fp32": 6.0, "ms_per_pair_b1_bf16": 5.0,
             "ms_per_pair_b32_bf16": 2.2, "ms_per_pair_b1_int8": 4.0, "ms_per_pair_b32_int8": 1.8,
             "gflops_b32_fp32": 50.0, "gflops_b32_bf16": 136.4}  # fmt: skip
    bench = {"systems": {"cerberus": costs}, "hardware": {"auto_precision": "bf16"},
             "matmul_peak_gflops": {"fp32": 200.0, "bf16": 900.0}}  # fmt: skip
    lines = unpad("\n".join(precision_section("cerberus", report, bench))).splitlines()
    assert "| fp32 | 9.00 | 6.00 | 50 (25% of 200) | 0.780 | +0.00 |" in lines
    assert "| bf16 | 5.00 | 2.20 | 136 (15% of 900) | 0.781 | +0.10 |" in lines  # auto chose bf16: own run
    assert "| int8 | 4.00 | 1.80 |  | 0.776 | -0.40 |" in lines  # quantized kernels: FLOPs not counted
    # a machine without native bf16: no bf16 timing, no bf16 row
    del costs["ms_per_pair_b32_bf16"]
    bench["hardware"]["auto_precision"] = "fp32"
    lines = unpad("\n".join(precision_section("cerberus", report, bench))).splitlines()
    assert not any(line.startswith("| bf16") for line in lines)
    assert "| fp32 | 9.00 | 6.00 | 50 (25% of 200) | 0.781 | +0.00 |" in lines  # auto chose fp32: its own run
    assert precision_section("cerberus", report, {"systems": {}}) == []


def test_adaptive_section_lists_each_setting(unpad):
    from as2.results.sections import adaptive_section

    result = {"order": ["b", "a"], "questions": 237, "precision": "bf16", "threads": 2, "repeats": 3,
              "settings": {"full": {"mean_heads": 3.0, "map": 0.78, "ms_per_pair": 3.0, "saved": 0.0, "p_vs_full": None},
                           "lead_0.1": {"mean_heads": 1.6, "map": 0.77, "ms_per_pair": 2.1, "saved": 0.3,
                                        "p_vs_full": 0.21}}}  # fmt: skip
    lines = unpad("\n".join(adaptive_section(result))).splitlines()
    assert "| full | 3.00 | 0.780 | 3.00 | 0% |" in lines
    assert "| lead_0.1 | 1.60 | 0.770 (p 0.210) | 2.10 | 30% |" in lines
    assert "(`b`, `a`)" in lines[2]
    assert adaptive_section({}) == []


def test_scaling_section_rows_and_asnq_line(unpad):
    from as2.results.sections import scaling_section

    scaling = {"index": {"unit": "docs", "ranks": {"1": {"threads": 2, "seconds": 50.0, "docs_per_s": 400.0,
                                                           "efficiency": 1.0},
                                                     "2": {"threads": 1, "seconds": 40.0, "docs_per_s": 500.0,
                                                           "efficiency": 0.625}}}}  # fmt: skip
    asnq = {"lines": 20_000_000, "questions": 57_000, "input_mib": 3000.0, "convert_seconds": 400.0,
            "lines_per_s": 50_000.0, "peak_rss_mib": 900.0, "peak_anon_mib": 400.0, "output_mib": 2500.0}  # fmt: skip
    scaling["index_rss"] = {
        "index_build_rss": {"docs": 1_000_000, "peak_rss_mib": 2600.0, "index_mib": 1465.0}
    }
    asnq["hardware"] = {"device": "CPU Test EPYC", "cores": 2, "os": "Linux 6"}
    text = unpad("\n".join(scaling_section(scaling, asnq)))
    assert "Measured on CPU Test EPYC, 2 cores, Linux 6 (the machine records of these figures)." in text
    assert (
        "over 1,000,000 synthetic sentences (`twin.bench --rss_size`): 2600 MiB, of which the index 1465"
        in text
    )
    assert "| `index` | 1 | 2 | 50.0 | 400.0 docs/s | 1.00 |" in text
    assert "| `index` | 2 | 1 | 40.0 | 500.0 docs/s | 0.62 |" in text
    assert (
        "20,000,000 lines" in text and "peak RSS of the converter 900 MiB, of which heap at most 400" in text
    )
    assert scaling_section({}, {}) == []


def test_seed_section_mean_spread_and_each_seed(unpad):
    from as2.results.sections import seed_section

    seeds = {
        "test": {"runs": {"cerberus-seed42": {"map": 0.78}, "cerberus-seed43": {"map": 0.80},
                          "cerberus-seed44": {"map": 0.79}, "kd_avg-seed42": {"map": 0.77},
                          "kd_avg-seed43": {"map": 0.75}, "cerberus-seed42.mpnet_ce": {"map": 0.5}}},
        "dev": {"runs": {"cerberus-seed42": {"map": 0.70}, "cerberus-seed43": {"map": 0.72}}},
    }  # fmt: skip
    lines = unpad("\n".join(seed_section(seeds))).splitlines()
    assert "| system | seeds | MAP WikiQA dev | MAP WikiQA test |" in lines
    assert "| `cerberus` | 42, 43, 44 | 0.710 ± 0.014 (0.700-0.720) | 0.790 ± 0.010 (0.780-0.800) |" in lines
    assert "| `kd_avg` | 42, 43 |  | 0.760 ± 0.014 (0.750-0.770) |" in lines  # no dev runs: blank
    assert "| `cerberus` | 44 |  | 0.790 |" in lines  # each seed's own MAP, blank where not evaluated
    assert not any("mpnet_ce" in line for line in lines)  # a head's run is not a seed of a system
    assert seed_section({}) == [] and seed_section({"test": {"runs": {"cerberus": {"map": 0.7}}}}) == []


def test_teacher_against_its_peer_over_seeds():
    from as2.results.sections import seed_maps
    from as2.results.targets import targets

    rows = [{"system": "mpnet_ce", "map": 0.825}, {"system": "mpnet_peer", "map": 0.774}]
    seeds = {
        "test": {"runs": {"mpnet_ce-seed42": {"map": 0.825}, "mpnet_ce-seed43": {"map": 0.815},
                          "mpnet_peer-seed42": {"map": 0.774}, "mpnet_peer-seed43": {"map": 0.848},
                          "cerberus-seed42": {"map": 0.79}, "cerberus-seed43": {"map": 0.79}}},
        "dev": {"runs": {"mpnet_ce-seed42": {"map": 0.9}, "mpnet_ce-seed43": {"map": 0.9}}},
    }  # fmt: skip
    kw = {"student": "cerberus", "ensemble": "ensemble", "twin": "twin", "twin_teacher": "mpnet_ce"}
    met = {t: (m, ok) for t, m, ok in targets(rows, {}, **kw, seed_maps=seed_maps(seeds))}
    # one seed each, and the means over two seeds each: above the peer; over a third peer seed: below it
    assert met["mpnet_ce MAP >= its peer mpnet_peer (same encoder)"] == ("0.825 vs 0.774", True)
    assert met["mpnet_ce mean MAP >= mpnet_peer's over seeds (42, 43 / 42, 43)"] == (
        "0.820 ± 0.007 vs 0.811 ± 0.052", True)  # fmt: skip
    seeds["test"]["runs"]["mpnet_peer-seed44"] = {"map": 0.86}
    met = {t: (m, ok) for t, m, ok in targets(rows, {}, **kw, seed_maps=seed_maps(seeds))}
    assert met["mpnet_ce mean MAP >= mpnet_peer's over seeds (42, 43 / 42, 43, 44)"] == (
        "0.820 ± 0.007 vs 0.827 ± 0.047", False)  # fmt: skip
    # a single seed of either side, or none: no seed row
    del seeds["test"]["runs"]["mpnet_ce-seed43"]
    assert not any("over seeds" in t for t, _, _ in targets(rows, {}, **kw, seed_maps=seed_maps(seeds)))
    assert not any("over seeds" in t for t, _, _ in targets(rows, {}, **kw))


def test_a_selection_on_several_dev_splits_names_them_and_each_splits_metric():
    from as2.results.table import members_text, per_split_text, selection_splits

    one = {"data": ["runs/wikiqa/data/dev"], "members": ["a", "b"], "weights": {"a": 0.7, "b": 0.3}}
    assert selection_splits(one) == "" and per_split_text(one) == ""
    assert selection_splits({"data": "runs/dev", "members": []}) == ""  # written before splits were lists
    both = {
        **one,
        "data": ["runs/wikiqa/data/dev", "runs/wikiqa/data/selqa_dev/"],
        "per_split": [0.81, 0.845],
    }
    assert selection_splits(both) == ", the mean over the splits `dev`, `selqa_dev`"
    assert per_split_text(both) == "; `dev` 0.810, `selqa_dev` 0.845"
    assert members_text(both) == "`a` (0.70), `b` (0.30)"


def test_training_times_and_the_bench_budget_from_summaries_and_wall_time(tmp_path, unpad):
    p = _inputs(tmp_path)
    out, wq = tmp_path / "docs", tmp_path / "wq"
    cpu = {"cpu": "Test EPYC"}
    summaries = {"teachers/a_ce": {"seconds": 300.0, "global_step": 575, "resumed_from_step": 0, "precision": "bf16"},
                 "students/cerberus": {"seconds": 1200.0, "global_step": 2118, "resumed_from_step": 1000,
                                       "precision": "bf16"},
                 "twin": {"seconds": 600.0, "global_step": 500, "precision": "bf16"},
                 "peers/a_peer": {"seconds": 900.0, "steps": 637, "precision": "bf16"}}  # fmt: skip
    for name, s in summaries.items():
        (wq / name).mkdir(parents=True)
        (wq / name / "summary.json").write_text(json.dumps({**s, "hardware": cpu}))
    (wq / "exp" / "x").mkdir(parents=True)  # a model of no bench stage: not listed
    (wq / "exp" / "x" / "summary.json").write_text(json.dumps({"seconds": 1.0}))
    wall = tmp_path / "wall.json"
    wall.write_text(json.dumps({"seconds": 7500, "clean": True}))
    argv = ["--report", str(p["report"]), "--bench", str(p["bench"]), "--out", str(out)]
    result = results.main([*argv, "--training", str(wq), "--wall", str(wall)])
    page = unpad((out / "RESULTS.md").read_text())
    assert "`make bench` took 125 min of wall time on the bench machine, a clean run" in page
    assert "trained on Test EPYC" in page
    assert "| `teachers/a_ce` | bf16 | 575 |  | 300 |" in page
    assert "| `students/cerberus` | bf16 | 2118 | 1000 | 1200 |" in page  # resumed: only its own steps timed
    assert "| `peers/a_peer` | bf16 | 637 |  | 900 |" in page and "| all students |  |  |  | 1200 |" in page
    assert "exp/x" not in page
    met = {t["target"]: (t["measured"], t["met"]) for t in result["targets"]}
    assert met["clean make bench <= 120 min"] == ("125 min (clean run)", False)

    # a resumed run never meets the budget, however short; the page regenerates from its copies
    wall.write_text(json.dumps({"seconds": 600, "clean": False}))
    copies = out / "results"
    result = results.main([*argv, "--training", str(copies / "training.json"), "--wall", str(wall)])
    met = {t["target"]: (t["measured"], t["met"]) for t in result["targets"]}
    assert met["clean make bench <= 120 min"] == ("10 min (resumed run, not a clean one)", False)
    page = unpad((out / "RESULTS.md").read_text())
    assert "| `students/cerberus` | bf16 | 2118 | 1000 | 1200 |" in page and "a resumed run" in page
    assert "--training docs/results/training.json --wall docs/results/wall.json" in page
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        results.main([*argv, "--training", str(tmp_path / "empty")])
