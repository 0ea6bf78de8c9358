"""cerberus.peer: the sentence-transformers CrossEncoder baseline trains with that library's trainer and loads
back as a CrossEncoder that teacher scoring can use."""

from __future__ import annotations

import json

import numpy as np

from as2.data import Question, from_dataset, load, save
from cerberus import peer


def test_peer_trains_every_pair_and_saves_a_cross_encoder(tiny_bert, tiny_split, tmp_path, pickles):
    """Bugs caught: pairs of questions without a correct candidate dropped (raw protocol), a model folder that
    sentence-transformers cannot load, a summary without the precision it ran in."""
    questions = from_dataset(load(tiny_split))
    extra = Question("none", "who was born in paris ?")  # no correct candidate: negatives all the same
    extra.add("none-0", "the river is long .", 0)
    extra.add("none-1", "the capital of france .", 0)
    save([*questions, extra], tmp_path / "train")
    out = tmp_path / "peer"
    argv = ["--model", str(tiny_bert), "--train_data", str(tmp_path / "train"), "--max_steps", "3",
            "--batch_size", "8", "--max_length", "32"]  # fmt: skip
    summary = peer.main([*argv, "--output_dir", str(out)])
    assert summary["questions"] == len(questions) + 1
    assert summary["pairs"] == sum(len(q.cids) for q in questions) + 2
    assert summary["steps"] == 3 and summary["precision"] == "fp32"  # the tests run fp32 (conftest)
    assert json.loads((out / "summary.json").read_text())["hardware"]["cpu"]
    assert not (out / "trainer").exists() and not pickles(out / "model")
    clean = peer.main(
        [*argv, "--output_dir", str(tmp_path / "clean"), "--protocol", "clean", "--precision", "bf16"]
    )
    assert clean["questions"] == len(questions) and clean["precision"] == "bf16"  # bf16 autocast on a CPU too

    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(out / "model"), device="cpu")
    scores = model.predict([("where was he born ?", "he was born in paris ."), ("who ?", "the river .")])
    assert np.isfinite(scores).all() and scores.shape == (2,)
