"""A night's batch from a manifest: which lessons run, and where (:func:`run_manifest`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from highlights.batch.dispatch import run_batch
from highlights.batch.options import BatchOptions
from highlights.config import Settings
from highlights.core.lesson import InputProblem
from highlights.core.result import LessonResult
from highlights.inputs.manifest import Manifest, read_manifest
from highlights.lesson.graph import Progress
from highlights.persist.store import ResultStore

log = logging.getLogger(__name__)


def run_manifest(
    manifest: Path | str | Manifest,
    settings: Settings,
    lesson_ids: Sequence[str] | None = None,
    *,
    lessons_path: Path | str | None = None,
    progress: Progress | None = None,
    scorer: Any = None,
    store: ResultStore | None = None,
    batch: BatchOptions | None = None,
) -> list[LessonResult]:
    """Run every lesson of a manifest (or those named in ``lesson_ids``); results in that order.

    ``batch`` says where: by default one lesson after another in this process with the models
    loaded once; ``BatchOptions(workers=N)`` in N worker processes, ``BatchOptions(executor="ray")``
    on a Ray cluster. The run is recorded in ``highlight_runs``. A lesson named but absent from the
    manifest, or whose rows are bad, comes back ``failed`` with a reason naming the lesson, the
    file and the row; one another run holds comes back ``busy``; the others run. Raises
    :class:`~highlights.inputs.rows.InputError` only when the manifest itself is unusable, and
    ValueError for settings that need one another (:meth:`Settings.check`).
    """
    settings.check()
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, lessons_path=lessons_path, timezone=settings.timezone)
    for problem in manifest.problems:
        if problem.lesson_id is None:
            log.warning("%s: %s", _problem_label(manifest, problem), problem)
    if not manifest.lessons and not any(Path(p.file) == Path(manifest.path) for p in manifest.problems):
        # Not an error (a day without lessons), but a nightly export that failed looks the same.
        log.warning("manifest %s lists no recordings: no lesson to run", Path(manifest.path).name)
    wanted = list(dict.fromkeys(lesson_ids)) if lesson_ids else list(manifest.lessons)
    if lesson_ids and settings.force:  # lessons named one by one: withdrawn ones are made again too
        settings = replace(settings, republish_withdrawn=True)
    own_store = store is None
    store = store if store is not None else ResultStore(settings.database_url)
    try:
        return run_batch(manifest, wanted, settings, batch or BatchOptions(workers=0), store=store, scorer=scorer,
                         progress=progress)
    finally:
        if own_store:
            store.dispose()


def manifest_problems(manifest: Manifest) -> list[str]:
    """Problems of rows that belong to no lesson (each names file and row), labelled by the file
    they are in: ``manifest problem: ...`` or ``lessons file problem: ...``."""
    return [f"{_problem_label(manifest, p)}: {p}" for p in manifest.problems if p.lesson_id is None]


def _problem_label(manifest: Manifest, problem: InputProblem) -> str:
    return "manifest problem" if Path(problem.file) == Path(manifest.path) else "lessons file problem"


__all__ = ["manifest_problems", "run_manifest"]
