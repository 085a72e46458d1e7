"""A database writer process for the concurrent-writers tests (kept apart from the test modules so
a spawned process imports only the store, not torch)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from highlights.core.result import LessonResult
from highlights.persist.store import ResultStore


def write_rows(url: str, worker: int, ids: list[str], folder: str) -> None:
    """One run's writes: its run record, then a row for each lesson of ``ids``."""
    store = ResultStore(url)
    run_id = f"{uuid.uuid4().hex[:8]}-{worker}"
    status = "ok" if worker % 2 == 0 else "no_highlight"
    store.start_run(run_id, host="test", options={"lessons": len(ids)}, started_at=datetime.now(timezone.utc))
    for lesson_id in ids:
        store.save(LessonResult(lesson_id, status, reason=f"writer {worker}", folder=Path(folder)))
    store.finish_run(run_id, finished_at=datetime.now(timezone.utc), counts={status: len(ids)}, versions={},
                     lessons_per_minute=1.0)
    store.dispose()
