"""The machine and library versions the costs were measured with, as the results page states them."""

from __future__ import annotations

import os
import platform
import sys

LIBRARIES = ("torch", "transformers", "datasets", "deepspeed", "sentence_transformers", "faiss", "ranx")


def environment(machine: dict) -> list[str]:
    """The machine the costs were measured on (``cerberus.bench``'s ``hardware`` record), library versions."""
    from importlib.metadata import PackageNotFoundError, version

    if machine:
        have = ", ".join(machine.get("cpu_bf16_instructions") or []) or "none"
        line = (
            f"Machine (where the costs were measured): {machine['device']}, {machine['cores']} cores, "
            f"{machine['memory_gib']:.0f} GiB RAM, {machine['os']}; bf16 instructions: {have} "
            f"({'native: bf16 timed' if machine['bf16_native'] else 'emulated: bf16 not timed'}); precision "
            f"`auto` resolves to {machine['auto_precision']} there; {machine['threads']} torch threads."
        )
    else:  # a bench.json from before machine records: this machine, which may not be the bench's
        from as2.precision import cpu_model

        line = (
            "Machine of the costs: not recorded (bench.json predates machine records); this page was "
            f"regenerated on {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}."
        )
    versions = []
    for lib in LIBRARIES:
        dist = {"faiss": "faiss-cpu", "sentence_transformers": "sentence-transformers"}.get(lib, lib)
        try:
            versions.append(f"{lib} {version(dist)}")
        except PackageNotFoundError:
            continue
    return [line, f"Python {sys.version.split()[0]}; " + ", ".join(versions) + "."]
