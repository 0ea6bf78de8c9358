"""The accuracy-latency plot of the results page."""

from __future__ import annotations

import os
from pathlib import Path


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
