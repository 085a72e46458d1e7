"""The face table: one row per face found in each sampled frame, the currency of every stage
after scoring (as supervision's ``Detections`` is between its components).

:data:`SCHEMA` is its one definition: each column's name, dtype, the stage that adds it and what
it means. ``scores.csv`` holds the stored columns (:data:`STORED_COLUMNS`); the stages after it
add the judged ones in memory (:data:`JUDGED_COLUMNS`, never written). :class:`FaceTable` wraps
the pandas frame and checks it has the columns a stage relies on, so a stage takes and returns a
typed value rather than "some DataFrame".

Every sampled frame has at least one row: a frame where no face was found has one row with
``face = -1`` (face columns NaN, ``is_child`` False, ``crop_hash`` empty), so presence over the
lesson can be read from the table alone.

>>> table = FaceTable.empty()
>>> len(table), table.frame_count, list(table.data.columns[:5])
(0, 0, ['frame', 't', 'at', 'source', 'offset_s'])

Read ``at`` as ``table.data["at"]``: ``DataFrame.at`` is pandas' indexer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from highlights.core.frameref import FRAME_COLUMNS

AddedBy = Literal["scores", "tracks", "persons", "judge"]


@dataclass(frozen=True)
class Column:
    """One column of the face table."""

    name: str
    dtype: str
    """The pandas dtype (``str`` columns hold text, empty where there is none)."""
    added_by: AddedBy
    """``scores``: the scores stage; ``tracks``: the face tracks linked after scoring;
    ``persons``: the persons the tracks belong to, and the person region of the frame that no face
    explains (:mod:`highlights.stages.persons`; all three in ``scores.csv``); ``judge``: the
    per-track and per-person decisions (:func:`highlights.stages.persons.judge_persons`), computed
    in memory from the stored columns and never stored."""
    doc: str


SCHEMA: tuple[Column, ...] = (
    Column("frame", "int64", "scores", "the sampled frame's index (``FrameRef.index``)"),
    Column("t", "float64", "scores", "seconds since the lesson start"),
    Column("at", "str", "scores", "the frame's instant, ISO-8601 text in UTC"),
    Column("source", "str", "scores", "the student recording's file name"),
    Column("offset_s", "float64", "scores", "seconds into that recording"),
    Column("face", "int64", "scores", "0, 1, ... within the frame, largest first; -1: no face in the frame"),
    Column("x1", "float64", "scores", "the face box's left, in the frame's own pixels (may reach past the edge)"),
    Column("y1", "float64", "scores", "the face box's top"),
    Column("x2", "float64", "scores", "the face box's right"),
    Column("y2", "float64", "scores", "the face box's bottom"),
    Column("det_prob", "float64", "scores", "the detector's face probability"),
    Column("child_prob", "float64", "scores", "the age model's probability that the face is a child's"),
    Column("smile_prob", "float64", "scores", "the smile model's probability that the face smiles"),
    Column("is_child", "bool", "scores", "``child_prob`` passes the age model's own threshold (this face alone)"),
    Column("sharpness", "float64", "scores",
           "variance of the Laplacian of the 64x64 gray crop before CLAHE, over its part inside the frame"),
    Column("brightness", "float64", "scores", "mean gray level (0-255) of that crop"),
    Column("crop_hash", "str", "scores", "64-bit perceptual hash of that crop, 16 hex digits"),
    Column("track", "int64", "tracks", "the face's track (followed across seconds); -1 for a frame without a face"),
    Column("in_frame", "float64", "tracks", "share of the face box inside the frame (1.0: fully in; NaN: unknown)"),
    Column("person", "int64", "persons",
           "the person the face belongs to, 0, 1, ... in this lesson only (its tracks grouped by face identity); "
           "-1 for a frame without a face"),
    Column("body_share", "float64", "persons",
           "share of the frame covered by a person region no face in it explains (0: none; NaN: not looked at)"),
    Column("body_x1", "float64", "persons", "that region's box, left (NaN: none)"),
    Column("body_y1", "float64", "persons", "that region's box, top"),
    Column("body_x2", "float64", "persons", "that region's box, right"),
    Column("body_y2", "float64", "persons", "that region's box, bottom"),
    Column("track_child", "bool", "judge", "the face's track is judged a child"),
    Column("track_child_prob", "float64", "judge", "the track's evidence as a probability (NaN: undecided)"),
    Column("track_kind", "str", "judge", "``child``, ``adult`` or ``undecided`` (empty without a face)"),
    Column("track_smile", "float64", "judge", "the smile smoothed within the track"),
    Column("person_kind", "str", "judge", "``child``, ``adult``, ``undecided`` or ``picture`` (empty without a face)"),
    Column("person_child_prob", "float64", "judge", "the person's evidence as a probability (NaN: undecided, picture)"),
    Column("student", "bool", "judge", "the face is the student's (the person seen longest, not a picture)"),
    Column("picture", "bool", "judge", "the face is a picture's: it neither moves nor changes"),
    Column("other_body", "bool", "judge", "the frame shows someone other than the student by their body alone"),
)  # fmt: skip
"""Every column of the face table, in order."""

COLUMNS: dict[str, Column] = {column.name: column for column in SCHEMA}
SCORE_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.added_by == "scores")
"""What the scores stage computes for a face: the frame's :data:`FRAME_COLUMNS`, then the face's."""
TRACK_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.added_by == "tracks")
PERSON_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.added_by == "persons")
BODY_COLUMNS: tuple[str, ...] = tuple(name for name in PERSON_COLUMNS if name.startswith("body_"))
STORED_COLUMNS: tuple[str, ...] = SCORE_COLUMNS + TRACK_COLUMNS + PERSON_COLUMNS
"""The columns of ``scores.csv``, in order."""
JUDGED_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.added_by == "judge")
DTYPES: dict[str, str] = {c.name: c.dtype for c in SCHEMA}
SCORE_DTYPES: dict[str, str] = {name: DTYPES[name] for name in SCORE_COLUMNS}
TEXT_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.dtype == "str")

assert SCORE_COLUMNS[: len(FRAME_COLUMNS)] == FRAME_COLUMNS, "the frame's columns come first"

NO_FACE: dict[str, Any] = {
    "face": -1, "x1": np.nan, "y1": np.nan, "x2": np.nan, "y2": np.nan, "det_prob": np.nan, "child_prob": np.nan,
    "smile_prob": np.nan, "is_child": False, "sharpness": np.nan, "brightness": np.nan, "crop_hash": "",
}  # fmt: skip
"""The face columns of a frame's row where no face was found."""


