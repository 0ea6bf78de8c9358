"""Numeric precision chosen by the hardware: ``auto`` resolves to ``bf16`` where bf16 is native, else ``fp32``.

bf16 halves memory traffic and, where the hardware has bf16 instructions, runs matrix products faster than
fp32. Where it has none (an AVX2-only CPU), oneDNN emulates bf16 in software: there a bf16 matrix product ran
80-170x and a training step 12-13x slower than fp32. So nothing here assumes bf16; every entry point takes
``precision`` (``auto`` | ``fp32`` | ``bf16``) and resolves ``auto`` once from the hardware:

- CUDA: ``torch.cuda.is_bf16_supported()``;
- x86 CPU: ``avx512_bf16`` or ``amx_bf16`` (AMX tiles) instructions, as torch's CPU probe reports them;
- Arm CPU: the ``bf16`` feature of ``/proc/cpuinfo``;
- and on a CPU, unless ``ONEDNN_MAX_CPU_ISA`` caps torch's matmul library below its bf16 kernels.

``AS2_PRECISION=fp32`` (or ``bf16``) in the environment decides ``auto`` for a whole pipeline. An explicit
``fp32`` / ``bf16`` always wins; asking for ``bf16`` where it is emulated runs, with a warning that states how
much slower a bf16 matrix product measured than fp32 on this machine. :func:`hardware` describes the machine
(CPU model, bf16 support, threads) for saved configs and reports.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
RESOLVED = ("fp32", "bf16")
ENV = "AS2_PRECISION"


def default_device() -> str:
    """The device models run on here: ``cuda`` where one is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check(precision: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``precision`` if it is one of ``allowed``, else a ``ValueError`` naming them."""
    if precision not in allowed:
        raise ValueError(f"precision must be one of {allowed}, got {precision!r}")
    return precision


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    if not path.is_file():
        return fields
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or platform.machine()


def cpu_bf16_instructions() -> list[str]:
    """The bf16 instruction sets this CPU has (empty: bf16 is emulated in software)."""
    import torch

    found = []
    if hasattr(torch.cpu, "_is_avx512_bf16_supported") and torch.cpu._is_avx512_bf16_supported():
        found.append("avx512_bf16")
    if hasattr(torch.cpu, "_is_amx_tile_supported") and torch.cpu._is_amx_tile_supported():
        found.append("amx_bf16")
    flags = set((_cpuinfo().get("flags") or _cpuinfo().get("Features") or "").split())
    found += [f for f in ("avx512_bf16", "amx_bf16", "bf16") if f in flags and f not in found]
    return found


def onednn_isa_allows_bf16() -> bool:
    """False where ``ONEDNN_MAX_CPU_ISA`` caps oneDNN (torch's CPU matmul library) below bf16 kernels.

    ``ONEDNN_MAX_CPU_ISA=AVX2`` makes a bf16-capable CPU behave like an AVX2-only one (bf16 emulated).
    """
    isa = (_onednn_cap() or "").upper()
    return not isa or isa in ("ALL", "DEFAULT") or any(k in isa for k in ("BF16", "FP16", "AMX", "AVX10"))


def _onednn_cap() -> str | None:
    """The ISA cap oneDNN is started with, if any (``ONEDNN_MAX_CPU_ISA``, formerly ``DNNL_MAX_CPU_ISA``)."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")


def bf16_native(device: str | torch.device | None = None) -> bool:
    """Whether ``device`` runs bf16 in hardware (not emulated)."""
    import torch

    device = torch.device(device or default_device())
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(cpu_bf16_instructions()) and onednn_isa_allows_bf16()
    return False


def resolve(precision: str, device: str | torch.device | None = None) -> str:
    """``fp32`` or ``bf16``: ``auto`` decided by ``$AS2_PRECISION`` or the hardware; explicit values kept.

    An explicit (or environment-given) ``bf16`` on hardware that emulates it logs a warning with the
    measured slowdown of a matrix product.
    """
    check(precision)
    device = device or default_device()
    if precision == "auto":
        env = os.environ.get(ENV, "").strip().lower()
        if env and env != "auto":
            if env not in RESOLVED:
                raise ValueError(f"${ENV} must be one of {PRECISIONS}, got {env!r}")
            precision = env
        else:
            return "bf16" if bf16_native(device) else "fp32"
    if precision == "bf16" and not bf16_native(device):
        _warn_emulated(str(device).split(":")[0])
    return precision


@functools.cache
def _warn_emulated(device: str) -> None:
    """Once per process and device: bf16 asked for where it is emulated, with the measured slowdown."""
    logger.warning(
        "bf16 was asked for, but %s runs it emulated (no bf16 instructions, or ONEDNN_MAX_CPU_ISA below "
        "them): a bf16 matrix product ran %.0fx slower than fp32 here (precision auto chooses fp32)",
        describe_device(device),
        bf16_slowdown(device),
    )


def torch_dtype(resolved: str) -> torch.dtype:
    """The torch dtype of a resolved precision (``fp32`` or ``bf16``)."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[resolved]


def dtype(precision: str, device: str | torch.device | None = None) -> torch.dtype:
    """The torch dtype of a (resolved or ``auto``) precision."""
    return torch_dtype(resolve(precision, device))


def autocast(precision: str, device: str | torch.device | None = None):
    """A context that runs the forward pass in ``precision`` (resolved; fp32 is a no-op)."""
    import torch

    device = torch.device(device or default_device())
    resolved = resolve(precision, device)
    if resolved == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch_dtype(resolved))


def matmul_gflops(dtype: torch.dtype, n: int = 256, seconds: float = 0.2, device: str = "cpu") -> float:
    """GFLOP/s of an ``n x n`` matrix product in ``dtype`` (median of repeats after a warm-up)."""
    import torch

    from as2.timing import steady

    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)

    def one_pass() -> None:
        torch.matmul(a, b)
        if device == "cuda":
            torch.cuda.synchronize()

    return 2 * n**3 / steady(one_pass, repeats=3, budget_s=seconds)[0] / 1e9


@functools.cache
def bf16_slowdown(device: str = "cpu") -> float:
    """How many times slower a bf16 matrix product runs than an fp32 one here (< 1: bf16 is faster)."""
    import torch

    return matmul_gflops(torch.float32, device=device) / matmul_gflops(torch.bfloat16, device=device)


def describe_device(device: str | torch.device | None = None) -> str:
    import torch

    device = torch.device(device or default_device())
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_model()}"


def hardware(device: str | torch.device | None = None) -> dict[str, Any]:
    """The machine a result was measured on: device, CPU, bf16 support, threads, torch version."""
    import torch

    device = torch.device(device or default_device())
    info: dict[str, Any] = {
        "device": describe_device(device),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16_instructions": cpu_bf16_instructions(),
        "onednn_max_cpu_isa": _onednn_cap(),
        "bf16_native": bf16_native(device),
        "auto_precision": resolve("auto", device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device.type == "cuda" and torch.cuda.is_available():
        info["cuda_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    return info


def _memory_gib() -> float | None:
    try:
        return round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    """``python -m as2.precision``: this machine, what ``auto`` resolves to, and fp32 / bf16 matmul speed."""
    import json

    info = hardware()
    for name in RESOLVED:
        info[f"matmul_gflops_{name}"] = round(matmul_gflops(torch_dtype(name), n=512, seconds=0.5), 1)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
