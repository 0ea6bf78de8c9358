"""The sections of the results page after its table: the student at each precision, adaptive heads,
the twin's retrieval and index, the peers (the libraries' defaults), seed spread, how alike the heads
rank against their teachers, and scale-out."""

from __future__ import annotations

import re
import statistics

from as2.results.inputs import PEER_SPLITS
from as2.tables import pipe_table

SEED_RUN = re.compile(r"^(?P<system>.+)-seed(?P<seed>\d+)$")


def precision_section(student: str, report: dict, bench: dict) -> list[str]:
    """The student at each precision it was timed in: ms/pair at batch 1 and 32, test MAP, change vs fp32.

    MAP per precision comes from the runs ``<student>_fp32`` / ``<student>_int8`` (``cerberus.predict
    --precision``) and, for the precision ``auto`` chose on the bench machine, the student's own run.
    """
    costs = bench.get("systems", {}).get(student, {})
    runs = report.get("runs", {})
    auto = bench.get("hardware", {}).get("auto_precision")
    names = {p: f"{student}_{p}" for p in ("fp32", "bf16", "int8", "onnx", "onnx_int8")}
    if auto in names and student in runs:
        names[auto] = student
    rows = [p for p in names if f"ms_per_pair_b32_{p}" in costs]
    if not rows:
        return []
    base = runs.get(names["fp32"], {}).get("map")
    lines = ["## The student at each precision", "",
             f"`{student}` on the bench machine, steady state (as in the table above); MAP on WikiQA test from "
             f"its predictions at that precision (`cerberus.predict --precision`; `auto` chose {auto or 'a precision not recorded in this bench.json'}).", ""]  # fmt: skip
    head = [
        "precision",
        "ms/pair b1",
        "ms/pair b32",
        "GFLOP/s b32 (of matmul peak)",
        "MAP",
        "MAP change vs fp32 (points)",
    ]
    cells = []
    peaks = bench.get("matmul_peak_gflops", {})
    for p in rows:
        m = runs.get(names[p], {}).get("map")
        delta = f"{100 * (m - base):+.2f}" if m is not None and base is not None else ""
        gflops = costs.get(f"gflops_b32_{p}")
        achieved = ""
        if gflops:  # not counted for int8 and ONNX: their kernels are not in torch's FLOP counter
            achieved = f"{gflops:.0f}" + (
                f" ({100 * gflops / peaks[p]:.0f}% of {peaks[p]:.0f})" if p in peaks else ""
            )
        cells.append(
            [
                p,
                f"{costs.get(f'ms_per_pair_b1_{p}', float('nan')):.2f}",
                f"{costs[f'ms_per_pair_b32_{p}']:.2f}",
                achieved,
                f"{m:.3f}" if m is not None else "",
                delta,
            ]
        )
    return [*lines, pipe_table(head, cells), ""]


def adaptive_section(result: dict) -> list[str]:
    """``cerberus.adaptive``: the student computing its heads one at a time, stopping on a clear lead."""
    if not result.get("settings"):
        return []
    lines = ["## Adaptive heads", "",
             f"`cerberus.adaptive`: the body once per question, then the heads in the order of their dev MAP "
             f"({', '.join(f'`{h}`' for h in result['order'])}), stopping when the best candidate leads the "
             f"second by the threshold (combined-score units). {result['questions']} test questions, one batch "
             f"each, {result['precision']}, {result['threads']} threads, median of {result['repeats']} timed "
             "passes after a warm-up; p: ranx's paired test against the full student.", ""]  # fmt: skip
    return [*lines, adaptive_table(result["settings"]), ""]


def adaptive_table(settings: dict[str, dict]) -> str:
    """One row per setting of ``cerberus.adaptive``: heads computed, MAP (p vs full), ms/pair, time saved."""
    cells = []
    for name, r in settings.items():
        sig = f" (p {r['p_vs_full']:.3f})" if r.get("p_vs_full") is not None else ""
        cells.append([name, f"{r['mean_heads']:.2f}", f"{r['map']:.3f}{sig}", f"{r['ms_per_pair']:.2f}",
                      f"{100 * r['saved']:.0f}%"])  # fmt: skip
    return pipe_table(["setting", "heads per question", "MAP", "ms/pair", "time saved vs full"], cells)