class FaceTable:
    """The face table of one lesson (see the module's docstring), a checked pandas frame.

    ``data`` is the frame itself, for the vectorised work inside a stage; the constructor checks
    it has every column of :data:`SCORE_COLUMNS` (a table with tracks also has
    :data:`TRACK_COLUMNS`). Stages take a :class:`FaceTable` (or a DataFrame with those columns,
    checked by :meth:`of`) and return one.
    """

    __slots__ = ("data",)

    def __init__(self, data: pd.DataFrame) -> None:
        missing = [name for name in SCORE_COLUMNS if name not in data.columns]
        if missing:
            raise ValueError(f"a face table needs the column(s) {', '.join(missing)}")
        self.data = data

    @classmethod
    def of(cls, value: FaceTable | pd.DataFrame) -> FaceTable:
        """``value`` as a face table (a DataFrame is checked, not copied)."""
        return value if isinstance(value, FaceTable) else cls(value)

    @classmethod
    def empty(cls) -> FaceTable:
        """No rows; the scores stage's columns and dtypes."""
        return cls(pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in SCORE_DTYPES.items()}))

    @classmethod
    def from_records(cls, rows: Iterable[Mapping[str, Any]], extra: Sequence[str] = ()) -> FaceTable:
        """A table of the scores stage's columns (and the ``extra`` ones) from one mapping per row
        (a frame's ``FrameRef.to_record()`` merged with a face's values, or with :data:`NO_FACE`)."""
        records = list(rows)
        columns = [*SCORE_COLUMNS, *extra]
        if not records:
            return cls(pd.DataFrame({name: pd.Series(dtype=DTYPES[name]) for name in columns}))
        frame = pd.DataFrame.from_records(records, columns=columns)
        return cls(frame.astype({name: DTYPES[name] for name in columns}))

    @property
    def has_tracks(self) -> bool:
        return all(name in self.data.columns for name in TRACK_COLUMNS)

    @property
    def has_persons(self) -> bool:
        return all(name in self.data.columns for name in PERSON_COLUMNS)

    @property
    def is_judged(self) -> bool:
        return all(name in self.data.columns for name in JUDGED_COLUMNS)

    @property
    def frame_count(self) -> int:
        """Sampled frames the table covers (every decoded one has a row, faces or not)."""
        return int(self.data["frame"].nunique()) if len(self.data) else 0

    def faces(self) -> pd.DataFrame:
        """The rows of found faces (``face >= 0``)."""
        return self.data[self.data["face"] >= 0]

    def boxes(self) -> np.ndarray:
        """The face boxes (N, 4): x1, y1, x2, y2, one per row."""
        return self.data[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)

    def stored(self) -> pd.DataFrame:
        """The columns ``scores.csv`` keeps, in order (tracks and persons only where found)."""
        return self.data[[name for name in STORED_COLUMNS if name in self.data.columns]]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"FaceTable({len(self.data)} rows, {self.frame_count} frames)"


__all__ = [
    "COLUMNS",
    "DTYPES",
    "JUDGED_COLUMNS",
    "BODY_COLUMNS",
    "NO_FACE",
    "PERSON_COLUMNS",
    "SCHEMA",
    "SCORE_COLUMNS",
    "SCORE_DTYPES",
    "STORED_COLUMNS",
    "TEXT_COLUMNS",
    "TRACK_COLUMNS",
    "Column",
    "FaceTable",
]
