"""Batches of lessons for the pools' tests (``tests/batch``): a mixed manifest, a run's
snapshot with what legitimately differs between two runs taken out, and its run record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from highlights.config import Settings
from highlights.core.result import LessonResult
from highlights.persist.store import HighlightRun, ResultStore

from support.lessons import lesson_rows, write_manifest
from support.paths import REPO_ROOT


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


def start_run_with_a_hanging_lesson(videos, tmp_path: Path, *options: str) -> tuple[subprocess.Popen, Path]:
    """``highlights run`` (with ``options``) in a process group of its own over two lessons, the
    second of which hangs in its worker (``FAULTS_ENV``): for the SIGTERM tests. Returns the
    process and its output folder."""
    from highlights.batch.pools import FAULTS_ENV

    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2", student="shy"))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIGHLIGHTS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env[FAULTS_ENV] = "L-2=hang"
    command = [sys.executable, "-c", "from highlights.cli import main; main()", "run", str(manifest), "--out", str(out),
               *options, "--no-progress"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    return process, out
