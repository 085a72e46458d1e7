"""Atomic writes: all or nothing, and the permissions a plain write would give."""

from __future__ import annotations

import os
import stat

import pytest

from highlights.files import PUBLIC_MODE, atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "snippet.html"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["snippet.html"]


def test_private_files_are_not_world_readable_and_public_ones_are(tmp_path):
    # result.json holds the student's name and the GIF's secret name: not readable by others.
    # The GIF is served by a web server running as another user: 0644, not mkstemp's 0600.
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a" / "result.json", {"x": 1})
        write_bytes_atomic(tmp_path / "a" / "x.gif", b"GIF89a", PUBLIC_MODE)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "result.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "a" / "x.gif").stat().st_mode) == 0o644
