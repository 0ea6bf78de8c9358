"""twin/train.py: a few DeepSpeed steps on the tiny split distil teacher t1 and write the twin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from twin import train
from twin.encode import encode
from twin.modeling import TwinModel


def test_train_lowers_loss_and_writes_model(tiny_bert, tiny_split, tmp_path):
    ds_config = tmp_path / "ds.json"
    ds_config.write_text(
        json.dumps(
            {
                "train_micro_batch_size_per_gpu": 4,
                "optimizer": {"type": "AdamW", "params": {"lr": 3e-3, "torch_adam": True}},
                "zero_optimization": {"stage": 0},
                "steps_per_print": 1000000,
            }
        )
    )
    out = tmp_path / "run"
    torch.manual_seed(0)
    summary = train.main(
        [
            "--train_data", str(tiny_split),
            "--output_dir", str(out),
            "--deepspeed_config", str(ds_config),
            "--model", str(tiny_bert),
            "--teacher", "t1",
            "--loss", "mse",
            "--alpha", "0.1",
            "--inbatch", "0.1",
            "--max_length", "32",
            "--epochs", "4",
            "--log_steps", "1",
        ]
    )  # fmt: skip
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert summary["global_step"] == 12 == len(log)
    assert {"loss/distill", "loss/hard", "loss/inbatch"} <= set(log[0])
    first, last = (
        np.mean([r["loss/distill"] for r in log[:3]]),
        np.mean([r["loss/distill"] for r in log[-3:]]),
    )
    assert last < 0.8 * first, (first, last)
    assert json.loads((out / "summary.json").read_text())["teacher"] == "t1"
    assert (out / "config.yaml").is_file()
    model = TwinModel.from_pretrained(out / "model")
    emb = encode(model, ["where was he born ?"], "query")
    assert emb.shape == (1, 32) and np.isfinite(emb).all()


class Interrupted(Exception):
    pass


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tiny_bert, tiny_split, tmp_path, monkeypatch):
    """Bugs caught: a resume that restarts from scratch or skips data, RNG or schedule state lost in the
    checkpoint, and steps logged twice (those trained after the last checkpoint and again on resume)."""
    from safetensors.torch import load_file

    from as2 import engine

    def run(out):
        args = ["--train_data", str(tiny_split), "--model", str(tiny_bert), "--teacher", "t1"]
        args += ["--max_length", "32", "--deepspeed_config", "configs/ds_twin_fp32.json", "--epochs", "4"]
        return train.main([*args, "--save_steps", "2", "--log_steps", "1", "--output_dir", str(out)])

    assert run(tmp_path / "a")["global_step"] == 4  # one step per epoch

    real_save = engine.save

    def die_before_the_last_save(eng, out_dir, state, keep=1):
        if state.global_step == 4:  # steps 3 and 4 are trained and logged, but not checkpointed
            raise Interrupted
        real_save(eng, out_dir, state, keep)

    monkeypatch.setattr(engine, "save", die_before_the_last_save)
    with pytest.raises(Interrupted):
        run(tmp_path / "b")
    monkeypatch.undo()
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text().strip() == "step2"
    assert [r["step"] for r in read_log(tmp_path / "b")] == [1, 2, 3, 4]
    saved = []
    monkeypatch.setattr(engine, "save", lambda eng, out_dir, state, keep=1: [
        saved.append(state.global_step), real_save(eng, out_dir, state, keep)])  # fmt: skip
    assert run(tmp_path / "b")["global_step"] == 4
    assert saved == [4]  # steps 3 and 4 only: a run that started over would save step 2 again
    assert [r["step"] for r in read_log(tmp_path / "b")] == [1, 2, 3, 4]  # 3 and 4 once, from the resume
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def read_log(out) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
