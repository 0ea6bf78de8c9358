"""The package layering, checked on the source: as2 at the bottom, cerberus and twin never import each other,
nothing imports data_prep but data_prep itself (it sits on top: corpora in, teacher scores out)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# package -> packages of this project it must never import
FORBIDDEN = {
    "as2": {"cerberus", "twin", "data_prep"},
    "cerberus": {"twin", "data_prep"},
    "twin": {"cerberus", "data_prep"},
    "data_prep": {"twin"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_package_imports_a_layer_above_or_beside_it():
    """Bug caught: an import cycle such as data_prep.teachers <-> cerberus.bench, anywhere in a module."""
    bad = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((REPO / package).rglob("*.py")):
            bad += [
                f"{path.relative_to(REPO)} imports {p}" for p in sorted(imported_packages(path) & forbidden)
            ]
    assert not bad, bad
