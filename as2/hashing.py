"""SHA-256 of files and folders: what a cache, an index or a pinned download is checked against."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def update_with_file(h, path: str | os.PathLike) -> None:
    """Feed the bytes of one file to the hash ``h``, a block at a time."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def update_with_tree(h, path: str | os.PathLike) -> None:
    """Feed a file (its name and bytes) or every file under a folder (relative names and bytes, sorted)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        update_with_file(h, p)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    update_with_file(h, path)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    update_with_tree(h, path)
    return h.hexdigest()
