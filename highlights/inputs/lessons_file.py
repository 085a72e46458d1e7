"""The lessons file: what the email and the selection need to know of a lesson besides its videos.

CSV or JSON Lines, ``lesson_id`` plus optional ``student_name``, ``subject``, ``locale``,
``lesson_url``, ``student_age_group`` and any other columns (kept in ``LessonInfo.extra``); it
joins the manifest on ``lesson_id`` (:func:`highlights.inputs.manifest.read_manifest`).
Messages name columns, never their values: lesson metadata stays out of logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from highlights.core.lesson import AGE_GROUPS, InputProblem, LessonInfo, SourceRow, is_valid_lesson_id
from highlights.core.urls import web_link
from highlights.inputs.rows import read_rows

LESSON_INFO_FIELDS = ("student_name", "subject", "locale", "lesson_url", "student_age_group")
"""Lessons-file columns with a field of their own in :class:`LessonInfo`; others go to ``extra``."""

_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")

def read_lessons_file(path: Path | str) -> tuple[dict[str, LessonInfo], list[InputProblem]]:
    """Read the lessons file alone: infos by lesson id, and the problems of its rows (each with
    the lesson it spoils, or None when the row names no valid lesson). Warnings (see
    :attr:`LessonInput.warnings`) are left out; :func:`read_manifest` attaches them to lessons."""
    infos, problems, _ = read_lessons_rows(Path(path))
    return infos, problems


def read_lessons_rows(path: Path) -> tuple[dict[str, LessonInfo], list[InputProblem], list[InputProblem]]:
    infos: dict[str, LessonInfo] = {}
    problems: list[InputProblem] = []
    warnings: list[InputProblem] = []
    for row_no, values, error in read_rows(path, required=("lesson_id",)):
        raw_id = values.get("lesson_id", "").strip() if values else ""
        lesson_id = raw_id if is_valid_lesson_id(raw_id) else None
        if error is not None or lesson_id is None:
            problems.append(InputProblem(path, row_no, lesson_id, error or bad_id_message(raw_id)))
            continue
        if lesson_id in infos:
            previous = infos[lesson_id].source
            problems.append(InputProblem(path, row_no, lesson_id, f"lesson listed twice (also row {previous.row if previous else '?'})"))
            continue
        info, errors, notes = _lesson_info(path, row_no, lesson_id, values)
        problems += [InputProblem(path, row_no, lesson_id, message) for message in errors]
        warnings += [InputProblem(path, row_no, lesson_id, message) for message in notes]
        infos[lesson_id] = info
    return infos, problems, warnings


def bad_id_message(raw_id: str) -> str:
    if not raw_id:
        return "lesson_id is empty"
    return f"lesson_id {raw_id!r} is not a valid id (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit, no '..')"


def _lesson_info(
    path: Path, row_no: int, lesson_id: str, values: Mapping[str, str]
) -> tuple[LessonInfo, list[str], list[str]]:
    """The row's :class:`LessonInfo`, its errors (they fail the lesson) and warnings (they do
    not). Messages name columns, never their values: lesson metadata stays out of logs."""
    errors: list[str] = []
    warnings: list[str] = []

    def optional(key: str) -> str | None:
        value = values.get(key, "").strip()
        return value or None

    locale = (optional("locale") or "en").replace("_", "-")
    if not _LOCALE.fullmatch(locale):
        errors.append("locale is not a language tag such as 'en' or 'pt-BR'")
        locale = "en"
    url = optional("lesson_url")
    if url is not None and web_link(url) is None:
        # The link is a nicety of the email: the snippet goes out without it, and the problem
        # is reported without the value (it may carry the student's name in its query string).
        warnings.append("lesson_url is not a usable http(s) link: left out of the snippet")
        url = None
    age_group = optional("student_age_group")
    if age_group is not None and age_group.lower() not in AGE_GROUPS:
        # Not a warning: guessing would put a child's lesson under the adult rule.
        errors.append(f"student_age_group must be {' or '.join(AGE_GROUPS)}")
        age_group = None
    extra = {key: value for key, value in values.items() if key not in ("lesson_id", *LESSON_INFO_FIELDS) and value != ""}
    info = LessonInfo(
        lesson_id, student_name=optional("student_name"), subject=optional("subject"), locale=locale,
        lesson_url=url, student_age_group=age_group.lower() if age_group else None, extra=extra,
        source=SourceRow(path, row_no),
    )
    return info, errors, warnings


__all__ = ["LESSON_INFO_FIELDS", "bad_id_message", "read_lessons_file", "read_lessons_rows"]