def twin_section(twin_bench: dict, retrieval: dict) -> list[str]:
    lines = ["## Twin encoder: retrieval and index", ""]
    if retrieval:
        runs = retrieval["runs"]
        for name, m in runs.items():
            lines.append(
                f"- Open retrieval (`{name}`, every test candidate in one Flat index, top 100, questions with "
                f"no hit score 0): P@1 {m['precision@1']:.3f}, MAP {m['map']:.3f}, MRR {m['mrr']:.3f} on "
                f"{retrieval['questions']} {retrieval['protocol']} questions."
            )
    pq = twin_bench.get("per_query")
    if pq:
        lines.append(
            f"- Per query on {pq['queries']} test questions ({pq['candidates_per_query']:.1f} candidates each): "
            f"twin {pq['twin_ms_per_query']:.2f} ms (encode the question, inner products with precomputed "
            f"vectors) vs a cross-encoder of the same encoder {pq['cross_encoder_ms_per_query']:.1f} ms: "
            f"{pq['speedup']:.1f}x cheaper."
        )
    build = twin_bench.get("index_build")
    if build:
        raw = twin_bench["raw_encoder"]
        lines.append(
            f"- Index build (`Flat`, {build['docs']} synthetic "
            f"sentences): {build['docs_per_s_after_load']:.0f} docs/s vs {raw['docs_per_s']:.0f} docs/s for "
            f"the raw document tower on the same texts: overhead {100 * build['overhead']:.1f}% "
            f"({100 * build['overhead_with_load']:.1f}% counting model loading); peak RSS "
            f"{build['peak_rss_mib']:.0f} MiB (index {build['index_mib']:.0f} MiB)."
        )
    big = twin_bench.get("index_build_rss")
    if big:
        lines.append(f"- Peak RSS building `Flat` over {big['docs']} synthetic sentences: "
                     f"{big['peak_rss_mib']:.0f} MiB, of which the index {big['index_mib']:.0f} MiB.")  # fmt: skip
    recall = twin_bench.get("recall@10")
    if recall:
        cells = [[f"`{spec}`", f"{r['recall']:.3f}", f"{r['ms_per_query']:.3f}", str(r.get("params", ""))]
                 for spec, r in recall.items()]  # fmt: skip
        lines += ["", pipe_table(["index", "recall@10 vs Flat", "ms/query", "search params"], cells)]
    return [*lines, ""]


def peer_section(peers: dict[str, dict]) -> list[str]:
    if not peers:
        return []
    names = list(next(iter(peers.values()))["runs"])
    splits = [s for s in PEER_SPLITS if s in peers]
    lines = ["## Peers: the libraries' defaults", "",
             "sentence-transformers `CrossEncoder`s fine-tuned with that library's own trainer and recipe on "
             "the same WikiQA train split (`make peers`, `cerberus/peer.py`), evaluated by `as2.evaluate` "
             "(clean questions, pessimistic ties). MAP per split:", ""]  # fmt: skip
    cells = [
        [
            f"`{name}`",
            *(f"{peers[s]['runs'][name]['map']:.3f}" if name in peers[s]["runs"] else "" for s in splits),
        ]
        for name in names
    ]
    return [*lines, pipe_table(["system", *(PEER_SPLITS[s] for s in splits)], cells), ""]


def agreement_section(agreement: dict[str, dict], members: list[str], student: str) -> list[str]:
    """How alike the ensemble's members rank, beside the same pairs of the student's heads (``as2.agreement``
    JSON per split): a fused score gains where its parts rank differently."""
    if not agreement or len(members) < 2:
        return []
    splits = [s for s in PEER_SPLITS if s in agreement]
    rho = {
        split: {(p["a"], p["b"]): p["spearman"] for p in agreement[split]["pairs"]}
        | {(p["b"], p["a"]): p["spearman"] for p in agreement[split]["pairs"]}
        for split in splits
    }

    def cell(split: str, a: str, b: str) -> str:
        value = rho[split].get((a, b))
        return "" if value is None else f"{value:.3f}"

    head = {m: f"{student}.{m}" for m in members}
    rows = [
        [f"`{a}` · `{b}`", *(c for s in splits for c in (cell(s, a, b), cell(s, head[a], head[b])))]
        for i, a in enumerate(members)
        for b in members[i + 1 :]
    ]
    rows += [
        [f"`{m}` head · its teacher", *(c for s in splits for c in ("", cell(s, m, head[m])))]
        for m in members
    ]
    headers = ["pair", *(f"{PEER_SPLITS[s]}: {who}" for s in splits for who in ("members", "heads"))]
    return [
        "## Do the heads differ as their teachers do?", "",
        "A fused score gains over its parts where they rank differently. Mean over questions of the Spearman "
        "correlation of two systems' scores on each question's candidates (`as2.agreement`): each pair of the "
        f"ensemble's members, the same pair of `{student}`'s heads, and each head against the teacher it was "
        "distilled from.", "",
        pipe_table(headers, rows), "",
    ]  # fmt: skip


