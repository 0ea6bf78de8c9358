"""as2.precision: `auto` follows the hardware, explicit values win, emulated bf16 warns; DeepSpeed JSONs."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from as2 import engine, precision


@pytest.fixture
def native(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) bf16 instructions, whatever this machine has."""

    def set_native(value: bool):
        monkeypatch.setattr(precision, "cpu_bf16_instructions", lambda: ["avx512_bf16"] if value else [])

    monkeypatch.delenv(precision.ENV, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    return set_native


def test_auto_follows_the_bf16_instructions(native):
    """Bug caught: auto choosing bf16 on a CPU that emulates it (12x slower training there)."""
    native(True)
    assert precision.resolve("auto", "cpu") == "bf16"
    native(False)
    assert precision.resolve("auto", "cpu") == "fp32"
    assert precision.dtype("auto", "cpu") is torch.float32


def test_onednn_capped_below_bf16_counts_as_emulated(native, monkeypatch):
    """Bug caught: ONEDNN_MAX_CPU_ISA=AVX2 makes bf16 emulated although the CPU flags list it."""
    native(True)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not precision.bf16_native("cpu") and precision.resolve("auto", "cpu") == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert precision.resolve("auto", "cpu") == "bf16"


def test_explicit_values_and_the_environment_win(native, monkeypatch, caplog):
    """Bug caught: an explicit fp32/bf16 or $AS2_PRECISION being overridden by the hardware choice."""
    native(True)
    assert precision.resolve("fp32", "cpu") == "fp32"
    monkeypatch.setenv(precision.ENV, "fp32")
    assert precision.resolve("auto", "cpu") == "fp32"
    assert precision.resolve("bf16", "cpu") == "bf16"  # explicit beats the environment
    native(False)
    monkeypatch.setattr(precision, "bf16_slowdown", lambda device="cpu": 76.0)
    monkeypatch.setenv(precision.ENV, "bf16")
    precision._warn_emulated.cache_clear()  # another test may have been warned already
    with caplog.at_level(logging.WARNING, logger="as2.precision"):
        assert precision.resolve("auto", "cpu") == "bf16"
        assert precision.resolve("bf16", "cpu") == "bf16"
    assert "emulated" in caplog.text and "76x slower" in caplog.text
    assert caplog.text.count("emulated") == 1  # once per process, not once per batch
    monkeypatch.setenv(precision.ENV, "fp16")
    with pytest.raises(ValueError, match=r"\$AS2_PRECISION must be one of"):
        precision.resolve("auto", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("int4", "cpu")


def test_autocast_runs_fp32_as_a_no_op_and_bf16_in_bf16(native):
    native(False)
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with precision.autocast("auto", "cpu"):
        assert layer(x).dtype == torch.float32
    with precision.autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16


def test_hardware_names_the_cpu_and_the_choice(native):
    native(False)
    info = precision.hardware("cpu")
    assert info["cpu"] and info["threads"] == torch.get_num_threads()
    assert info["bf16_native"] is False and info["auto_precision"] == "fp32"
    assert precision.matmul_gflops(torch.float32, n=64, seconds=0.01) > 0


def test_deepspeed_json_auto_is_resolved(native, tmp_path):
    """Bug caught: "auto" passed through to DeepSpeed, or true silently turned off."""
    path = tmp_path / "ds.json"
    base = {"train_micro_batch_size_per_gpu": 2}
    for enabled, has_bf16, expected in (("auto", True, "bf16"), ("auto", False, "fp32"), (True, False, "bf16"),
                                        (False, True, "fp32")):  # fmt: skip
        native(has_bf16)
        path.write_text(json.dumps({**base, "bf16": {"enabled": enabled}}))
        cfg = engine.load_ds_config(path)
        assert cfg["bf16"]["enabled"] is (expected == "bf16") and engine.ds_precision(cfg) == expected
    assert engine.ds_precision(engine.load_ds_config(_write(path, base))) == "fp32"
    with pytest.raises(ValueError, match=r'must be true, false or "auto"'):
        engine.load_ds_config(_write(path, {**base, "bf16": {"enabled": "yes"}}))


def _write(path, cfg):
    path.write_text(json.dumps(cfg))
    return path
