"""Manifests and lessons files written as text, for the tests of reading them: rows of a CSV or
JSON Lines file, and ``GOOD``, two valid lessons. The recordings they name are the empty files of
the ``folder`` fixture (``tests/conftest.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from highlights.core.lesson import LessonInput

HEADER = "lesson_id,role,path,started_at,ended_at"
T0 = "2026-11-21T15:00:00+00:00"
T1 = "2026-11-21T15:30:00+00:00"


def write_csv(folder: Path, *rows: str, header: str = HEADER, name: str = "manifest.csv", **kwargs) -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8", **kwargs)
    return path


def write_jsonl(folder: Path, *records: dict | str, name: str = "manifest.jsonl") -> Path:
    path = folder / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def problems(lesson: LessonInput) -> list[str]:
    return [str(p) for p in lesson.problems]


GOOD = (
    f"L-1,teacher,L-1/teacher.mp4,{T0},{T1}",
    "L-1,student,L-1/student.webm,2026-11-21T15:01:40+00:00,",
    f"L-2,student,L-2/student.webm,{T0},{T1}",
    f"L-2,teacher,L-2/teacher.mp4,{T0},{T1}",
)