def seed_maps(seeds: dict[str, dict]) -> dict[str, dict[str, dict[int, float]]]:
    """system -> split -> seed -> MAP, from make seeds' reports (runs ``<system>-seed<N>``)."""
    maps: dict[str, dict[str, dict[int, float]]] = {}
    for split in (s for s in PEER_SPLITS if s in seeds):
        for name, metrics in seeds[split]["runs"].items():
            if m := SEED_RUN.match(name):
                by_seed = maps.setdefault(m["system"], {}).setdefault(split, {})
                by_seed[int(m["seed"])] = metrics["map"]
    return maps


def seed_section(seeds: dict[str, dict]) -> list[str]:
    """MAP of each system trained with several seeds (runs ``<system>-seed<N>``, ``make seeds``): per split,
    mean ± sample standard deviation and the range, so that a difference between systems is read against it."""
    maps = seed_maps(seeds)
    if not maps:
        return []
    splits = [s for s in PEER_SPLITS if s in seeds]

    def spread(values: list[float]) -> str:
        sd = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        return f"{statistics.mean(values):.3f}{sd} ({min(values):.3f}-{max(values):.3f})"

    seeds_of = {
        system: sorted({n for by_seed in by_split.values() for n in by_seed})
        for system, by_split in maps.items()
    }
    cells = [
        [f"`{system}`", ", ".join(map(str, seeds_of[system])),
         *(spread(list(by_split[s].values())) if s in by_split else "" for s in splits)]
        for system, by_split in maps.items()
    ]  # fmt: skip
    per_seed = [
        [f"`{system}`", str(n), *(f"{by_split[s][n]:.3f}" if n in by_split.get(s, {}) else "" for s in splits)]
        for system, by_split in maps.items()
        for n in seeds_of[system]
    ]  # fmt: skip
    return [
        "## Seed spread", "",
        "The same recipe trained with several seeds (`make seeds`: students, teachers and the peers; the seed drives "
        "the order of the training data, dropout and the initial weights of new layers; the bench's own run, or "
        "make peers', is one of them), each evaluated like the table above. "
        "MAP mean ± sample standard deviation (min-max):", "",
        pipe_table(["system", "seeds", *(f"MAP {PEER_SPLITS[s]}" for s in splits)], cells), "",
        pipe_table(["system", "seed", *(PEER_SPLITS[s] for s in splits)], per_seed), "",
    ]  # fmt: skip


