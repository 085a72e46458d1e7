"""Log output (:mod:`highlights.logs`): a run's JSON log lines carry run, lesson, stage and
event, and no personal data."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

import highlights.batch.pools
from highlights.cli import main

from support.fakes import FakeScorer
from support.lessons import lesson_rows, write_manifest


def test_json_log_lines_carry_run_lesson_stage_event_and_no_personal_data(videos, tmp_path: Path, monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1") + lesson_rows(videos, root, "L-2", student="shy"))
    lessons = root / "lessons.csv"
    lessons.write_text("lesson_id,student_name,subject,locale,lesson_url\n"
                       "L-1,Zoë Quillfeather,Maths,en,https://school.example/l/1?token=s3cret\n", encoding="utf-8")
    try:
        outcome = CliRunner().invoke(main, ["run", str(manifest), "--lessons", str(lessons), "--out", str(tmp_path / "out"),
                                            "--no-progress", "--workers", "0", "--log-format", "json"])
    finally:
        from highlights.logs import configure

        configure("text")
    assert outcome.exit_code == 0, outcome.output
    records = [json.loads(line) for line in outcome.stderr.splitlines() if line.strip()]
    assert records
    for record in records:
        assert {"time", "level", "run_id", "lesson_id", "stage", "event", "duration_s"} <= set(record)
        datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
    run_ids = {r["run_id"] for r in records}
    assert len(run_ids) == 1 and None not in run_ids, [(r["run_id"], r["event"], r.get("message")) for r in records]
    finished = {r["lesson_id"]: r for r in records if r["event"] == "lesson_finished"}
    assert finished["L-1"]["status"] == "ok" and finished["L-2"]["status"] == "no_highlight"
    assert finished["L-1"]["duration_s"] > 0
    assert {r["stage"] for r in records if r["lesson_id"] == "L-1"} >= {"scores", "gif", "report"}
    assert {r["event"] for r in records} >= {"run_started", "lesson_started", "lesson_finished", "run_finished"}
    assert "Quillfeather" not in outcome.stderr and "s3cret" not in outcome.stderr
