"""Log output of a run: plain text (the default) or one JSON object per line (``--log-format json``).

A JSON line has ``time`` (UTC, ISO-8601), ``level``, ``run_id``, ``lesson_id``, ``stage``,
``event`` (``run_started``, ``lesson_started``, ``lesson_finished``, ``lesson_retried``,
``worker_lost``, ``run_finished``...; ``log`` for other messages), ``duration_s`` (where the
event has one), ``status`` (on ``lesson_finished``), ``logger`` and ``message``::

    {"time": "2026-12-01T02:30:04.120Z", "level": "INFO", "run_id": "20261201T023000Z-3f9a1c",
     "lesson_id": "L-1001", "stage": "report", "event": "lesson_finished", "duration_s": 41.2,
     "status": "ok", "logger": "highlights.batch.dispatch", "message": "lesson L-1001: ok"}

No personal data: the project's messages carry lesson ids, file names, row numbers and counts,
never student names or lesson metadata, and exception tracebacks (which may quote values) are
reduced to the exception's type. The run id and lesson id come from a context the executors set
(:func:`context`), so every message logged while a lesson runs is tagged with it, in the worker
processes too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

_RUN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("highlights_run_id", default=None)
_LESSON_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("highlights_lesson_id", default=None)
_STAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar("highlights_stage", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STATE: dict[str, Any] = {"format": "text", "level": logging.WARNING, "run_id": None}


def new_run_id() -> str:
    """``20261201T023000Z-3f9a1c``: sortable by start time, unique across machines."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@contextmanager
def context(*, run_id: str | None = None, lesson_id: str | None = None) -> Iterator[None]:
    """Tag the log records made inside with the run and/or lesson (and reset the stage)."""
    tokens = []
    if run_id is not None:
        tokens.append((_RUN_ID, _RUN_ID.set(run_id)))
        _STATE["run_id"] = run_id
    if lesson_id is not None:
        tokens.append((_LESSON_ID, _LESSON_ID.set(lesson_id)))
        tokens.append((_STAGE, _STAGE.set(None)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_stage(stage: str | None) -> None:
    _STAGE.set(stage)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "run_id": getattr(record, "run_id", None) or _RUN_ID.get() or _STATE.get("run_id"),
            "lesson_id": getattr(record, "lesson_id", None) or _LESSON_ID.get(),
            "stage": getattr(record, "stage", None) or _STAGE.get(),
            "event": getattr(record, "event", None) or "log",
            "duration_s": getattr(record, "duration_s", None),
        }
        status = getattr(record, "status", None)
        if status is not None:
            data["status"] = status
        data["logger"] = record.name
        data["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(fmt: str = "text", level: int = logging.WARNING) -> None:
    """Set the root logger's one handler (stderr) to ``fmt`` (``text`` or ``json``) at ``level``."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    _STATE.update(format=fmt, level=level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic announces its migration context at info level each time the store opens: noise in
    # a nightly log (the schema's revision is in the run record instead).
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


def logging_setup() -> dict[str, Any]:
    """What a worker process needs to log like this one (see :func:`configure_worker_logging`)."""
    return {"format": _STATE["format"], "level": logging.getLogger().level or _STATE["level"],
            "run_id": _RUN_ID.get() or _STATE.get("run_id")}


def configure_worker_logging(setup: dict[str, Any] | None) -> None:
    """In a worker process (local or Ray): the parent's format and level, tagged with its run id."""
    if not setup:
        return
    configure(setup.get("format", "text"), int(setup.get("level", logging.WARNING)))
    _STATE["run_id"] = setup.get("run_id")
    if setup.get("run_id"):
        _RUN_ID.set(setup["run_id"])


__all__ = ["JsonFormatter", "configure", "context", "new_run_id", "set_stage"]
