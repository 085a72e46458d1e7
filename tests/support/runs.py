"""Batches of lessons for the pools' tests (``tests/batch``): a mixed manifest, a run's
snapshot with what legitimately differs between two runs taken out, and its run record."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from highlights.config import Settings
from highlights.core.result import LessonResult
from highlights.persist.store import HighlightRun, ResultStore

from support.lessons import lesson_rows, write_manifest


def mixed_manifest(videos, root: Path) -> Path:
    """Four lessons: two with smiles (ok), a shy child (no_highlight), an unreadable student file (failed)."""
    rows = (lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2", student="shy")
            + lesson_rows(videos, root, "L-3") + lesson_rows(videos, root, "L-4"))
    (root / "L-3" / "student.webm").write_bytes(b"\x00garbage" * 500)
    return write_manifest(root, rows)


def snapshot(settings: Settings, results: list[LessonResult]) -> dict:
    """What a run produced, with what legitimately differs between two runs taken out: the GIF's
    random name, the output folder, times."""
    out = Path(settings.out_dir)
    store = ResultStore(settings.database_url)
    try:
        rows = {r.lesson_id: store.row(r.lesson_id) for r in results}
    finally:
        store.dispose()
    snap: dict = {}
    for result in results:
        folder = out / result.lesson_id

        def clean(value: str, result: LessonResult = result) -> str:
            value = value.replace(str(out.resolve()), "OUT").replace(str(out), "OUT")
            return value.replace(result.gif, "GIF") if result.gif else value

        files = {}
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.name in ("stages.json", "result.json", ".lock"):
                continue
            name = "GIF" if path.suffix == ".gif" else path.name
            data = path.read_bytes()
            files[name] = clean(data.decode()) if path.suffix in (".html", ".txt", ".json", ".csv") else data
        row = dict(rows[result.lesson_id] or {})
        for key in ("created_at", "updated_at"):
            row.pop(key, None)
        row = {k: clean(v) if isinstance(v, str) else v for k, v in row.items()}
        as_dict = result.to_dict()
        for key in ("started_at", "finished_at"):
            as_dict.pop(key)
        snap[result.lesson_id] = {
            "result": json.loads(clean(json.dumps(as_dict))), "files": files, "row": row,
            "stages": sorted(json.loads((folder / "stages.json").read_text())) if (folder / "stages.json").exists() else [],
        }
    return snap


def run_record(settings: Settings) -> list[dict]:
    store = ResultStore(settings.database_url)
    try:
        table = HighlightRun.__table__
        with store.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(select(table).order_by(table.c.started_at))]
    finally:
        store.dispose()
