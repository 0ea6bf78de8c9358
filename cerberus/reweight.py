"""Re-choose a trained student's head weights on one or more development splits, without training.

    python -m cerberus.predict --model runs/student/model --data data/wikiqa/dev --out runs/dev --name s
    python -m cerberus.reweight --model runs/student/model --data data/wikiqa/dev \\
        --run runs/dev/s.mpnet_ce.trec runs/dev/s.minilm_ce.trec runs/dev/s.mpnet_bi.trec --out reweight.json
    python -m cerberus.reweight --model runs/student/model --data data/wikiqa/dev data/selqa/dev \\
        --run runs/dev/s.*.trec runs/selqa_dev/s.*.trec --out reweight.json --save

A multi-head student's score is the weighted mean of its heads (``prob_mean``: of their sigmoids;
``logit_mean``: of their logits), with the ``head_weights`` given at training. Those weights do not enter
the training loss (each head learns from its own teacher), so they can be chosen again afterwards from the
heads' own scores: ``--run`` lists the per-head TREC runs ``cerberus.predict`` writes
(``<name>.<head>.trec``, one per head; several splits: each split's runs in turn), every weighting on a grid
of ``--step`` (weights >= 0 summing to 1; a head may get 0) is scored by the model's own combination, and
the best mean of ``--metric`` over the splits wins (each split counting the same whatever its size; the
most even weighting among equals). The JSON records the chosen weights, the weights the model had and each
split's metric under both. ``--save`` writes the chosen weights into the model's ``cerberus_config.json``
(atomically): the model then scores with them everywhere (``cerberus.predict``, ``cerberus.ranker``,
exports made afterwards). Only the development splits are read: choose on dev, then predict test.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import atomic_write_text, cli, parse, setup_logging, write_json
from as2.data import DataError, load_questions
from as2.metrics import check_options, evaluate_runs
from as2.select import check_step, quiet, split_runs, weight_grid
from cerberus.modeling import CONFIG_NAME, StudentConfig

logger = logging.getLogger("cerberus.reweight")


@dataclass
class ReweightConfig:
    model: str = field(default="", metadata={"help": "saved student folder (model/ of cerberus/train.py)"})
    data: list[str] = field(
        default_factory=list, metadata={"help": "development split(s) (as2.data) holding the labels"}
    )
    run: list[str] = field(
        default_factory=list,
        metadata={"help": "the heads' TREC runs (cerberus.predict's <name>.<head>.trec), split after split"},
    )
    out: str = field(default="", metadata={"help": "output JSON (chosen weights, scores)"})
    save: bool = field(default=False, metadata={"help": "write the chosen weights into the model's config"})
    metric: str = field(default="map", metadata={"help": "ranx metric the choice maximizes"})
    step: float = field(default=0.1, metadata={"help": "grid step of the weights (1/step an integer)"})
    protocol: str = field(default="clean", metadata={"help": "clean or raw"})
    ties: str = field(default="pessimistic", metadata={"help": "pessimistic or optimistic"})

    def __post_init__(self):
        if not self.model or not self.data or not self.out:
            raise ValueError("model, data and out are required")
        if not self.run or len(self.run) % len(self.data):
            raise ValueError(
                f"{len(self.run)} --run files for {len(self.data)} --data splits: give every split the "
                "heads' runs, split after split"
            )
        check_options(self.protocol, self.ties, [self.metric], "fisher", 0.05)
        check_step(self.step)


def head_runs(runs: dict, sources: dict, heads: Sequence[str]) -> list[dict]:
    """``runs`` (``{run name: run}``) ordered as ``heads``: each head's run is the one named ``<x>.<head>``."""
    ordered = []
    for head in heads:
        names = [n for n in runs if n.rpartition(".")[2] == head]
        if len(names) != 1:
            found = ", ".join(f"{n} ({sources[n]})" for n in runs)
            raise DataError(
                f"{len(names)} runs named '<name>.{head}' among {found}: give one run per head of the "
                f"model ({', '.join(heads)}), as cerberus.predict names them"
            )
        ordered.append(runs[names[0]])
    first = {q: set(c) for q, c in ordered[0].items()}
    for head, run in zip(heads[1:], ordered[1:], strict=True):
        if {q: set(c) for q, c in run.items()} != first:
            raise DataError(f"the runs of heads {heads[0]!r} and {head!r} do not score the same pairs")
    return ordered


