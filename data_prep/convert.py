"""Convert an AS2 corpus into the data contract (:mod:`as2.data`): one Arrow dataset per split.

Launch (one split per call)::

    python -m data_prep.convert --source wikiqa --input ../shared/data/wikiqa/WikiQA-test.tsv \\
        --output data/wikiqa/test
    python -m data_prep.convert --source trecqa --input TrecQA/raw-test --output data/trecqa/test
    python -m data_prep.convert --source selqa --input SelQA-ass-test.json --output data/selqa/test
    python -m data_prep.convert --source asnq --input asnq/dev.tsv --output data/asnq/dev
    python -m data_prep.convert --source table --input pairs.parquet --output data/mine/test \\
        --question_col q --candidate_col sentence --label_col y [--qid_col id] [--cid_col sid]
    python -m data_prep.convert --source hub --input microsoft/wiki_qa --split test --output data/wikiqa/test

Column options default, for ``hub``, to WikiQA's hub columns (question, answer, label, question_id); a
missing id column means ids ``<index>`` / ``<qid>-<i>``; ``--format`` defaults to the file extension.

Reads: the corpus file (or castorini directory, or hub dataset name) given by ``--input``; the readers are
``data_prep.{wikiqa,trecqa,selqa,asnq,table,hub}``. Writes: ``--output`` (replaced atomically, only once the
data validated), holding the Arrow dataset and ``as2.json`` (source, format, config, counts). Prints the
counts as a JSON object on the last line of stdout. Bad input (empty text, a label out of range, a wrong
field count, misaligned files, duplicate ids) stops with a message naming the file, line and field, and
exit status 2.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from as2 import table
from as2.config import ConfigError, parse, setup_logging, to_dict
from as2.data import DataError, Question, save
from data_prep import asnq, hub, selqa, trecqa, wikiqa

logger = logging.getLogger(__name__)

SOURCES = ("wikiqa", "trecqa", "selqa", "asnq", "table", "hub")
COLUMN_OPTIONS = ("question_col", "candidate_col", "label_col", "qid_col", "cid_col")


@dataclass
class ConvertConfig:
    source: str = field(default="", metadata={"help": f"corpus format: {', '.join(SOURCES)}"})
    input: str = field(
        default="", metadata={"help": "corpus file, castorini folder (trecqa) or dataset (hub)"}
    )
    output: str = field(default="", metadata={"help": "folder to write the split to (replaced atomically)"})
    format: str | None = field(
        default=None, metadata={"help": "table: tsv/csv/jsonl/parquet; selqa: tsv/json"}
    )
    question_col: str | None = field(default=None, metadata={"help": "table/hub: question column"})
    candidate_col: str | None = field(default=None, metadata={"help": "table/hub: candidate column"})
    label_col: str | None = field(default=None, metadata={"help": "table/hub: 0/1 label column"})
    qid_col: str | None = field(default=None, metadata={"help": "table/hub: question id column ('': none)"})
    cid_col: str | None = field(default=None, metadata={"help": "table/hub: candidate id column"})
    subset: str | None = field(default=None, metadata={"help": "hub: dataset configuration name"})
    split: str | None = field(default=None, metadata={"help": "hub: split to load (default: test)"})
    limit_questions: int | None = field(default=None, metadata={"help": "keep the first N questions only"})

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {SOURCES}, got {self.source!r}")
        if not self.input:
            raise ConfigError("input is required: a corpus file, a castorini directory or a dataset name")
        if not self.output:
            raise ConfigError("output is required: the folder to write the converted split to")
        if self.limit_questions is not None and self.limit_questions < 1:
            raise ConfigError(f"limit_questions must be >= 1, got {self.limit_questions}")
        formats = {"table": table.FORMATS, "selqa": selqa.FORMATS}.get(self.source, ())
        if self.format is not None and self.format not in formats:
            allowed = f"one of {formats}" if formats else "not used"
            raise ConfigError(f"format {self.format!r} for source {self.source!r}: {allowed}")
        given = [name for name in COLUMN_OPTIONS if getattr(self, name) is not None]
        if given and self.source not in ("table", "hub"):
            raise ConfigError(f"{given} apply only to source table or hub, not {self.source!r}")
        if self.source == "table":
            missing = [name for name in COLUMN_OPTIONS[:3] if not getattr(self, name)]
            if missing:
                raise ConfigError(f"source table needs the column mapping {['--' + m for m in missing]}")
        if self.source != "hub" and (self.subset is not None or self.split is not None):
            raise ConfigError(f"subset and split apply only to source hub, not {self.source!r}")


def read_corpus(cfg: ConvertConfig) -> Iterable[Question]:
    """Dispatch to the reader of ``cfg.source`` with the options it takes."""
    limit = cfg.limit_questions
    if cfg.source == "wikiqa":
        return wikiqa.read(cfg.input, limit_questions=limit)
    if cfg.source == "trecqa":
        return trecqa.read(cfg.input, limit_questions=limit)
    if cfg.source == "selqa":
        return selqa.read(cfg.input, format=cfg.format, limit_questions=limit)
    if cfg.source == "asnq":
        return asnq.read(cfg.input, limit_questions=limit)
    mapping = {name: getattr(cfg, name) for name in COLUMN_OPTIONS if getattr(cfg, name) is not None}
    if cfg.source == "table":
        return table.read(cfg.input, **mapping, format=cfg.format, limit_questions=limit)
    return hub.read(cfg.input, cfg.subset, cfg.split or "test", **mapping, limit_questions=limit)


def main(argv: list[str] | None = None) -> dict:
    # 1. Config: flags (and an optional --config YAML); a bad value is a usage error
    try:
        cfg, _ = parse(ConvertConfig, argv, description=__doc__)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging()
    try:
        # 2. Read the corpus into questions (the readers check labels, columns and field counts)
        questions = read_corpus(cfg)  # a list, or a stream (ASNQ) that save() consumes as it writes
        # 3. Validate the contract and write the split atomically, with its summary beside it
        config = {k: v for k, v in to_dict(cfg).items() if v is not None}
        summary = {"source": str(cfg.input), "format": cfg.source, "config": config}
        stats = save(questions, cfg.output, summary=summary)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    logger.info(
        "wrote %d questions from %s (%s) to %s", stats["questions"], cfg.input, cfg.source, cfg.output
    )
    # 4. The counts, as the last line of stdout
    print(json.dumps(stats))
    return stats


if __name__ == "__main__":
    main()
