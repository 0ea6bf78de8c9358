"""Markdown tables of reports and results pages (tabulate's GitHub pipe format), and their cost columns.

Every table of the project goes through :func:`pipe_table`; every table of systems shows the same cost
columns, read from a ``cerberus.bench`` row by :func:`cost_cells`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tabulate import tabulate

# (bench.json key, column header): the cost columns of every table of systems, in order
COSTS = (
    ("params", "params (M)"),
    ("ms_per_pair_b1_fp32", "ms/pair b1 fp32"),
    ("ms_per_pair_b32_fp32", "ms/pair b32 fp32"),
    ("ms_per_pair_b32_bf16", "ms/pair b32 bf16"),
    ("pairs_per_s_b32_bf16", "pairs/s b32 bf16"),
    ("ms_per_pair_b32_int8", "ms/pair b32 int8"),
)
COST_HEADERS = [header for _, header in COSTS]


def pipe_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table; cells are written as given (formatted by the caller, never re-parsed as numbers)."""
    return tabulate(rows, headers=list(headers), tablefmt="github", disable_numparse=True)


def cost_cells(row: Mapping[str, float]) -> list[str]:
    """The cost columns of one system (params in millions, pairs/s whole, times to 0.01 ms); blank if not timed."""
    cells = []
    for key, _ in COSTS:
        if key not in row:
            cells.append("")
        elif key == "params":
            cells.append(f"{row[key] / 1e6:.1f}")
        else:
            cells.append(f"{row[key]:.0f}" if key.startswith("pairs") else f"{row[key]:.2f}")
    return cells
