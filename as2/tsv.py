"""Tab-separated files as AS2 corpora publish them: no quoting, LF or CRLF line endings, streamed.

AS2 sentences hold bare double quotes, so Python's ``csv`` reader (which honours quotes by default)
would silently merge rows; here a line is split on tabs and nothing else. Lines are read as bytes and
decoded one at a time, so a bad byte is reported with its line number and a lone ``\\r`` inside a
sentence does not end the line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from as2.data import DataError


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, text without its line ending)``, skipping empty lines."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw:
                continue
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}, line {lineno}: not valid UTF-8 ({e.reason} at byte {e.start})"
                ) from None


def read_tsv(
    path: str | os.PathLike, columns: Sequence[str], header: str = "none"
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, [value of each of columns])`` for each data line of a TSV file.

    Args:
        path: the file.
        columns: the columns wanted, in the order they are returned.
        header: ``"required"``: the first line names the columns (matched case-insensitively; other columns
            are allowed and ignored); ``"optional"``: a first line equal to ``columns`` is skipped, and the
            file otherwise has exactly ``columns``; ``"none"``: every line is data with exactly ``columns``.

    Raises:
        DataError: a missing column, or a line with the wrong number of fields (naming file, line, field).
    """
    path = Path(path)
    if header not in ("required", "optional", "none"):
        raise ValueError(f"header must be 'required', 'optional' or 'none', got {header!r}")
    wanted = [c.lower() for c in columns]
    names = list(columns)  # every column of the file, for the field-count check
    index = list(range(len(columns)))  # position of each wanted column in a line
    expect_header, maybe_header = header == "required", header == "optional"
    for lineno, text in _lines(path):
        fields = text.split("\t")
        if expect_header:  # the first non-empty line
            expect_header = False
            names = fields
            found = [f.strip().lower() for f in fields]
            for col, low in zip(columns, wanted, strict=True):
                if low not in found:
                    raise DataError(f"{path}, line {lineno}: missing column {col!r} in the header {fields}")
            index = [found.index(low) for low in wanted]
            continue
        if maybe_header:
            maybe_header = False
            if [f.strip().lower() for f in fields] == wanted:
                continue
        if len(fields) != len(names):
            missing = f"; field {names[len(fields)]!r} is missing" if len(fields) < len(names) else ""
            raise DataError(
                f"{path}, line {lineno}: expected {len(names)} tab-separated fields "
                f"({', '.join(names)}), got {len(fields)}{missing}"
            )
        yield lineno, [fields[i] for i in index]
    if expect_header:
        raise DataError(f"{path}: empty file, expected a header line with columns {list(columns)}")
