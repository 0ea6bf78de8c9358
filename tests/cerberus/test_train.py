"""cerberus/train.py end to end on tiny fixtures: learning, exact resume, 2 ranks, bf16 + ZeRO-2, TANDA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_modeling import PAIRS, inputs

from as2 import engine
from as2.config import ConfigError
from as2.data import DataError, load
from cerberus import train
from cerberus.modeling import CerberusStudent

REPO = Path(__file__).resolve().parents[2]
DS_FP32 = REPO / "configs" / "ds_cpu_fp32.json"


@pytest.fixture(scope="module")
def encoder(tiny_bert, tmp_path_factory) -> Path:
    return tiny_bert


def ds_json(path: Path, lr: float = 1e-3, micro: int = 4, bf16: bool = False, zero: int = 0) -> Path:
    """configs/ds_cpu_fp32.json with a higher learning rate (tiny runs must move), bf16 and a ZeRO stage."""
    cfg = json.loads(DS_FP32.read_text())
    cfg["train_micro_batch_size_per_gpu"] = micro
    cfg["optimizer"]["params"]["lr"] = lr
    cfg["scheduler"]["params"]["warmup_max_lr"] = lr
    cfg["bf16"] = {"enabled": bf16}
    cfg["zero_optimization"] = {"stage": zero}
    path.write_text(json.dumps(cfg))
    return path


def args(data, model, out, ds=DS_FP32, **extra) -> list[str]:
    values = {
        "train_data": data,
        "model": model,
        "output_dir": out,
        "deepspeed_config": ds,
        "heads": ["t1", "t2"],
        "body_layers": 2,
        "head_layers": 1,
        "max_length": 32,
        "log_steps": 1,
        **extra,
    }
    argv = []
    for key, value in values.items():
        if value is not None:  # None leaves the flag out
            argv += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return argv


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_a_few_steps_lower_the_loss(tiny_split, encoder, tmp_path):
    # one micro-batch holds all 12 questions, so every step sees the same pairs and the curve is smooth
    out = tmp_path / "run"
    ds = ds_json(tmp_path / "ds.json", lr=1e-2, micro=12)
    summary = train.main(args(tiny_split, encoder, out, ds, epochs=20))
    log = read_log(out)
    assert summary["global_step"] == summary["total_steps"] == len(log) == 20
    assert all({"loss", "loss/t1", "loss/t2"} <= set(row) for row in log)
    for row in log:
        assert row["loss"] == pytest.approx(row["loss/t1"] + row["loss/t2"], rel=1e-5)
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["heads"] == ["t1", "t2"] and saved["world_size"] == 1
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "latest").is_file()
    model = CerberusStudent.from_pretrained(out / "model")
    assert model.head_names == ["t1", "t2"]


def test_fused_weight_adds_a_term_for_the_combined_score(tiny_split, encoder, tmp_path):
    out = tmp_path / "run"
    ds = ds_json(tmp_path / "ds.json", lr=1e-2, micro=12)
    train.main(args(tiny_split, encoder, out, ds, epochs=3, fused_weight=0.5, head_weights=[0.7, 0.3]))
    for row in read_log(out):
        assert row["loss/combined"] > 0
        expected = row["loss/t1"] + row["loss/t2"] + 0.5 * row["loss/combined"]
        assert row["loss"] == pytest.approx(expected, rel=1e-5)
    # labels through the combination only: heads distilled alone (alpha 0), the combined term on labels
    out = tmp_path / "labels_on_combined"
    train.main(args(tiny_split, encoder, out, ds, epochs=1, fused_weight=1.0, alpha=0.0, fused_alpha=1.0))
    assert all(row["loss/combined"] > 0 for row in read_log(out))
    # and the reverse: heads on labels alone, the teachers' columns loaded for the combined term only
    out = tmp_path / "teachers_on_combined"
    train.main(args(tiny_split, encoder, out, ds, epochs=1, fused_weight=1.0, alpha=1.0, fused_alpha=0.0))
    assert all(row["loss/combined"] >= 0 for row in read_log(out))
    # a config's fused_alpha with the term switched off (`--fused_weight 0`): the same run as without it
    train.main(args(tiny_split, encoder, tmp_path / "off", ds, epochs=1, fused_weight=0.0, fused_alpha=1.0))
    train.main(args(tiny_split, encoder, tmp_path / "plain", ds, epochs=1))
    off, plain = read_log(tmp_path / "off"), read_log(tmp_path / "plain")
    assert [set(r) for r in off] == [set(r) for r in plain] and all("loss/combined" not in r for r in off)
    assert [r["loss"] for r in off] == pytest.approx([r["loss"] for r in plain], rel=1e-6)
    with pytest.raises(ValueError, match="fused_alpha must be in"):
        train.main(args(tiny_split, encoder, tmp_path / "r1", fused_weight=1.0, fused_alpha=1.5))
    with pytest.raises(ValueError, match="learned pooler"):
        train.main(args(tiny_split, encoder, tmp_path / "r2", fused_weight=1.0, combine="pooler"))
    with pytest.raises(ValueError, match="fused_weight must be >= 0"):
        train.main(args(tiny_split, encoder, tmp_path / "r3", fused_weight=-1.0))


class Interrupted(Exception):
    pass


def test_resumed_run_matches_an_uninterrupted_one(tiny_split, encoder, tmp_path, monkeypatch):
    # 12 groups, 4 per micro-batch: 3 steps per epoch, 6 in all; dropout 0.1 makes the RNG state matter
    ds = ds_json(tmp_path / "ds.json")  # WarmupDecayLR: the schedule state must travel too
    run = {"epochs": 2, "save_steps": 1, "heads": ["t1", "mix=t1+t2"]}
    a = train.main(args(tiny_split, encoder, tmp_path / "a", ds, **run))
    assert a["global_step"] == 6 and a["resumed_from_step"] == 0

    real_save, saved = engine.save, []

    def save_then_die(eng, out_dir, state, keep=1):
        real_save(eng, out_dir, state, keep)
        saved.append(state.global_step)
        if state.global_step == 4:  # mid-epoch 2
            raise Interrupted

    monkeypatch.setattr(engine, "save", save_then_die)
    with pytest.raises(Interrupted):
        train.main(args(tiny_split, encoder, tmp_path / "b", ds, **run))
    monkeypatch.undo()
    assert saved == [1, 2, 3, 4]
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text().strip() == "step4"
    assert not (tmp_path / "b" / "model").exists()

    monkeypatch.setattr(engine, "save", lambda eng, out_dir, state, keep=1: [
        saved.append(state.global_step), real_save(eng, out_dir, state, keep)])  # fmt: skip
    b = train.main(args(tiny_split, encoder, tmp_path / "b", ds, **run))
    monkeypatch.undo()
    assert saved == [1, 2, 3, 4, 5, 6]  # steps 5 and 6 only: a run that started over would save 1-4 again
    assert b["global_step"] == 6 and b["epochs_done"] == 2
    assert b["resumed_from_step"] == 4  # its seconds are those of steps 5-6: the summary says so
    assert [r["step"] for r in read_log(tmp_path / "b")] == [1, 2, 3, 4, 5, 6]
    wa = load_file(str(tmp_path / "a" / "model" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert b["loss"] == a["loss"]


def test_deepspeed_launcher_with_two_cpu_ranks(tiny_split, encoder, tmp_path, launch):
    out = tmp_path / "run"
    # no compile on first use (as2.engine skips DeepSpeed's shm op), so this needs no build cache
    launch(
        "cerberus/train.py", *args(tiny_split, encoder, out, epochs=2, save_steps=1)
    )  # 1 step per epoch per rank
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 2
    assert CerberusStudent.from_pretrained(out / "model").head_names == ["t1", "t2"]


def test_bf16_with_zero_stage_2_saves_a_loadable_student(tiny_split, encoder, tmp_path):
    out = tmp_path / "run"
    ds = ds_json(tmp_path / "ds.json", bf16=True, zero=2)
    summary = train.main(args(tiny_split, encoder, out, ds, loss="listwise"))
    assert summary["global_step"] == 3 and summary["loss"] > 0
    model = CerberusStudent.from_pretrained(out / "model")
    weights = load_file(str(out / "model" / "model.safetensors"))
    assert all(w.dtype == torch.float32 for w in weights.values())
    with torch.no_grad():
        scores = model(**inputs(out / "model"))["score"]
    assert scores.shape == (len(PAIRS),) and torch.isfinite(scores).all()


def test_tanda_two_label_only_runs(tiny_split, encoder, tmp_path):
    ds = ds_json(tmp_path / "ds.json")
    # 3 steps: DeepSpeed's WarmupLR gives the first two optimizer steps the minimum learning rate, 0
    common = {"heads": ["ce"], "alpha": 1, "body_layers": 3, "head_layers": 1}
    first = train.main(args(tiny_split, encoder, tmp_path / "first", ds, **common))
    assert first["heads"] == ["ce"] and "loss/ce" in first
    second = train.main(
        args(tiny_split, None, tmp_path / "second", ds, init_from=tmp_path / "first" / "model", **common)
    )
    assert second["global_step"] == 3
    w1 = load_file(str(tmp_path / "first" / "model" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "second" / "model" / "model.safetensors"))
    assert w1.keys() == w2.keys() and any(not torch.equal(w1[k], w2[k]) for k in w1)


def test_init_from_with_other_heads_is_an_error(tiny_split, encoder, tmp_path):
    from transformers import AutoTokenizer

    from cerberus.modeling import StudentConfig

    student = CerberusStudent.from_encoder(str(encoder), StudentConfig(head_names=["ce"], body_layers=1))
    student.save_pretrained(tmp_path / "ce", tokenizer=AutoTokenizer.from_pretrained(str(encoder)))
    with pytest.raises(ConfigError, match=r"has heads \['ce'\]"):
        train.main(args(tiny_split, None, tmp_path / "run", init_from=tmp_path / "ce", alpha=1))


def test_a_head_without_its_teacher_column_is_an_error(tiny_split, encoder, tmp_path):
    with pytest.raises(DataError, match=r"head 'mix' needs teacher column\(s\) \['t9'\]"):
        train.main(args(tiny_split, encoder, tmp_path / "run", heads=["t1", "mix=t2+t9"]))


def test_config_errors(tiny_split, encoder, tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(f"train_data: {tiny_split}\nheads: [t1]\nlerning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="lerning_rate"):
        train.main(["--config", str(yaml_file), "--model", str(encoder), "--output_dir", str(tmp_path)])
    with pytest.raises(ConfigError, match="train_data is required"):
        train.main(args(None, encoder, tmp_path / "run"))
    with pytest.raises(ConfigError, match="exactly one of model"):
        train.main(args(tiny_split, None, tmp_path / "run"))
    with pytest.raises(DataError, match="not a converted AS2 split"):
        train.main(args(tmp_path / "missing", encoder, tmp_path / "run"))


def test_a_changed_config_starts_over_and_a_volatile_one_resumes(tiny_split, encoder, tmp_path, capfd):
    """Bug caught: checkpoints of one config resumed under another (a changed loss or run length trains on
    from a state that config never produced), or a log-only change throwing finished work away."""
    ds = ds_json(tmp_path / "ds.json")
    out = tmp_path / "run"
    first = train.main(args(tiny_split, encoder, out, ds, epochs=1))
    assert first["global_step"] == 3 and len(read_log(out)) == 3
    first_log = read_log(out)
    # log_steps changes nothing the run computes: the finished run is kept (no step is trained again)
    again = train.main(args(tiny_split, encoder, out, ds, epochs=1, log_steps=2))
    assert again["global_step"] == 3 and len(read_log(out)) == 3
    assert "loss" not in again  # the summary of a run that trained no step has no loss
    # a new loss weight makes the checkpoints stale: training starts from step 1 and the log anew
    other = train.main(args(tiny_split, encoder, out, ds, epochs=1, alpha=0.5))
    assert other["global_step"] == 3 and [r["step"] for r in read_log(out)] == [1, 2, 3]
    assert "loss" in other and read_log(out)[0]["loss"] != first_log[0]["loss"]  # trained again
    assert json.loads((out / "run_key.json").read_text())["config"]["alpha"] == 0.5
    # a longer run whose learning-rate schedule spans the run: another schedule from step 1, so it starts over
    capfd.readouterr()
    longer = train.main(args(tiny_split, encoder, out, ds, epochs=2, alpha=0.5))
    assert longer["global_step"] == 6 and [r["step"] for r in read_log(out)] == [1, 2, 3, 4, 5, 6]
    err = capfd.readouterr().err
    assert "['ds_config'] changed" in err and "schedule spans the run" in err, err
    assert "loss" in longer and read_log(out)[0]["loss"] != first_log[0]["loss"]
    # without a schedule, a longer run continues the shorter one: only the new steps are trained
    constant = json.loads(ds.read_text())
    del constant["scheduler"]
    ds.write_text(json.dumps(constant))
    train.main(args(tiny_split, encoder, out, ds, epochs=1, alpha=0.5))
    more = train.main(args(tiny_split, encoder, out, ds, epochs=2, alpha=0.5))
    assert more["global_step"] == 6 and [r["step"] for r in read_log(out)] == [1, 2, 3, 4, 5, 6]
    assert json.loads((out / "train_log.jsonl").read_text().splitlines()[3])["epoch"] == 1
    with pytest.raises(ConfigError, match="beyond this run's 3 steps"):  # not the 6-step model, silently
        train.main(args(tiny_split, encoder, out, ds, epochs=1, alpha=0.5))


def test_a_run_key_of_an_earlier_version_keeps_its_checkpoints(tiny_split, encoder, tmp_path):
    """Bug caught: every run saved before the run length became volatile (its key holds max_steps, epochs and
    an unresolved "auto" schedule) thrown away on its next start."""
    ds = ds_json(tmp_path / "ds.json")
    out = tmp_path / "run"
    train.main(args(tiny_split, encoder, out, ds, epochs=1))
    key = json.loads((out / "run_key.json").read_text())
    key["config"].update(max_steps=0, epochs=1)  # as the earlier version wrote it
    key["config"]["ds_config"]["scheduler"]["params"].update(total_num_steps="auto", warmup_num_steps="auto")
    (out / "run_key.json").write_text(json.dumps(key))
    again = train.main(args(tiny_split, encoder, out, ds, epochs=1))
    assert again["global_step"] == 3 and "loss" not in again  # resumed at its end: nothing trained again


def test_a_run_key_without_a_field_added_since_resumes_at_its_default(tiny_split, encoder, tmp_path):
    """Bug caught: a new config field (``fused_weight``) made every earlier run start over."""
    ds = ds_json(tmp_path / "ds.json")
    out = tmp_path / "run"
    train.main(args(tiny_split, encoder, out, ds, epochs=1))
    key = json.loads((out / "run_key.json").read_text())
    del key["config"]["fused_weight"]  # as the earlier version wrote it
    (out / "run_key.json").write_text(json.dumps(key))
    again = train.main(args(tiny_split, encoder, out, ds, epochs=1))
    assert again["global_step"] == 3 and "loss" not in again  # resumed at its end: nothing trained again
    (out / "run_key.json").write_text(json.dumps(key))
    other = train.main(args(tiny_split, encoder, out, ds, epochs=1, fused_weight=1.0))  # not the default
    assert "loss" in other


def test_precision_auto_is_saved_and_a_new_precision_starts_over(tiny_split, encoder, tmp_path, monkeypatch):
    """Bug caught: a bf16 checkpoint resumed as fp32 (or the reverse) when "auto" resolves differently."""
    cfg = json.loads(ds_json(tmp_path / "ds.json").read_text())
    ds = tmp_path / "auto.json"
    ds.write_text(json.dumps({**cfg, "bf16": {"enabled": "auto"}}))
    out = tmp_path / "run"
    monkeypatch.setenv("AS2_PRECISION", "fp32")
    first = train.main(args(tiny_split, encoder, out, ds, epochs=1))
    assert first["precision"] == "fp32" and first["hardware"]["cpu"]
    assert json.loads((out / "ds_config.json").read_text())["bf16"]["enabled"] is False
    monkeypatch.setenv("AS2_PRECISION", "bf16")
    second = train.main(args(tiny_split, encoder, out, ds, epochs=1))
    assert second["precision"] == "bf16" and [r["step"] for r in read_log(out)] == [1, 2, 3]
    assert "loss" in second  # trained again, not the fp32 checkpoint kept
    assert json.loads((out / "ds_config.json").read_text())["bf16"]["enabled"] is True


def test_max_negatives_trains_on_a_seeded_sample(tiny_split, encoder, tmp_path, monkeypatch):
    """Bug caught: max_negatives ignored (every negative trained on) or a sample that changes per run."""
    samples = []

    def recorded(ds, k, seed):
        out = train_sample_negatives(ds, k, seed)
        samples.append([(row["cids"], row["labels"]) for row in out])
        return out

    train_sample_negatives = train.sample_negatives
    monkeypatch.setattr(train, "sample_negatives", recorded)
    for run in ("a", "b"):
        summary = train.main(args(tiny_split, encoder, tmp_path / run, epochs=1, max_negatives=1))
        assert summary["global_step"] >= 1
    assert samples[0] == samples[1]
    assert all(labels.count(0) <= 1 for _, labels in samples[0])
    assert sum(len(c) for c, _ in samples[0]) < sum(len(c) for c in load(tiny_split)["cids"])
    with pytest.raises(ValueError, match="max_negatives"):
        train.TrainConfig(train_data="x", output_dir="y", model="m", heads=["t1"], max_negatives=-1)
