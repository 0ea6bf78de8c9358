"""The sections of the results page around its table (``as2.results``): the machine the costs were measured
on, the twin's retrieval and index, the peers (the libraries' defaults), and the accuracy-latency plot."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

from as2.tables import pipe_table

METRICS = ("precision@1", "map", "mrr")
LIBRARIES = ("torch", "transformers", "datasets", "deepspeed", "sentence_transformers", "faiss", "ranx")


def read_json(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist (run the stage that writes it first)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from e


PEER_SPLITS = {"dev": "WikiQA dev", "test": "WikiQA test", "selqa_dev": "SelQA dev (out of domain)"}
EXTRA_SPLITS = ("dev", "selqa_dev")  # MAP columns beside the test metrics, where reports exist
PEER_ROLE = "peer: sentence-transformers CrossEncoder, library defaults"


def read_splits(folder: str, copies: Path, splits=tuple(PEER_SPLITS)) -> dict[str, dict]:
    """``{split: as2.evaluate report}`` found as ``FOLDER/<split>/report.json``, copied beside the page."""
    found = {}
    for split in splits:
        path = Path(folder) / split / "report.json"
        if path.is_file():
            found[split] = read_json(str(path))
            if path.resolve() != (copies / split / "report.json").resolve():
                (copies / split).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copies / split / "report.json")
    if not found:
        raise FileNotFoundError(f"{folder}: no <split>/report.json for any of {', '.join(splits)}")
    return found


def split_maps(name: str, reports: dict[str, dict]) -> dict[str, float]:
    """``{"map@<split>": MAP}`` of a system on the extra evaluation splits that scored it."""
    return {
        f"map@{split}": reports[split]["runs"][name]["map"]
        for split in EXTRA_SPLITS
        if name in reports.get(split, {}).get("runs", {})
    }


def peer_rows(peers: dict[str, dict]) -> list[dict]:
    """Table rows of the peers on the test split (their costs are their encoders', timed as teachers)."""
    return [
        {
            "system": name,
            "role": PEER_ROLE,
            **{m: v[m] for m in METRICS},
            **{f"{m}_mark": "" for m in METRICS},
            **split_maps(name, peers),
        }
        for name, v in peers.get("test", {}).get("runs", {}).items()
    ]


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


def plot(rows: list[dict], twin_bench: dict, path: Path, cost: str = "ms_per_pair_b32_bf16") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for r in rows:
        if cost in r and "map" in r:
            ax.scatter(r[cost], r["map"], s=40)
            ax.annotate(
                r["system"], (r[cost], r["map"]), textcoords="offset points", xytext=(5, 3), fontsize=8
            )
    twin = next((r for r in rows if r["system"] == "twin" and "map" in r), None)
    if twin and twin_bench.get("per_query"):
        pq = twin_bench["per_query"]
        x = pq["twin_ms_per_query"] / pq["candidates_per_query"]
        ax.scatter(x, twin["map"], marker="s", s=40, color="black")
        ax.annotate("twin (ms/query / candidates)", (x, twin["map"]), textcoords="offset points",
                    xytext=(5, -10), fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(f"{cost.replace('_', ' ')} (log scale)")
    ax.set_ylabel("MAP (WikiQA clean test)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def environment(machine: dict) -> list[str]:
    """The machine the costs were measured on (``cerberus.bench``'s ``hardware`` record), library versions."""
    from importlib.metadata import PackageNotFoundError, version

    if machine:
        have = ", ".join(machine.get("cpu_bf16_instructions") or []) or "none"
        line = (
            f"Machine (where the costs were measured): {machine['device']}, {machine['cores']} cores, "
            f"{machine['memory_gib']:.0f} GiB RAM, {machine['os']}; bf16 instructions: {have} "
            f"({'native: bf16 timed' if machine['bf16_native'] else 'emulated: bf16 not timed'}); precision "
            f"`auto` resolves to {machine['auto_precision']} there; {machine['threads']} torch threads."
        )
    else:  # a bench.json from before machine records: this machine, which may not be the bench's
        from as2.precision import cpu_model

        line = (
            "Machine of the costs: not recorded (bench.json predates machine records); this page was "
            f"regenerated on {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}."
        )
    versions = []
    for lib in LIBRARIES:
        dist = {"faiss": "faiss-cpu", "sentence_transformers": "sentence-transformers"}.get(lib, lib)
        try:
            versions.append(f"{lib} {version(dist)}")
        except PackageNotFoundError:
            continue
    return [line, f"Python {sys.version.split()[0]}; " + ", ".join(versions) + "."]


def precision_section(student: str, report: dict, bench: dict) -> list[str]:
    """The student at each precision it was timed in: ms/pair at batch 1 and 32, test MAP, change vs fp32.

    MAP per precision comes from the runs ``<student>_fp32`` / ``<student>_int8`` (``cerberus.predict
    --precision``) and, for the precision ``auto`` chose on the bench machine, the student's own run.
    """
    costs = bench.get("systems", {}).get(student, {})
    runs = report.get("runs", {})
    auto = bench.get("hardware", {}).get("auto_precision")
    names = {p: f"{student}_{p}" for p in ("fp32", "bf16", "int8")}
    if auto in names and student in runs:
        names[auto] = student
    rows = [p for p in names if f"ms_per_pair_b32_{p}" in costs]
    if not rows:
        return []
    base = runs.get(names["fp32"], {}).get("map")
    lines = ["## The student at each precision", "",
             f"`{student}` on the bench machine, steady state (as in the table above); MAP on WikiQA test from "
             f"its predictions at that precision (`cerberus.predict --precision`; `auto` chose {auto}).", ""]  # fmt: skip
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
        if gflops:  # not counted for int8: quantized kernels are not in torch's FLOP counter
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
