"""Which sampled frame: :class:`FrameRef`, the one value that names a frame from the plan to the GIF.

A sampled frame is known by where it lies in the lesson and where it lies in a recording, and
every stage passes the same value along rather than its own copy of the fields:

* :func:`highlights.stages.timeline.sample_points` plans them (``LessonPlan.points``);
* :class:`highlights.media.decode.SampledFrame` is a :class:`FrameRef` plus its pixels;
* the scores table (:mod:`highlights.stages.scores`) has its fields as the columns
  :data:`FRAME_COLUMNS` of every row;
* :class:`highlights.stages.selection.Pick` and :class:`highlights.core.result.HighlightFrame` hold the
  :class:`FrameRef` of the frame they chose;
* the labeller's sampled frames and faces (:mod:`highlights.tools.label.lessons`) are read back from
  ``scores.csv``, each a :class:`FrameRef`.

Time has one form inside the program: ``t``, seconds since the lesson start, and ``at``, the same
instant as an aware datetime in UTC. It becomes ISO-8601 text (:func:`utc_iso`) only where an
artifact is written (``scores.csv``, ``selection.json``, ``result.json``) and is parsed back
(:func:`parse_utc`) where one is read. Artifacts name a recording by its file name only
(``source.name``); inside the program ``source`` is the recording's path where it is known (plan,
decoder) and that file name once it comes from an artifact.

>>> from dataclasses import replace
>>> from datetime import datetime, timezone
>>> ref = FrameRef(3, 3.0, datetime(2026, 11, 20, 16, 0, 3, tzinfo=timezone.utc), Path("/rec/s.webm"), 5.0)
>>> ref.to_record()
{'frame': 3, 't': 3.0, 'at': '2026-11-20T16:00:03+00:00', 'source': 's.webm', 'offset_s': 5.0}
>>> FrameRef.from_record(ref.to_record()) == replace(ref, source=Path("s.webm"))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FRAME_COLUMNS = ("frame", "t", "at", "source", "offset_s")
"""The keys a :class:`FrameRef` has in the artifacts: the first columns of ``scores.csv`` and the
first keys of each pick in ``selection.json`` (``frame`` is :attr:`FrameRef.index`)."""

UNKNOWN_INDEX = -1
""":attr:`FrameRef.index` of a frame read from ``result.json``, which does not record it."""


def parse_utc(value: datetime | str) -> datetime:
    """An artifact's time (ISO-8601 text with an offset, or a datetime) as an aware UTC datetime.

    Raises ValueError for text that is not ISO-8601 or a time without an offset: a wall-clock
    time without one could be any of 24 instants.

    >>> parse_utc("2026-11-20T21:30:03+05:30").isoformat()
    '2026-11-20T16:00:03+00:00'
    """
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time {value!s} has no UTC offset")
    return at.astimezone(timezone.utc)


def utc_iso(at: datetime) -> str:
    """The text an artifact stores for ``at``: ISO-8601 in UTC (``+00:00``), microseconds only
    where there are any (the form every version of the artifacts has used)."""
    return parse_utc(at).isoformat()


@dataclass(frozen=True)
class FrameRef:
    """One sampled frame: the ``index``-th sample of the lesson, ``t`` seconds after its start,
    at the instant ``at`` (aware, UTC), shown ``offset_s`` seconds into the student recording
    ``source`` (seconds from its first frame, as :mod:`highlights.media.decode` counts them).

    ``index`` is :data:`UNKNOWN_INDEX` for a frame read back from ``result.json``. ``at`` is
    normalised to UTC on construction; a naive datetime raises ValueError.
    """

    index: int
    t: float
    at: datetime
    source: Path
    offset_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_utc(self.at))
        object.__setattr__(self, "source", Path(self.source))

    def to_record(self) -> dict[str, Any]:
        """The :data:`FRAME_COLUMNS` of this frame as an artifact writes them (text time, file name)."""
        return {
            "frame": int(self.index),
            "t": float(self.t),
            "at": utc_iso(self.at),
            "source": self.source.name,
            "offset_s": float(self.offset_s),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FrameRef:
        """The frame named by an artifact's :data:`FRAME_COLUMNS` (a scores row, a pick of
        ``selection.json``); ``frame`` may be absent (``result.json``): :data:`UNKNOWN_INDEX`.
        A missing ``source`` or ``offset_s`` (``result.json`` of the first versions) reads as
        no file name and offset 0, as those versions did."""
        return cls(
            index=int(record.get("frame", UNKNOWN_INDEX)),
            t=float(record["t"]),
            at=parse_utc(record["at"]),
            source=Path(str(record.get("source") or "")),
            offset_s=float(record.get("offset_s", 0.0)),
        )


__all__ = ["FRAME_COLUMNS", "UNKNOWN_INDEX", "FrameRef", "parse_utc", "utc_iso"]
