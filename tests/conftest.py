"""Shared fixtures. Nothing here touches the network; tiny models are built from configs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# precision "auto" follows the hardware; tests run fp32 on every machine so that their numbers agree (the
# tests of as2.precision and of explicit bf16 runs set what they need)
os.environ["AS2_PRECISION"] = "fp32"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def pickles():
    """Files under a folder that loaders read with pickle (an exported model must hold none)."""
    suffixes = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
    return lambda folder: [p for p in Path(folder).rglob("*") if p.suffix in suffixes]


@pytest.fixture
def one_thread():
    """torch on one thread for the test, as each rank of ``launch`` runs: sums reduce in the same order, so a
    single process and the ranks agree bit for bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def launch():
    """Run an entry point under the ``deepspeed`` launcher: ``launch(script, *args, ranks=2)``, one torch thread
    per rank, from the repository root; a failed run raises with the end of its output."""
    from as2.shards import launch as run_launcher

    def run(script: str, *args, ranks: int = 2):
        return run_launcher(script, args, ranks, threads=1, cwd=REPO, timeout=600)

    return run


@pytest.fixture(scope="session")
def unpad():
    """Markdown pipe tables without tabulate's column padding, so that a test matches a row as written."""
    return lambda text: "\n".join(re.sub(r" *\| *", " | ", line).strip() for line in text.splitlines())


WORDS = (
    "what who where when how is the a of in was born city capital paris france river long "
    "answer question sentence yes no it he she they and to for on by with as at from"
).split()


def make_tiny_encoder(path: Path, arch: str = "bert", layers: int = 4, seed: int = 0) -> Path:
    """A tiny random encoder (hidden 32, ``layers`` layers) with a WordPiece tokenizer, saved to ``path``."""
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        MPNetConfig,
        MPNetModel,
        MPNetTokenizerFast,
    )

    path.mkdir(parents=True, exist_ok=True)
    specials = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        if arch == "bert"
        else ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    vocab = (
        specials
        + WORDS
        + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
        + list("abcdefghijklmnopqrstuvwxyz?.,")
    )
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    ids = {w: i for i, w in enumerate(vocab)}
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    if arch == "bert":
        model = BertModel(BertConfig(**common))
        tok = BertTokenizerFast(vocab=ids, do_lower_case=True)  # transformers 5 ignores vocab_file
    else:
        model = MPNetModel(MPNetConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2))
        tok = MPNetTokenizerFast(vocab=ids, unk_token="<unk>", do_lower_case=True)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "bert", "bert")


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "mpnet", "mpnet", seed=1)


def make_split(
    path: Path, n_questions: int = 12, teachers: tuple[str, ...] = ("t1", "t2"), seed: int = 0
) -> Path:
    """A converted split of short synthetic questions with teacher-score columns."""
    import random

    from as2.data import Question, save

    rng = random.Random(seed)
    questions = []
    for i in range(n_questions):
        q = Question(str(i), f"where was {rng.choice(WORDS)} born ?")
        n = rng.randint(2, 6)
        pos = rng.randrange(n)
        for j in range(n):
            q.add(f"{i}-{j}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))), int(j == pos))
        for t in teachers:
            q.scores[t] = [rng.gauss(2.0 if lab else -1.0, 1.0) for lab in q.labels]
        questions.append(q)
    save(questions, path, {"source": "synthetic"})
    return path


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory) -> Path:
    return make_split(tmp_path_factory.mktemp("data") / "train")


@pytest.fixture(scope="session")
def split_factory():
    """``make_split`` itself, for tests that need splits of their own size or seed."""
    return make_split
