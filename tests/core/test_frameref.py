"""FrameRef: one value for a sampled frame; ISO text only at the artifacts, the same text as before."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from highlights.core.frameref import FRAME_COLUMNS, UNKNOWN_INDEX, FrameRef, parse_utc, utc_iso

START = datetime(2026, 11, 20, 16, 0, 3, tzinfo=timezone.utc)


def test_time_is_held_in_utc_whatever_offset_it_came_with():
    india = timezone(timedelta(hours=5, minutes=30))
    ref = FrameRef(0, 0.0, START.astimezone(india), "/rec/s.webm", 2.0)
    assert ref.at == START and ref.at.tzinfo == timezone.utc
    assert ref.source == Path("/rec/s.webm")  # a path, whatever it was given as
    assert parse_utc("2026-11-20T21:30:03+05:30") == START
    assert parse_utc("2026-11-20T16:00:03Z") == START


@pytest.mark.parametrize("naive", [datetime(2026, 11, 20, 16, 0, 3), "2026-11-20T16:00:03"])
def test_a_time_without_an_offset_is_refused(naive):
    with pytest.raises(ValueError, match="no UTC offset"):
        FrameRef(0, 0.0, naive, Path("s.webm"), 0.0)


def test_the_record_is_what_the_scores_table_always_had():
    # The previous scoring wrote at.isoformat() of the UTC instant and the file's base name.
    at = START + timedelta(seconds=12.25)
    ref = FrameRef(12, 12.25, at, Path("/recordings/L-1/student-1.webm"), 14.75)
    record = ref.to_record()
    assert tuple(record) == FRAME_COLUMNS
    assert record == {"frame": 12, "t": 12.25, "at": at.isoformat(), "source": "student-1.webm", "offset_s": 14.75}
    assert record["at"] == "2026-11-20T16:00:15.250000+00:00" == utc_iso(at)
    back = FrameRef.from_record(record)
    assert back == FrameRef(12, 12.25, at, Path("student-1.webm"), 14.75)  # artifacts keep the file name only
    assert back.to_record() == record


def test_a_record_without_index_source_or_offset_reads_as_result_json_always_did():
    ref = FrameRef.from_record({"t": 3.0, "at": "2026-11-20T16:00:06+00:00"})
    assert ref.index == UNKNOWN_INDEX and ref.offset_s == 0.0 and ref.source.name == ""
    assert ref.to_record()["source"] == ""
