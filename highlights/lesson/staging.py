"""A lesson's recordings on local disk while it runs: those in an object store are downloaded
into the lesson's folder first, and deleted when the lesson ends.

Why a download and not decoding straight from the store (ranged reads): the stages read each
recording more than once (the timeline probes it to its end, the scores stage decodes it, the
GIF stage seeks back to its picks), so streamed they fetch about 2.3 times its bytes in many
requests, where one download fetches them once and hands the decoder a plain file.
``bench/object_store.py`` measures the 45-minute lesson both ways (README, Benchmarks).

The copies live in ``OUT/<lesson_id>/.recordings/`` (mode 0700: the lesson folder's GIF is
served, the recordings are nobody's business), each under its object's file name in a folder
of its own (two segments may share a name), so the outputs name them as they would the
files on disk. A run killed mid-lesson leaves them; the next run of the lesson removes them
before anything else.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from highlights.core.lesson import LessonInput
from highlights.files import make_dirs
from highlights.lesson.graph import StageError
from highlights.storage import objects

log = logging.getLogger(__name__)

STAGING_DIR = ".recordings"
DOWNLOAD_STAGE = "download"
"""The name a failed download goes by in the lesson's reason (``download stage failed``)."""


@contextmanager
def local_recordings(lesson: LessonInput, folder: Path) -> Iterator[LessonInput]:
    """``lesson`` with every recording a local file: objects downloaded into ``folder``'s
    staging folder (deleted on the way out, whatever happens). A failed download raises a
    :class:`~highlights.lesson.graph.StageError` of stage ``download`` whose cause is the
    :class:`~highlights.storage.objects.ObjectStoreError` naming the object."""
    remote = [recording for recording in lesson.recordings if recording.url is not None]
    if not remote or lesson.problems:  # a lesson with bad rows fails before any stage: nothing to read
        yield lesson
        return
    staging = folder / STAGING_DIR
    remove_staging(folder)
    try:
        make_dirs(staging, mode=0o700)
        local = []
        for index, recording in enumerate(lesson.recordings):
            if recording.url is None:
                local.append(recording)
                continue
            target = make_dirs(staging / str(index), mode=0o700) / recording.path.name
            try:
                info = objects.download(recording.url, target)
            except objects.ObjectStoreError as error:
                raise StageError(DOWNLOAD_STAGE) from error
            log.info("lesson %s: downloaded %s (%d bytes)", lesson.lesson_id, recording.path.name, info.size)
            local.append(replace(recording, path=target))
        yield replace(lesson, recordings=local, problems=list(lesson.problems), warnings=list(lesson.warnings))
    finally:
        remove_staging(folder)


def remove_staging(folder: Path) -> None:
    """Delete the lesson's downloaded recordings (a killed run's too)."""
    staging = folder / STAGING_DIR
    if staging.is_dir() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["DOWNLOAD_STAGE", "STAGING_DIR", "local_recordings", "remove_staging"]
