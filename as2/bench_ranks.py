"""Scaling of a data-parallel stage: the same command on 1 rank and on N ranks of this machine, timed.

    python -m as2.bench_ranks --name teacher_scores --items 3000 --unit pairs --out runs/scaling \\
        --script data_prep/teacher_scores.py -- --config configs/wikiqa/teachers_dev.yaml --output /tmp/x

Each run gets the machine's cores split evenly (``OMP_NUM_THREADS = cores / ranks``, the Makefile's rule),
starts under the ``deepspeed`` launcher (``--num_accelerators`` ranks on this machine) from a clean output
(``--clean`` paths or globs are removed before every run, so nothing is resumed), and is timed from launch to exit:
start-up, model loading and the merge on rank 0 included, as a user waits for them. Writes
``OUT/<name>.json``: per rank count the seconds, ``items / s`` and the efficiency
``(t_1 / t_N) / N`` (1.0: perfect scaling), with the machine.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from as2 import shards
from as2.config import cli, parse, setup_logging, write_json
from as2.precision import hardware

logger = logging.getLogger(__name__)


@dataclass
class BenchRanksConfig:
    name: str = field(default="", metadata={"help": "what is measured (file name of the result)"})
    script: str = field(default="", metadata={"help": "entry point run by the launcher (a .py path)"})
    items: int = field(default=0, metadata={"help": "units of work the command does (pairs, documents)"})
    unit: str = field(default="items", metadata={"help": "name of the unit (pairs, docs)"})
    ranks: list[int] = field(default_factory=lambda: [1, 2], metadata={"help": "rank counts to time"})
    clean: list[str] = field(
        default_factory=list, metadata={"help": "paths (globs) removed before every run"}
    )
    out: str = field(default="runs/scaling", metadata={"help": "folder of <name>.json"})

    def __post_init__(self):
        if not self.name or not self.script or self.items < 1:
            raise ValueError("name, script and items >= 1 are required")
        if not self.ranks or min(self.ranks) < 1:
            raise ValueError(f"ranks must be >= 1, got {self.ranks}")


def run(script: str, args: list[str], ranks: int, cores: int) -> float:
    """Seconds from launch to exit of ``script`` on ``ranks`` ranks of ``cores // ranks`` threads each."""
    start = time.perf_counter()
    shards.launch(script, args, ranks, max(1, cores // ranks))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    cfg, _ = parse(BenchRanksConfig, own, description=__doc__)
    setup_logging()
    cores = os.cpu_count() or 1
    rows = {}
    for ranks in cfg.ranks:
        for path in (p for pattern in cfg.clean for p in glob.glob(pattern)):  # nothing to resume from
            shutil.rmtree(path, ignore_errors=True) if Path(path).is_dir() else Path(path).unlink(
                missing_ok=True
            )
        seconds = run(cfg.script, args, ranks, cores)
        rows[ranks] = {
            "seconds": seconds,
            f"{cfg.unit}_per_s": cfg.items / seconds,
            "threads": cores // ranks,
        }
        logger.info(
            "%s on %d rank(s): %.1f s, %.1f %s/s", cfg.name, ranks, seconds, cfg.items / seconds, cfg.unit
        )
    base = rows[min(rows)]["seconds"] * min(rows)
    for ranks, row in rows.items():
        row["efficiency"] = base / row["seconds"] / ranks
    result = {"name": cfg.name, "command": [cfg.script, *args], "items": cfg.items, "unit": cfg.unit,
              "cores": cores, "ranks": rows, "hardware": hardware()}  # fmt: skip
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(cfg.out) / f"{cfg.name}.json", result)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli(main)
