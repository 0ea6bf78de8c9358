"""cerberus.bench: teachers, ensemble and student timed side by side; metrics joined from a report."""

from __future__ import annotations

import json

import pytest
import torch

from as2 import evaluate
from cerberus import bench, predict
from cerberus.modeling import CerberusStudent, StudentConfig
from data_prep import teacher_scores


def save_student(tiny_bert, out, heads):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = CerberusStudent.from_encoder(str(tiny_bert), StudentConfig(head_names=heads, body_layers=2))
    model.save_pretrained(out, tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert)))
    return out


def test_bench_rows_costs_and_metrics(tiny_bert, tiny_split, tmp_path, monkeypatch, unpad):
    t1 = save_student(tiny_bert, tmp_path / "t1", ["t1"])
    t2 = save_student(tiny_bert, tmp_path / "t2", ["t2"])
    specs = {"a": {"kind": "cerberus", "path": str(t1)}, "b": {"kind": "cerberus", "path": str(t2)}}
    teacher_scores.main(
        [
            "--data",
            str(tiny_split),
            "--output",
            str(tmp_path / "scored"),
            "--runs_dir",
            str(tmp_path / "runs"),
            "--teachers",
            json.dumps(specs),
            "--max_length",
            "32",
        ]
    )
    student = save_student(tiny_bert, tmp_path / "student", ["a", "b"])
    predict.main(
        [
            "--model",
            str(student),
            "--data",
            str(tiny_split),
            "--out",
            str(tmp_path / "runs"),
            "--max_length",
            "32",
        ]
    )
    runs = [str(tmp_path / "runs" / f"{n}.trec") for n in ("a", "b", "cerberus", "cerberus.a", "cerberus.b")]
    evaluate.main(["--data", str(tiny_split), "--out", str(tmp_path / "eval"), "--run", *runs])

    result = bench.main(
        [
            "--data",
            str(tmp_path / "scored"),
            "--student",
            str(student),
            "--out",
            str(tmp_path / "bench"),
            "--report",
            str(tmp_path / "eval" / "report.json"),
            "--pairs",
            "32",
            "--max_length",
            "32",
        ]
    )
    rows = result["systems"]
    assert list(rows) == ["a", "b", "ensemble", "cerberus.a", "cerberus.b", "cerberus"]
    assert rows["ensemble"]["params"] == rows["a"]["params"] + rows["b"]["params"]
    assert (
        rows["ensemble"]["ms_per_pair_b32_fp32"]
        == rows["a"]["ms_per_pair_b32_fp32"] + rows["b"]["ms_per_pair_b32_fp32"]
    )
    native = result["hardware"]["bf16_native"]
    assert result["precisions"] == (["fp32", "bf16"] if native else ["fp32"])
    for name in ("a", "b", "cerberus"):
        assert rows[name]["ms_per_pair_b1_fp32"] > 0
        assert (
            rows[name]["ms_per_pair_b32_int8"] > 0 and rows[name]["ms_per_pair_b1_int8"] > 0
        )  # trained here
        assert rows[name]["gflops_b32_fp32"] == pytest.approx(
            rows[name]["flops_per_pair"] / rows[name]["ms_per_pair_b32_fp32"] / 1e6
        )
        assert ("pairs_per_s_b32_bf16" in rows[name]) == native  # emulated bf16 is never timed
    onnx = bench.inference_precisions()[1:]  # ONNX Runtime where installed: the student only
    assert all(rows["cerberus"][f"ms_per_pair_b32_{p}"] > 0 for p in onnx)
    assert not any(k.endswith("onnx") for k in rows["a"])
    # FLOPs of a one-head tiny BERT (2 + 1 layers, hidden 32): at least its encoder's matmuls, far below 1e8
    assert 2 * 3 * 12 * 32 * 32 * 8 < rows["a"]["flops_per_pair"] < 1e8
    assert result["matmul_peak_gflops"]["fp32"] > 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert rows["cerberus.a"]["map"] == report["runs"]["cerberus.a"]["map"]
    assert "params" not in rows["cerberus.a"]  # heads are timed as part of their student
    table = unpad((tmp_path / "bench" / "bench.md").read_text())
    assert table.splitlines()[0].startswith("| system | precision@1 | map | mrr |")
    assert len(table.splitlines()) == 2 + len(rows)

    # the ensemble of chosen members only, and more students (baselines) timed beside the first; on a CPU
    # whose bf16 is emulated (oneDNN capped at AVX2 makes any CPU one) only fp32 is timed
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    base = ["--data", str(tmp_path / "scored"), "--out", str(tmp_path / "bench2"), "--pairs", "32"]
    more = bench.main([*base, "--ensemble", "a", "b", "--students", f"kd_a={t1}", "--max_length", "32"])
    assert more["precisions"] == ["fp32"] and more["hardware"]["auto_precision"] == "fp32"
    assert not any("ms_per_pair_b32_bf16" in r for r in more["systems"].values())
    assert list(more["systems"]) == ["a", "b", "ensemble", "kd_a"]
    assert more["systems"]["ensemble"]["members"] == ["a", "b"]
    assert more["systems"]["kd_a"]["params"] == rows["a"]["params"]
    with pytest.raises(ValueError, match=r"ensemble members \['c'\]"):
        bench.main([*base, "--ensemble", "a", "c"])
    with pytest.raises(ValueError, match="NAME=FOLDER"):
        bench.main([*base, "--students", str(t1)])
