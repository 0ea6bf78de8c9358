"""The targets the results page states, each checked against the table's rows."""

from __future__ import annotations

import statistics

from as2.results.table import MEMBER_ROLE

BENCH_BUDGET_MIN = 120  # a clean make bench on a 2-core machine


def targets(
    rows: list[dict],
    twin_bench: dict,
    *,
    student: str,
    ensemble: str,
    twin: str,
    twin_teacher: str,
    wall: dict | None = None,
    seed_maps: dict[str, dict[str, dict[int, float]]] | None = None,
) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met?) for each target the results page states; ``seed_maps`` (system ->
    split -> seed -> MAP, make seeds) adds each teacher against its peer over their seeds on test."""
    by = {r["system"]: r for r in rows}
    s, e = by.get(student, {}), by.get(ensemble, {})
    out = []
    for name, peer in by.items():  # each teacher against the library-default fine-tune of its encoder
        teacher = by.get(_teacher_of(name), {})
        if "map" in teacher and "map" in peer:
            out.append((f"{teacher['system']} MAP >= its peer {name} (same encoder)",
                        f"{teacher['map']:.3f} vs {peer['map']:.3f}", teacher["map"] >= peer["map"]))  # fmt: skip
    for peer, by_split in (seed_maps or {}).items():  # the same, on the means over several seeds of each
        teacher = _teacher_of(peer)
        t, p = seed_maps.get(teacher, {}).get("test", {}), by_split.get("test", {})
        if len(t) > 1 and len(p) > 1:
            out.append((f"{teacher} mean MAP >= {peer}'s over seeds "
                        f"({', '.join(map(str, sorted(t)))} / {', '.join(map(str, sorted(p)))})",
                        f"{_mean_sd(t.values())} vs {_mean_sd(p.values())}",
                        statistics.mean(t.values()) >= statistics.mean(p.values())))  # fmt: skip
    members = {n: r["map@dev"] for n, r in by.items() if r.get("role") == MEMBER_ROLE and "map@dev" in r}
    if members and "map@dev" in e:  # the selection's own split: where the ensemble was chosen to win
        best = max(members, key=members.get)
        out.append(("ensemble MAP > its best member's on WikiQA dev",
                    f"{e['map@dev']:.3f} vs {best} {members[best]:.3f}", e["map@dev"] > members[best]))  # fmt: skip
    if "map" in s and "map" in e:
        out.append(("student MAP >= ensemble MAP", f"{s['map']:.3f} vs {e['map']:.3f}", s["map"] >= e["map"]))
    kd = {n: r["map"] for n, r in by.items() if n.startswith("kd_") and n != "kd_avg" and "map" in r}
    if "map" in s and kd:
        best = max(kd, key=kd.get)
        out.append(
            ("student MAP > every single-teacher KD student", f"{s['map']:.3f} vs best {best} {kd[best]:.3f}",
             s["map"] > kd[best])
        )  # fmt: skip
    for k in ("ms_per_pair_b1_fp32", "ms_per_pair_b32_fp32", "ms_per_pair_b32_bf16"):
        if k in s and k in e:
            ratio = e[k] / s[k]
            out.append((f"student >= 5x faster than the ensemble ({k})", f"{ratio:.1f}x", ratio >= 5))
    if "params" in s and "params" in e:
        frac = s["params"] / e["params"]
        out.append(("student params <= 1/3 of the ensemble's", f"{frac:.3f}", frac <= 1 / 3))
    twin, teacher = by.get(twin, {}), twin_teacher
    if "map" in twin and teacher in by and "map" in by[teacher]:
        ratio = twin["map"] / by[teacher]["map"]
        out.append((f"twin MAP >= 90% of its teacher's ({teacher})", f"{100 * ratio:.1f}%", ratio >= 0.9))
    if twin_bench.get("per_query"):
        sp = twin_bench["per_query"]["speedup"]
        out.append(("twin >= 20x cheaper per query than a cross-encoder", f"{sp:.1f}x", sp >= 20))
    if wall:  # only a clean run measures the budget: a resumed one reused earlier stages
        minutes = wall["seconds"] / 60
        how = "clean run" if wall["clean"] else "resumed run, not a clean one"
        out.append((f"clean make bench <= {BENCH_BUDGET_MIN} min", f"{minutes:.0f} min ({how})",
                    wall["clean"] and minutes <= BENCH_BUDGET_MIN))  # fmt: skip
    return out


def _teacher_of(peer: str) -> str | None:
    """Our cross-encoder teacher of a peer's encoder (``mpnet_peer`` -> ``mpnet_ce``); None for other systems."""
    return peer.removesuffix("_peer") + "_ce" if peer.endswith("_peer") else None


def _mean_sd(values) -> str:
    values = list(values)
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
