"""The Python API: everything the command line does, in a few calls.

>>> from pathlib import Path
>>> from highlights.api import BatchOptions, Settings, run_manifest    # doctest: +SKIP
>>> results = run_manifest("manifest.csv", Settings(out_dir=Path("out")), lessons_path="lessons.csv",
...                        batch=BatchOptions(workers=2))              # doctest: +SKIP
>>> [(r.lesson_id, r.status, r.gif_path) for r in results]            # doctest: +SKIP

A manifest, a lessons file and the recordings may be ``s3://`` URLs, and
``Settings(publish="s3://bucket/prefix", email=EmailOptions(public_base_url=...))`` publishes
the GIFs (README, Object storage).

``run_manifest`` runs a manifest's lessons (in this process by default); ``run_lesson`` one
lesson, the unit of work of every pool; ``withdraw_lesson`` takes a published highlight down;
``plan_manifest`` prints what ``highlights timeline`` shows.
"""

from highlights.batch.options import BatchOptions
from highlights.batch.run import manifest_problems, run_manifest
from highlights.config import ConfigError, Settings, load_settings
from highlights.core.lesson import LessonInfo, LessonInput, Recording
from highlights.core.result import LessonResult
from highlights.inputs.manifest import InputError, Manifest, read_manifest
from highlights.lesson.graph import Progress
from highlights.lesson.run import run_lesson
from highlights.lesson.withdraw import NothingToWithdraw, withdraw_lesson
from highlights.persist.store import ResultStore
from highlights.stages.timeline import plan_manifest

__all__ = [
    "BatchOptions",
    "ConfigError",
    "InputError",
    "LessonInfo",
    "LessonInput",
    "LessonResult",
    "Manifest",
    "NothingToWithdraw",
    "Progress",
    "Recording",
    "ResultStore",
    "Settings",
    "load_settings",
    "manifest_problems",
    "plan_manifest",
    "read_manifest",
    "run_lesson",
    "run_manifest",
    "withdraw_lesson",
]
