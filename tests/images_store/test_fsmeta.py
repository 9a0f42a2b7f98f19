"""fsmeta's xattr format (containers/storage's) and the data/runtime dirs."""
from __future__ import annotations

import os

import pytest

from brandpy import datadir, fsmeta
from brandpy.fsmeta import Override


def test_encode_decode_round_trip():
    cases = [Override(0, 0, 0o755, "dir"), Override(1000, 2000, 0o2770, "file"),
             Override(0, 0, 0o666, "char", os.makedev(1, 3)), Override(0, 6, 0o660, "block", os.makedev(8, 1)),
             Override(5, 5, 0o4755, "file"), Override(0, 0, 0o644, "pipe"), Override(0, 0, 0, "socket")]
    for ov in cases:
        assert Override.decode(ov.encode()) == ov
    assert Override(0, 0, 0o644, "char", os.makedev(1, 3)).encode() == b"0:0:0644:char-1-3"
    assert Override(1000, 2000, 0o2770).encode() == b"1000:2000:02770:file"


def test_decodes_what_other_tools_write():
    assert Override.decode(b"0:0:0755") == Override(0, 0, 0o755, "file")       # no TYPE
    assert Override.decode(b"1000:2000:02770") == Override(1000, 2000, 0o2770, "file")
    assert Override.decode(b"1000:1000:040755") == Override(1000, 1000, 0o755, "dir")  # full st_mode
    assert Override.decode(b"0:0:0644:block-8-1").rdev == os.makedev(8, 1)
    for bad in (b"", b"a:b:c", b"0:0:0644:weird", b"0:0"):
        with pytest.raises(ValueError, match="malformed user.containers.override_stat"):
            Override.decode(bad)


def test_read_write_clear_by_path_and_fd(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    assert fsmeta.read(f) is None
    ov = Override(7, 8, 0o600, "char", os.makedev(4, 5))
    fsmeta.write(f, ov)
    assert fsmeta.read(str(f)) == ov
    fd = os.open(f, os.O_RDONLY)
    try:
        assert fsmeta.read(fd) == ov and fsmeta.view(fd) == ov
        fsmeta.clear(fd)
        assert fsmeta.read(fd) is None
    finally:
        os.close(fd)
    fsmeta.clear(f)   # clearing twice is fine
    os.symlink("f", tmp_path / "l")
    assert fsmeta.read(tmp_path / "l") is None           # symlinks carry no override
    assert fsmeta.view(tmp_path / "l").kind == "symlink"
    assert Override(0, 0, 0o644, "char").st_mode == 0o20644


def test_default_view_maps_the_current_user_to_root(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    os.chmod(f, 0o640)
    v = fsmeta.view(f)
    assert (v.uid, v.gid, v.mode, v.kind) == (0, 0, 0o640, "file")


def test_data_and_runtime_dirs(monkeypatch, tmp_path):
    monkeypatch.setenv("BRANDPY_ROOT", str(tmp_path / "r"))
    assert datadir.data_root() == tmp_path / "r"
    monkeypatch.delenv("BRANDPY_ROOT")
    if os.geteuid() == 0:
        assert str(datadir.data_root()) == "/var/lib/brandpy"
        assert str(datadir.runtime_dir(create=False)) == "/run/brandpy"
    else:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert datadir.data_root() == tmp_path / "xdg" / "brandpy"
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
        (tmp_path / "run").mkdir()
        assert datadir.runtime_dir() == tmp_path / "run" / "brandpy"