def scaling_section(scaling: dict[str, dict], asnq: dict) -> list[str]:
    """The data-parallel stages on 1 and N ranks (``as2.bench_ranks``) and ASNQ-scale conversion."""
    if not scaling and not asnq:
        return []
    scaling = dict(scaling)
    records = [*scaling.values(), asnq]
    rss = scaling.pop("index_rss", {}).get("index_build_rss")  # a twin.bench record, not a rank timing
    lines = ["## Scale-out", ""]
    machines = sorted(
        {f"{hw['device']}, {hw['cores']} cores, {hw['os']}" for r in records if (hw := r.get("hardware"))}
    )
    if machines:  # `make scaling` and the ASNQ bench run apart from make bench, maybe on another machine
        lines += [f"Measured on {'; '.join(machines)} (the machine records of these figures).", ""]
    if rss:
        lines += [f"- Peak RSS of one process building a `Flat` index over {rss['docs']:,} synthetic sentences "
                  f"(`twin.bench --rss_size`): {rss['peak_rss_mib']:.0f} MiB, of which the index "
                  f"{rss['index_mib']:.0f} MiB (target: under 2 GiB plus the index).", ""]  # fmt: skip
    if scaling:
        lines += ["Each stage timed from launch to exit under the `deepspeed` launcher (start-up, "
                  "model loading and rank 0's merge included), the cores split evenly among the ranks "
                  "(`make scaling`, `as2.bench_ranks`); efficiency = (t_1 / t_N) / N.", ""]  # fmt: skip
        cells = []
        for name, r in scaling.items():
            unit = r["unit"]
            for ranks, row in sorted(r["ranks"].items(), key=lambda kv: int(kv[0])):
                cells.append([f"`{name}`", str(ranks), str(row["threads"]), f"{row['seconds']:.1f}",
                              f"{row[f'{unit}_per_s']:.1f} {unit}/s", f"{row['efficiency']:.2f}"])  # fmt: skip
        lines += [
            pipe_table(["stage", "ranks", "threads per rank", "seconds", "throughput", "efficiency"], cells),
            "",
        ]
    if asnq:
        lines += [f"- ASNQ-shaped input ({asnq['lines']:,} lines, {asnq['questions']:,} questions, "
                  f"{asnq['input_mib']:.0f} MiB; `python -m data_prep.bench_asnq`): converted in "
                  f"{asnq['convert_seconds']:.0f} s ({asnq['lines_per_s']:,.0f} lines/s); peak RSS of the converter "
                  f"{asnq['peak_rss_mib']:.0f} MiB, of which heap at most {asnq.get('peak_anon_mib', float('nan')):.0f} "
                  "MiB (streamed: one question and one Arrow batch; the rest is the written file read back "
                  f"through a memory map by `save_to_disk`); output {asnq['output_mib']:.0f} MiB.", ""]  # fmt: skip
    lines += [
        "On N machines (`deepspeed --hostfile`): every rank reads the whole split (or corpus) and works on the "
        "chunks `i % N == rank`; teacher scoring and prediction send only their float32 scores, once, to rank 0 "
        "(a gather over gloo, each rank's share padded to the largest), so no shared "
        "filesystem is needed; the index build spills its chunks and shards to the output's folder, which must "
        "be shared, and rank 0 merges the shards (memory: the whole index, as one process holds it). What grows "
        "with N: launcher start-up and one model load per rank (fixed costs), and the merge on rank 0 (linear in "
        "the data); the work per rank shrinks as 1/N, so efficiency falls once a rank's share is small against "
        "its model load.",
        "",
    ]
    return lines


def training_section(training: dict[str, dict], wall: dict) -> list[str]:
    """How long the bench took: its wall time (clean or resumed) and each trained model's training loop."""
    if not training and not wall:
        return []
    lines = ["## Training time", ""]
    if wall:
        how = ("a clean run (nothing reused from an earlier run)" if wall["clean"] else
               "a resumed run: stages of an earlier run were reused, so this is not what a clean run costs")  # fmt: skip
        lines += [
            f"`make bench` took {wall['seconds'] / 60:.0f} min of wall time on the bench machine, {how}. It "
            "trains the teacher candidates, the CERBERUS student and the twin; the KD baselines (`make "
            "baselines`), the inference benches (`make inference-bench`: the student at four other precisions, "
            "its adaptive heads, the twin's index bench), the peers (`make peers`) and the seeds (`make seeds`) "
            "run after it and are not counted.",
            "",
        ]
    if training:
        cpus = ", ".join(
            sorted({s.get("hardware", {}).get("cpu", "a CPU not recorded") for s in training.values()})
        )
        lines += [
            f"Each model's training loop as its `summary.json` records it (trained on {cpus}; data and model loading "
            "and the export are not counted). A model resumed from a checkpoint counts only the steps after it "
            "resumed.",
            "",
        ]
        cells, totals = [], {}
        for name, s in training.items():
            stage = name.split("/")[0]
            totals[stage] = totals.get(stage, 0.0) + s["seconds"]
            resumed = s.get("resumed_from_step") or 0
            steps = s.get("global_step", s.get("steps", ""))
            cells.append([f"`{name}`", s.get("precision", ""), str(steps), str(resumed) if resumed else "",
                          f"{s['seconds']:.0f}"])  # fmt: skip
        cells += [[f"all {stage}", "", "", "", f"{seconds:.0f}"] for stage, seconds in totals.items()]
        lines += [pipe_table(["model", "precision", "steps", "resumed from step", "seconds"], cells), ""]
    return lines
