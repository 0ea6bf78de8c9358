"""Convert ASNQ-shaped input of any size and measure it: lines/s and the converter's peak memory.

    python -m data_prep.bench_asnq --lines 20000000 --out runs/bench_asnq     # the size of ASNQ's train.tsv

ASNQ itself is not needed: the input is generated in its published format (question, sentence, label 1-4,
tab-separated, no header; consecutive rows of one question; about 350 candidates per question and one
label-4 row in 60, as in ASNQ's train split), then ``python -m data_prep.convert --source asnq`` runs in a
child process that reports its own peak resident memory (``ru_maxrss``) when it is done. Writes ``OUT/bench.json``
(lines, questions, seconds, lines/s, peak RSS and peak anonymous memory, output size) and removes the generated input unless
``--keep_input``.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import cli, parse, setup_logging, write_json
from as2.precision import hardware

logger = logging.getLogger(__name__)

WORDS = (
    "the of and in to was is for on as by with he at from his an were are which this also be has or had its "
    "first new after who they two her she been other when time during there into school more may years over "
    "city state university american world national team only most season three film united war"
).split()


# the converter as a user runs it, then, as the last line, its own peak RSS (KiB on Linux) and the peak of its
# anonymous memory (heap; sampled every 50 ms from /proc/self/status), which excludes the pages of files it
# maps (save_to_disk reads the written Arrow file back through a memory map: page cache, not heap)
CHILD = """
import json, resource, sys, threading, time
peak = [0]
def sample():
    while True:
        for line in open('/proc/self/status'):
            if line.startswith('RssAnon:'):
                peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
from data_prep import convert
convert.main(json.loads(sys.argv[1]))
print(json.dumps({'peak_rss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'peak_anon_kib': peak[0]}))
"""


@dataclass
class BenchAsnqConfig:
    lines: int = field(default=20_000_000, metadata={"help": "rows of generated input (ASNQ train: ~20M)"})
    candidates: int = field(default=350, metadata={"help": "mean candidates per question"})
    out: str = field(default="runs/bench_asnq", metadata={"help": "folder for bench.json (and the input)"})
    seed: int = field(default=0, metadata={"help": "seed of the generated text"})
    keep_input: bool = field(default=False, metadata={"help": "keep the generated train.tsv"})

    def __post_init__(self):
        if self.lines < 1 or self.candidates < 1:
            raise ValueError(f"lines and candidates must be >= 1, got {self.lines}, {self.candidates}")


def generate(path: Path, lines: int, candidates: int, seed: int) -> int:
    """Write ``lines`` ASNQ-shaped rows to ``path``; returns the number of questions."""
    rng = random.Random(seed)
    questions = written = 0
    with open(path, "w") as f:
        while written < lines:
            question = " ".join(rng.choices(WORDS, k=rng.randint(5, 12))) + " ?"
            n = min(lines - written, max(1, int(rng.expovariate(1 / candidates))))
            for _ in range(n):
                label = 4 if rng.random() < 1 / 60 else rng.choice((1, 1, 1, 2, 3))
                f.write(f"{question}\t{' '.join(rng.choices(WORDS, k=rng.randint(8, 40)))} .\t{label}\n")
            written += n
            questions += 1
    return questions


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(BenchAsnqConfig, argv, description=__doc__)
    setup_logging()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. ASNQ-shaped input
    source = out / "train.tsv"
    start = time.perf_counter()
    questions = generate(source, cfg.lines, cfg.candidates, cfg.seed)
    logger.info(
        "generated %d lines, %d questions in %.0f s", cfg.lines, questions, time.perf_counter() - start
    )

    # 2. the converter in a child process: its wall time and peak RSS
    split = out / "split"
    argv = ["--source", "asnq", "--input", str(source), "--output", str(split)]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"convert failed:\n{proc.stderr[-3000:]}")
    *_, last, rss = proc.stdout.strip().splitlines()
    stats, peaks = json.loads(last), json.loads(rss)
    result = {
        "lines": cfg.lines,
        "questions": questions,
        "input_mib": source.stat().st_size / 2**20,
        "output_mib": sum(p.stat().st_size for p in split.rglob("*") if p.is_file()) / 2**20,
        "convert_seconds": seconds,
        "lines_per_s": cfg.lines / seconds,
        "peak_rss_mib": peaks["peak_rss_kib"] / 1024,
        "peak_anon_mib": peaks["peak_anon_kib"] / 1024,
        "converted": {k: stats[k] for k in ("questions", "pairs", "positives")},
        "hardware": hardware(),
    }
    if not cfg.keep_input:
        source.unlink()
        shutil.rmtree(split, ignore_errors=True)
    write_json(out / "bench.json", result)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli(main)
