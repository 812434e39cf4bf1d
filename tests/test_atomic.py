"""Crash-safe writes: nothing half-written survives, finished files follow the umask."""

from __future__ import annotations

import os
import stat

import pytest

from skycut.core.atomic import atomic_output, write_bytes


def test_success_renames_and_follows_umask(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    write_bytes(b"abc", target)
    assert target.read_bytes() == b"abc"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_failure_leaves_nothing_and_keeps_previous(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_write_zip_appends_suffix_and_holds_members(tmp_path):
    import zipfile

    from skycut.core.atomic import write_zip

    path = write_zip(((f"m{i}.txt", f"data {i}".encode()) for i in range(3)), tmp_path, "bundle")
    assert path.endswith("bundle.zip")
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["m0.txt", "m1.txt", "m2.txt"]
        assert zf.read("m2.txt") == b"data 2"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.zip"]
