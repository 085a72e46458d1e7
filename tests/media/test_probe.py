"""Probing recordings (:mod:`highlights.media.probe`) written at run time by
:mod:`highlights.media.synthetic`: duration from the timestamps, what is not a video, truncated
files, end times, and probing kept below the timeline and the decoder."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from highlights.core.lesson import LessonInfo, LessonInput
from highlights.media.container import RecordingError
from highlights.media.decode import iter_frames_at, read_frame_at
from highlights.media.probe import RecordingInfo, probe_recording, resolve_end_times
from highlights.media.synthetic import truncate_file

from support.media import FORMATS, FPS, recording
from support.paths import REPO_ROOT


@pytest.mark.parametrize("kind", FORMATS)
def test_probe_reads_duration_from_timestamps(media, kind):
    info = probe_recording(media[kind])
    assert isinstance(info, RecordingInfo)
    assert info.duration_s == pytest.approx(2.0, abs=1 / FPS)
    assert (info.width, info.height, info.rotation) == (160, 120, 0)
    assert info.codec == {"h264": "h264", "vp8": "vp8", "vp9": "vp9"}[kind.split("-")[0]]
    assert info.frame_count == 50
    assert info.first_pts_s == 0.0
    assert info.has_container_duration == (not kind.endswith("-live"))


def test_probe_rejects_what_is_not_a_video(tmp_path):
    text = tmp_path / "private-folder" / "notes.mp4"
    text.parent.mkdir()
    text.write_text("lesson notes, not a video\n" * 40)
    for call in (probe_recording, lambda p: read_frame_at(p, 0.0), lambda p: list(iter_frames_at(p, [0.0]))):
        with pytest.raises(RecordingError) as caught:
            call(text)
        assert caught.value.path == text
        assert "notes.mp4" in str(caught.value) and "cannot open" in str(caught.value)
        assert "private-folder" not in str(caught.value)  # base names only
    with pytest.raises(RecordingError, match="missing.webm"):
        probe_recording(tmp_path / "missing.webm")


def test_recording_error_survives_pickling(tmp_path):
    error = pickle.loads(pickle.dumps(RecordingError(tmp_path / "a.webm", "no video stream")))
    assert error.path == tmp_path / "a.webm" and str(error) == "a.webm: no video stream"


def test_truncated_plain_mp4_cannot_be_opened(long_gop, tmp_path):
    # A plain MP4 writes its index (moov) last: cut off, nothing can be read.
    cut = truncate_file(long_gop["h264"], 0.5, out=tmp_path / "cut.mp4")
    with pytest.raises(RecordingError, match=r"cut\.mp4: cannot open") as caught:
        probe_recording(cut)
    assert caught.value.path == cut


def test_resolve_end_times_probes_only_open_ended_recordings(media, tmp_path):
    never_opened = tmp_path / "teacher.mp4"
    never_opened.write_text("not a video: must not be probed")
    lesson = LessonInput("L-1", [recording(media["vp8-live"], "student", 1.5, None, 2),
                                 recording(never_opened, "teacher", 0.0, 60.0, 3)], LessonInfo("L-1"))
    resolved = resolve_end_times(lesson)
    student, teacher = resolved.recordings
    assert (student.ended_at - student.started_at).total_seconds() == pytest.approx(2.0, abs=1e-3)
    assert teacher == lesson.recordings[1]
    assert lesson.recordings[0].ended_at is None  # the input is not changed


@pytest.mark.parametrize(("suffix", "options"), [(".mp4", {"faststart": True}), (".webm", {"codec": "vp8"})])
def test_a_truncated_file_that_states_its_length_warns(tmp_path: Path, caplog, suffix, options) -> None:
    from highlights.media.probe import probe_recording
    from highlights.media.synthetic import index_frame, truncate_file, write_video

    whole = write_video(tmp_path / f"whole{suffix}", (index_frame(i, (160, 120)) for i in range(150)), fps=25, **options)
    cut = truncate_file(whole, 0.5, out=tmp_path / f"cut{suffix}")
    with caplog.at_level(logging.WARNING, logger="highlights.media.probe"):
        assert probe_recording(whole).duration_s == pytest.approx(6.0, abs=0.1)
        assert not caplog.records
        info = probe_recording(cut)
    assert info.duration_s < 5.0
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"cut{suffix}: truncated?") and "6.0 s" in warning and str(tmp_path) not in warning


def test_probing_sits_below_timeline_and_frames():
    # Importing timeline must not import frames (nor frames' decoder); probing needs neither.
    code = (
        "import sys, highlights.stages.timeline, highlights.media.probe; "
        "assert 'highlights.media.decode' not in sys.modules, sorted(m for m in sys.modules if m.startswith('highlights'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
    from highlights.media import container, decode, probe

    assert decode.RecordingError is probe.RecordingError is container.RecordingError  # one definition
