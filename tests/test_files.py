"""Atomic writes (:mod:`highlights.files`): all or nothing, and the permissions a plain write would
give; the modes of a whole lesson's files and folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from highlights.config import Settings
from highlights.files import PUBLIC_MODE, atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic

from support.fakes import FakeScorer
from support.lessons import done_lesson, one_lesson, run_one


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


# --------------------------------------------------------------------------- whole lessons (issue 9)


def test_lesson_files_with_personal_data_are_not_world_readable_but_the_gif_is(videos, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _, settings, folder, first = done_lesson(videos, tmp_path)
    finally:
        os.umask(old)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    for name in ("result.json", "snippet.html", "snippet.txt", "report.html", "scores.csv", "stages.json",
                 "selection.json", "timeline.json", "analytics.json"):
        assert mode(folder / name) & 0o007 == 0, name
    assert mode(folder / first.gif) == 0o644
    assert mode(settings.out_dir / ".highlights" / "highlights.sqlite") & 0o007 == 0


def test_folders_and_the_lock_are_not_writable_by_others_under_umask_000(videos, tmp_path: Path) -> None:
    """Under a umask of 000 the lesson folders came out 0777 and ``.lock`` 0666: anyone on the
    machine could replace or delete a published GIF. Folders the job makes are never group- or
    world-writable now; the files keep their modes (GIF 0644, the rest 0640)."""
    old = os.umask(0)
    try:
        manifest = one_lesson(videos, tmp_path / "rec")
        settings = Settings(out_dir=tmp_path / "out" / "nightly")
        result = run_one(manifest, settings, FakeScorer())
    finally:
        os.umask(old)
    assert result.status == "ok", result.reason
    folder = settings.out_dir / "L-1001"
    for path in (tmp_path / "out", settings.out_dir, folder):
        assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0, (path, oct(path.stat().st_mode))
    assert stat.S_IMODE((folder / ".lock").stat().st_mode) & 0o077 == 0o040
    assert stat.S_IMODE((folder / result.gif).stat().st_mode) == 0o644
