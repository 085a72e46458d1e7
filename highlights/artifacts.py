"""A lesson's folder: the files the stages write there, how they are read back on a resume, and
its cleanup. For lesson ``L`` everything goes to ``OUT/L/``::

    timeline.json   when each person was online, the lesson's bounds     (timeline stage)
    scores.csv      one row per face per sampled frame                    (scores stage)
    analytics.json / analytics.csv  smiles and presence over the lesson   (analytics stage)
    selection.json  the chosen frames, GIF order                          (selection stage)
    <token>.gif     the GIF, under a name nobody can guess                (gif stage)
    snippet.html / snippet.txt  the email snippet                         (snippet stage)
    report.html     the per-lesson report for people                      (report stage)
    stages.json     each finished stage's fingerprint and files           (highlights.stages)
    result.json     written last: the lesson's outcome                    (highlights.results)

Every file is written atomically (:mod:`highlights.io`): what one stage writes is exactly what
the next one reads when a rerun resumes there.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from highlights.frameref import FRAME_COLUMNS
from highlights.io import atomic_path, jsonable
from highlights.tracks import TRACK_COLUMNS, assign_tracks

if TYPE_CHECKING:
    from highlights.config import Settings
    from highlights.timeline import LessonTimeline

log = logging.getLogger(__name__)

TIMELINE_FILE = "timeline.json"
SCORES_FILE = "scores.csv"
ANALYTICS_FILE = "analytics.json"
ANALYTICS_CSV = "analytics.csv"
SELECTION_FILE = "selection.json"
SNIPPET_HTML = "snippet.html"
SNIPPET_TEXT = "snippet.txt"
REPORT_FILE = "report.html"

SCORE_COLUMNS = [
    *FRAME_COLUMNS, "face", "x1", "y1", "x2", "y2",
    "det_prob", "child_prob", "smile_prob", "is_child", "sharpness", "brightness", "crop_hash",
]  # fmt: skip
"""The columns of the scores table (``scores.csv``), the scores stage's value: the sampled
frame's :data:`~highlights.frameref.FRAME_COLUMNS`, then one face's (documented in
:mod:`highlights.faces.scoring`). Defined here, not beside the scorer, so the stages that only
read the table (selection, report, the labeller) need not import torch."""
SCORE_DTYPES = {
    "frame": "int64", "t": "float64", "at": "str", "source": "str", "offset_s": "float64",
    "face": "int64", "x1": "float64", "y1": "float64", "x2": "float64", "y2": "float64",
    "det_prob": "float64", "child_prob": "float64", "smile_prob": "float64", "is_child": "bool",
    "sharpness": "float64", "brightness": "float64", "crop_hash": "str",
}  # fmt: skip
"""The dtype of each of :data:`SCORE_COLUMNS`."""


def timeline_to_dict(timeline: LessonTimeline) -> dict[str, Any]:
    return jsonable(timeline)


def write_scores(scores: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        scores.to_csv(tmp, index=False)


def read_scores(path: Path) -> pd.DataFrame:
    """``scores.csv`` back as the scores stage made it (same columns and dtypes).

    A file written before face tracks (no ``track`` column) gets its tracks linked now, so
    every later stage sees the same columns."""
    text_columns = [c for c, d in SCORE_DTYPES.items() if d == "str"]
    scores = pd.read_csv(path, dtype={c: "string" for c in text_columns}, keep_default_na=True)
    for column in text_columns:
        scores[column] = scores[column].fillna("").astype(str)
    scores["is_child"] = scores["is_child"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    tracked = scores.astype(SCORE_DTYPES)
    if "track" not in tracked.columns:
        return assign_tracks(tracked[SCORE_COLUMNS])
    tracked["track"] = tracked["track"].fillna(-1).astype("int64")
    tracked["in_frame"] = tracked["in_frame"].astype(float) if "in_frame" in tracked.columns else float("nan")
    return tracked[[*SCORE_COLUMNS, *TRACK_COLUMNS]]


def public_url(settings: Settings, lesson_id: str, gif_name: str, folder: Path) -> str:
    """Where the email's readers fetch the GIF: ``<public_base_url>/<lesson_id>/<gif>``.

    Without a public base URL (a local run) it is the file's own ``file://`` URL.
    """
    base = getattr(settings.email, "public_base_url", None)
    if base:
        return f"{str(base).rstrip('/')}/{lesson_id}/{gif_name}"
    return (folder / gif_name).resolve().as_uri()


# --------------------------------------------------------------------------- cleanup


def remove_leftover_temp_files(folder: Path) -> None:
    """Delete the temporary files (``.<name>.<random>.tmp<suffix>``, see
    :func:`highlights.io.atomic_path`) that a crashed or killed run left in the lesson's folder:
    half-written GIFs and snippets (with the student's name) must not linger in a served folder.
    Called only while holding the lesson's lock, so no live writer owns them."""
    for path in folder.glob(".*.tmp*"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            log.info("lesson folder %s: removed leftover temporary file %s", folder.name, path.name)


def remove_stale_gifs(folder: Path, keep: str | None) -> None:
    """Delete GIFs of earlier runs that the lesson's result no longer names: a GIF that a new
    model or setting no longer stands behind must not stay public."""
    for path in folder.glob("*.gif"):
        if path.name != keep:
            path.unlink(missing_ok=True)
            log.info("lesson folder %s: removed stale GIF", folder.name)