def combine(runs: Sequence[dict], weights: Sequence[float], mode: str) -> dict:
    """The model's combined score from its heads' logits: ``sum_j w_j f(logit_j)``, f = sigmoid for
    ``prob_mean``, the identity for ``logit_mean`` (``CerberusStudent.mean_score``)."""

    def f(x: float) -> float:
        if mode != "prob_mean":
            return x
        e = math.exp(-abs(x))  # never overflows, whatever the logit's size
        return 1 / (1 + e) if x >= 0 else e / (1 + e)

    total = sum(weights)
    return {
        q: {c: sum(w * f(run[q][c]) for w, run in zip(weights, runs, strict=True)) / total for c in cands}
        for q, cands in runs[0].items()
    }


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse(ReweightConfig, argv, description=__doc__)
    setup_logging()
    config_path = Path(cfg.model) / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{cfg.model}: not a saved student (no {CONFIG_NAME})")
    model_cfg = json.loads(config_path.read_text())
    heads, mode = model_cfg["head_names"], model_cfg.get("combine", "prob_mean")
    if mode not in ("prob_mean", "logit_mean"):
        raise ValueError(f"{cfg.model}: combine {mode!r} has no head weights (prob_mean or logit_mean only)")
    if len(heads) < 2:
        raise ValueError(f"{cfg.model}: one head ({heads[0]}), nothing to weigh")
    if len(cfg.run) != len(heads) * len(cfg.data):
        raise ValueError(
            f"{len(cfg.run)} --run files for {len(cfg.data)} splits of a {len(heads)}-head model: give "
            f"each split one run per head ({', '.join(heads)})"
        )
    splits = [
        (load_questions(data), head_runs(runs, sources, heads))
        for data, (runs, sources) in zip(cfg.data, split_runs(cfg.run, len(cfg.data)), strict=True)
    ]

    def score(weights: Sequence[float]) -> list[float]:
        each = []
        for questions, runs in splits:
            with quiet(logging.getLogger("as2.metrics")):
                result = evaluate_runs(questions, {"s": combine(runs, weights, mode)}, metrics=[cfg.metric],
                                       protocol=cfg.protocol, ties=cfg.ties)  # fmt: skip
            each.append(result["runs"]["s"][cfg.metric])
        return each

    trained = StudentConfig(**model_cfg).combination_weights()
    before = score(trained)
    scored = [(w, score(w)) for w in weight_grid(len(heads), cfg.step)]
    weights, each = max(scored, key=lambda s: sum(s[1]) / len(s[1]))  # the first of equals: most even
    result = {
        "model": cfg.model,
        "data": cfg.data,
        "metric": cfg.metric,
        "protocol": cfg.protocol,
        "ties": cfg.ties,
        "combine": mode,
        "heads": heads,
        "weights": dict(zip(heads, weights, strict=True)),
        cfg.metric: sum(each) / len(each),
        "per_split": each,
        "trained_weights": dict(zip(heads, trained, strict=True)),
        f"trained_{cfg.metric}": sum(before) / len(before),
        "trained_per_split": before,
        "heads_alone": {h: score([float(i == j) for j in range(len(heads))]) for i, h in enumerate(heads)},
        "saved": cfg.save,
    }
    write_json(cfg.out, result)
    if cfg.save:
        model_cfg["head_weights"] = list(weights)
        atomic_write_text(config_path, json.dumps(model_cfg, indent=2) + "\n")
    logger.info(
        "%s: weights %s, %s %.4f (trained weights %s: %.4f)%s",
        cfg.model,
        result["weights"],
        cfg.metric,
        result[cfg.metric],
        result["trained_weights"],
        result[f"trained_{cfg.metric}"],
        f"; saved to {config_path}" if cfg.save else "",
    )
    print(json.dumps({k: result[k] for k in ("weights", cfg.metric, "per_split")}))
    return result


if __name__ == "__main__":
    cli(main)
