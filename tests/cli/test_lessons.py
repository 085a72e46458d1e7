"""The lesson commands (:mod:`highlights.cli.lessons`).

``highlights timeline``: the lesson bounds, disconnects and frame counts of a manifest, as a
table or JSON Lines. Manifests give ``ended_at`` for every row (no media decoding), except in the
tests that read a real, tiny video. ``highlights run``: its exit status, summary and the errors
it reports for an unusable database, output folder or weights setting (lessons of
``tests/support/scene.py``, scored by the ``FakeScorer``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import highlights.batch.pools
from highlights.cli import main
from highlights.cli.lessons import _summary_table
from highlights.core.result import LessonResult

from support.fakes import FakeScorer
from support.imports import imports_torch
from support.lessons import lesson_rows, one_lesson, write_manifest

HEADER = "lesson_id,role,path,started_at,ended_at"


def at(second: int) -> str:
    """An ISO time ``second`` seconds after 15:00:00 UTC."""
    return f"2026-11-21T15:{second // 60:02d}:{second % 60:02d}+00:00"


@pytest.fixture()
def runner(monkeypatch) -> CliRunner:
    for name in ("HIGHLIGHTS_CONFIG", "HIGHLIGHTS_FPS", "HIGHLIGHTS_GAP_TOLERANCE_S", "HIGHLIGHTS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)  # the developer's own settings must not leak in
    return CliRunner()


def write_timeline_manifest(folder: Path, *rows: tuple[str, str, str, str, str], name: str = "manifest.csv") -> Path:
    """A CSV manifest and a small dummy file for each recording it names."""
    for row in rows:
        media = folder / row[2]
        media.parent.mkdir(parents=True, exist_ok=True)
        if not media.exists():
            media.write_bytes(b"not really a video")
    path = folder / name
    path.write_text("\n".join([HEADER, *(",".join(row) for row in rows)]) + "\n", encoding="utf-8")
    return path


LESSONS = (
    # L-1: the student joins 90 s late and drops out for 30 s
    ("L-1", "teacher", "L-1/t.mp4", at(0), at(600)),
    ("L-1", "student", "L-1/s1.webm", at(90), at(300)),
    ("L-1", "student", "L-1/s2.webm", at(330), at(600)),
    # L-2: never on together
    ("L-2", "teacher", "L-2/t.mp4", at(0), at(100)),
    ("L-2", "student", "L-2/s.webm", at(200), at(300)),
    # L-3: a bad row (unknown role)
    ("L-3", "teacher", "L-3/t.mp4", at(0), at(100)),
    ("L-3", "parent", "L-3/s.webm", at(0), at(100)),
)


def json_lines(text: str) -> dict[str, dict]:
    records = [json.loads(line) for line in text.splitlines()]
    return {record["lesson_id"]: record for record in records}


def test_table_shows_every_lesson_and_a_failed_one_does_not_stop_the_others(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(main, ["timeline", str(write_timeline_manifest(tmp_path, *LESSONS))])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["LESSON", "STATUS", "START", "END", "DURATION", "STUDENT", "TEACHER", "FRAMES", "NOTE"]
    l1, l2, l3 = lines[1:4]
    assert l1.split()[:2] == ["L-1", "ok"]
    assert "2026-11-21 15:01:30+00:00" in l1 and "2026-11-21 15:10:00+00:00" in l1 and "0:08:30" in l1
    assert "1 / 30.0s" in l1 and "0 / 0.0s" in l1 and l1.split()[-1] == "480"  # 510 s minus 30 offline
    assert l2.split()[:2] == ["L-2", "no_lesson"] and "never on at the same time" in l2
    assert l3.split()[:2] == ["L-3", "failed"]
    assert "manifest.csv row 8 (lesson L-3): role 'parent' is not 'student' or 'teacher'" in l3
    assert lines[4] == "1 failed, 1 no_lesson, 1 ok"


def test_json_lines(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(main, ["timeline", str(write_timeline_manifest(tmp_path, *LESSONS)), "--json"])
    assert result.exit_code == 1
    records = json_lines(result.stdout)
    assert list(records) == ["L-1", "L-2", "L-3"]
    assert records["L-1"] == {
        "lesson_id": "L-1",
        "status": "ok",
        "reason": None,
        "lesson": {"start": "2026-11-21T15:01:30+00:00", "end": "2026-11-21T15:10:00+00:00", "duration_s": 510.0},
        "disconnects": {"student": 1, "teacher": 0, "student_offline_s": 30.0, "teacher_offline_s": 0.0},
        "frames": 480,
        "fps": 1.0,
        "gap_tolerance_s": 2.0,
    }
    assert records["L-2"]["status"] == "no_lesson" and records["L-2"]["lesson"] is None
    assert records["L-2"]["disconnects"]["student"] == 0 and records["L-2"]["frames"] == 0
    assert records["L-3"]["status"] == "failed" and records["L-3"]["disconnects"] is None
    assert records["L-3"]["gap_tolerance_s"] == 2.0
    assert all(isinstance(records["L-1"]["disconnects"][k], float) for k in ("student_offline_s", "teacher_offline_s"))
    assert records["L-3"]["reason"].startswith("manifest.csv row 8 (lesson L-3): ")


def test_exit_status_is_0_when_no_lesson_failed(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(main, ["timeline", str(write_timeline_manifest(tmp_path, *LESSONS[:5]))])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[3] == "1 no_lesson, 1 ok"


def test_lesson_option_picks_lessons_in_the_order_given(runner: CliRunner, tmp_path: Path):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS))
    result = runner.invoke(main, ["timeline", manifest, "--lesson", "L-2", "--lesson", "L-1", "--json"])
    assert result.exit_code == 0, result.output
    assert list(json_lines(result.stdout)) == ["L-2", "L-1"]


def test_an_unknown_lesson_fails_and_the_others_still_print(runner: CliRunner, tmp_path: Path):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS))
    result = runner.invoke(main, ["timeline", manifest, "--lesson", "L-9", "--lesson", "L-1", "--json"])
    assert result.exit_code == 1
    records = json_lines(result.stdout)
    assert records["L-9"]["status"] == "failed"
    assert records["L-9"]["reason"] == "manifest.csv (lesson L-9): no such lesson in the manifest"
    assert records["L-1"]["status"] == "ok"


def test_gap_tolerance_and_fps(runner: CliRunner, tmp_path: Path):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS[:3]))
    result = runner.invoke(main, ["timeline", manifest, "--gap-tolerance", "30", "--fps", "2", "--json"])
    assert result.exit_code == 0, result.output
    record = json_lines(result.stdout)["L-1"]
    assert record["disconnects"]["student"] == 0 and record["disconnects"]["student_offline_s"] == 0
    assert (record["fps"], record["gap_tolerance_s"]) == (2.0, 30.0)
    assert record["frames"] == 2 * 480  # the 30 s without video are still not sampled


def test_settings_come_from_the_config_file_and_the_options_win(runner: CliRunner, tmp_path: Path):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS[:3]))
    config = tmp_path / "highlights.toml"
    config.write_text("gap_tolerance_s = 60.0\nfps = 0.5\n", encoding="utf-8")
    record = json_lines(runner.invoke(main, ["timeline", manifest, "--config", str(config), "--json"]).stdout)["L-1"]
    assert (record["gap_tolerance_s"], record["fps"], record["frames"]) == (60.0, 0.5, 240)
    record = json_lines(runner.invoke(main, ["timeline", manifest, "--config", str(config), "--fps", "1", "--json"]).stdout)["L-1"]
    assert (record["gap_tolerance_s"], record["fps"], record["frames"]) == (60.0, 1.0, 480)


@pytest.mark.parametrize(
    "toml, message",
    [
        ("fpss = 2\n", "fpss: unknown setting 'fpss'"),
        ("[gif]\nmax_byte = 5\n", "gif.max_byte: unknown setting 'max_byte'"),
        ("[gif]\nmax_bytes = \"big\"\n", "gif.max_bytes: expected a whole number, got 'big'"),
        # These were taken silently: a section replaced by a number, 1.5 truncated to 1, true as 1.0.
        ("gif = 5\n", "gif: 'gif' is a section, not a value"),
        ("[detection]\nmax_side = 1.5\n", "detection.max_side: expected a whole number, got 1.5"),
        ("fps = true\n", "fps: expected a number, got True"),
        ("force = 5\n", "force: not a boolean: 5"),
        ("out_dir = \"\"\n", "out_dir: expected a path, got ''"),
    ],
)
def test_a_bad_config_file_is_a_usage_error_naming_the_key(runner: CliRunner, tmp_path: Path, toml: str, message: str):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS[:3]))
    config = tmp_path / "highlights.toml"
    config.write_text(toml, encoding="utf-8")
    result = runner.invoke(main, ["timeline", manifest, "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"highlights.toml: {message}" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("HIGHLIGHTS_GIF__MAX_BYTES", "abc", "expected a whole number, got 'abc'"),
        ("HIGHLIGHTS_GIF", "5", "'gif' is a section, not a value"),
        ("HIGHLIGHTS_OUT_DIR", "", "expected a path, got ''"),
    ],
)
def test_a_bad_environment_variable_is_a_usage_error_naming_it(runner: CliRunner, tmp_path: Path, name, value, message):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS[:3]))
    result = runner.invoke(main, ["timeline", manifest], env={name: value})
    assert result.exit_code == 2, result.output
    assert f"environment variable {name}: {message}" in result.stderr


def test_naive_times_need_a_time_zone(runner: CliRunner, tmp_path: Path):
    rows = (("L-1", "teacher", "t.mp4", "2026-11-21T16:00:00", "2026-11-21T16:10:00"),
            ("L-1", "student", "s.webm", "2026-11-21T16:00:00", "2026-11-21T16:10:00"))
    manifest = str(write_timeline_manifest(tmp_path, *rows))
    result = runner.invoke(main, ["timeline", manifest, "--json"])
    assert result.exit_code == 1
    assert "manifest.csv row 2 (lesson L-1): started_at '2026-11-21T16:00:00' has no UTC offset" in json_lines(result.stdout)["L-1"]["reason"]
    result = runner.invoke(main, ["timeline", manifest, "--timezone", "Europe/Berlin", "--json"])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)["L-1"]["lesson"]["start"] == "2026-11-21T15:00:00+00:00"
    result = runner.invoke(main, ["timeline", manifest, "--timezone", "Mars/Olympus"])
    assert result.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in result.stderr


def test_lessons_file(runner: CliRunner, tmp_path: Path):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS[:3]))
    lessons = tmp_path / "lessons.csv"
    lessons.write_text("lesson_id,student_name,locale,lesson_url\nL-1,Ada,english!,javascript:alert(1)\nL-7,Bo,de,\n", encoding="utf-8")
    result = runner.invoke(main, ["timeline", manifest, "--lessons", str(lessons), "--json"])
    records = json_lines(result.stdout)
    assert result.exit_code == 1
    assert records["L-1"]["status"] == "failed" and "lessons.csv row 2 (lesson L-1): locale" in records["L-1"]["reason"]
    assert "english!" not in result.output and "javascript" not in result.output  # metadata stays out
    assert "L-7" not in records  # in the lessons file only: not a lesson of this manifest
    assert "Ada" not in result.output


def test_jsonl_manifest(runner: CliRunner, tmp_path: Path):
    write_timeline_manifest(tmp_path, *LESSONS[:3])
    keys = HEADER.split(",")
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(dict(zip(keys, row))) for row in LESSONS[:3]) + "\n", encoding="utf-8")
    result = runner.invoke(main, ["timeline", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)["L-1"]["frames"] == 480


def test_rows_naming_no_lesson_are_reported_on_stderr(runner: CliRunner, tmp_path: Path):
    manifest = str(write_timeline_manifest(tmp_path, *LESSONS[:3], ("../x", "student", "x.webm", at(0), at(10))))
    result = runner.invoke(main, ["timeline", manifest, "--json"])
    assert result.exit_code == 1
    assert list(json_lines(result.stdout)) == ["L-1"]  # stdout stays JSON Lines
    assert "manifest problem: manifest.csv row 5: lesson_id '../x' is not a valid id" in result.stderr


def test_unusable_manifest_is_an_error_message_not_a_traceback(runner: CliRunner, tmp_path: Path):
    path = tmp_path / "manifest.csv"
    path.write_text("lesson_id,role,path\nL-1,student,x.webm\n", encoding="utf-8")
    result = runner.invoke(main, ["timeline", str(path)])
    assert result.exit_code == 2
    assert "missing: started_at" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("option", [["--fps", "0"], ["--gap-tolerance", "-1"]])
def test_bad_options(runner: CliRunner, tmp_path: Path, option: list[str]):
    result = runner.invoke(main, ["timeline", str(write_timeline_manifest(tmp_path, *LESSONS[:3])), *option])
    assert result.exit_code == 2


def test_python_api_matches_the_command(tmp_path: Path):
    from highlights.inputs.manifest import read_manifest
    from highlights.stages.timeline import plan_manifest

    plans = plan_manifest(read_manifest(write_timeline_manifest(tmp_path, *LESSONS)), fps=1.0)
    assert [(p.lesson_id, p.status, len(p.points)) for p in plans] == [("L-1", "ok", 480), ("L-2", "no_lesson", 0), ("L-3", "failed", 0)]
    assert plans[0].points[0].source.name == "s1.webm" and plans[0].points[-1].source.name == "s2.webm"


def test_settings_and_the_timeline_command_do_not_import_torch(tmp_path: Path):
    """Loading the settings, and all of `highlights timeline`, leave torch (1-2 s to import) out."""
    import numpy as np

    from highlights.media.synthetic import write_video

    (tmp_path / "L-1").mkdir()
    write_video(tmp_path / "L-1/student.webm", (np.full((48, 64, 3), 40 * i % 255, np.uint8) for i in range(20)), fps=10, codec="vp8")
    manifest = write_timeline_manifest(tmp_path, ("L-1", "teacher", "L-1/teacher.mp4", at(0), at(60)),
                              ("L-1", "student", "L-1/student.webm", at(10), ""))
    assert not imports_torch("import highlights.config\nhighlights.config.load_settings(None)")
    command = f"from highlights.cli import main\nmain(['timeline', {str(manifest)!r}, '--json'], standalone_mode=False)"
    assert not imports_torch(command)
    assert imports_torch("from highlights.models.detection import FaceDetector\nFaceDetector()")  # the probe sees it


# --------------------------------------------------------------------------- real media


def test_end_times_read_from_real_media_and_an_unreadable_recording(runner: CliRunner, tmp_path: Path):
    pytest.importorskip("highlights.media.decode")
    import numpy as np

    from highlights.media.synthetic import write_video

    (tmp_path / "L-1").mkdir()
    write_video(tmp_path / "L-1/student.webm", (np.full((48, 64, 3), 40 * i % 255, np.uint8) for i in range(30)), fps=10, codec="vp8")
    (tmp_path / "L-2").mkdir()
    (tmp_path / "L-2/student.webm").write_bytes(b"\x1aE\xdf\xa3 this is not a video at all" * 10)
    rows = (
        ("L-1", "teacher", "L-1/teacher.mp4", at(0), at(60)),
        ("L-1", "student", "L-1/student.webm", at(10), ""),  # 3 s of video: ends at 15:00:13
        ("L-2", "teacher", "L-2/teacher.mp4", at(0), at(60)),
        ("L-2", "student", "L-2/student.webm", at(10), ""),
        ("L-3", "teacher", "L-3/teacher.mp4", at(0), at(60)),
        ("L-3", "student", "L-3/student.webm", at(0), at(60)),
    )
    result = runner.invoke(main, ["timeline", str(write_timeline_manifest(tmp_path, *rows)), "--json"])
    assert result.exit_code == 1, result.output
    records = json_lines(result.stdout)
    assert records["L-1"]["status"] == "ok"
    assert records["L-1"]["lesson"]["start"] == "2026-11-21T15:00:10+00:00"
    assert records["L-1"]["lesson"]["duration_s"] == pytest.approx(3.0, abs=0.15)
    assert records["L-1"]["frames"] == 3
    assert records["L-2"]["status"] == "failed"
    assert records["L-2"]["reason"].startswith("manifest.csv row 5 (lesson L-2): student recording student.webm cannot be read: ")
    assert records["L-3"]["status"] == "ok"


def test_an_end_time_a_century_off_fails_its_lesson_at_once(runner: CliRunner, tmp_path: Path):
    # It used to plan one sample point per second of 100 years: no end, memory without bound.
    century = at(150).replace("2026-", "2126-")
    manifest = write_timeline_manifest(tmp_path, ("L-1", "teacher", "L-1/t.mp4", at(0), century), *LESSONS[1:3])
    result = runner.invoke(main, ["timeline", str(manifest), "--json"])
    assert result.exit_code == 1, result.output
    record = json_lines(result.stdout)["L-1"]
    assert record["status"] == "failed" and record["frames"] == 0
    assert record["reason"].startswith(f"manifest.csv row 2 (lesson L-1): ended_at '{century}' is 36,524 days after "
                                       "started_at: a recording lasts at most 24 hours")


# --------------------------------------------------------------------------- highlights run


def test_cli_run_exit_status_and_summary(videos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    runner = CliRunner()

    def run(manifest: Path, out: Path):
        return runner.invoke(main, ["run", str(manifest), "--out", str(out), "--no-progress", "--workers", "0"])

    # All lessons ok: exit 0.
    good = one_lesson(videos, tmp_path / "good")
    outcome = run(good, tmp_path / "out-good")
    assert outcome.exit_code == 0, outcome.output
    assert "L-1001" in outcome.stdout and "ok" in outcome.stdout

    # One lesson failed: exit 1, both lessons in the summary.
    root = tmp_path / "mixed"
    rows = lesson_rows(videos, root, "L-2001") + lesson_rows(videos, root, "L-2002")
    (root / "L-2002" / "student.webm").write_bytes(b"\x00garbage" * 500)
    outcome = run(write_manifest(root, rows), tmp_path / "out-mixed")
    assert outcome.exit_code == 1, outcome.output
    assert "L-2001" in outcome.stdout and "L-2002" in outcome.stdout
    assert "failed" in outcome.stdout

    # A manifest without a required column: unusable, exit 2.
    root = tmp_path / "nocolumn"
    rows = [row[:3] for row in lesson_rows(videos, root, "L-3001")]
    outcome = run(write_manifest(root, rows, header="lesson_id,role,path"), tmp_path / "out-nocolumn")
    assert outcome.exit_code == 2, outcome.output
    assert "started_at" in outcome.output


def test_cli_run_unusable_database_or_output_folder(videos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    runner = CliRunner()
    manifest = one_lesson(videos, tmp_path / "rec")
    out = tmp_path / "out"

    def run(*options: str):
        return runner.invoke(main, ["run", str(manifest), "--no-progress", "--workers", "0", *options])

    # An unreachable PostgreSQL server: a clear error naming the database, exit 1, no password.
    pytest.importorskip("psycopg")
    outcome = run("--out", str(out), "--db", "postgresql+psycopg://u:secretpw@127.0.0.1:1/db?connect_timeout=3")
    assert outcome.exit_code == 1, outcome.output
    assert "database postgresql+psycopg://u:***@127.0.0.1:1/db?connect_timeout=3 cannot be opened" in outcome.stderr
    assert "secretpw" not in outcome.output and "Traceback" not in outcome.output
    # A password with an unescaped '@' (SQLAlchemy puts its tail in front of the host) or in the query.
    outcome = run("--out", str(out), "--db", "postgresql+psycopg://u:S3cret@PW@127.0.0.1:1/db?connect_timeout=3&password=Q1w2e3")
    assert outcome.exit_code == 1, outcome.output
    assert "database postgresql+psycopg://u:***@127.0.0.1:1/db?connect_timeout=3&password=*** cannot be opened" in outcome.stderr
    assert "S3cret" not in outcome.output and "PW@" not in outcome.output and "Q1w2e3" not in outcome.output

    # A URL that does not parse is a bad option: exit 2, and the URL is not echoed.
    outcome = run("--out", str(out), "--db", "postgresql+psycopg://u:secretpw@db:notaport/x")
    assert outcome.exit_code == 2, outcome.output
    assert "--db / db_url is not a database URL" in outcome.stderr and "secretpw" not in outcome.output
    # An in-memory database keeps nothing: it used to be accepted, the run exiting 0 with nothing stored.
    for memory in ("sqlite:///", "sqlite://", "sqlite:///:memory:"):
        outcome = run("--out", str(tmp_path / "out-memory"), "--db", memory)
        assert outcome.exit_code == 2, outcome.output
        assert "is an in-memory database: it keeps nothing" in outcome.stderr
    assert not (tmp_path / "out-memory").exists()

    # An output folder that cannot be made (a file in the way), from --out or the config: exit 2.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    outcome = run("--out", str(blocker / "out"))
    assert outcome.exit_code == 2, outcome.output
    assert f"output folder {blocker / 'out'} cannot be created" in outcome.stderr
    config = tmp_path / "highlights.toml"
    config.write_text(f'out_dir = "{blocker}"\n', encoding="utf-8")
    outcome = run("--config", str(config))
    assert outcome.exit_code == 2, outcome.output
    assert f"output folder {blocker} is a file, not a folder" in outcome.stderr

    # An unknown --lesson next to a known one: it fails (exit 1) naming the manifest's file, not its folder.
    outcome = run("--out", str(out), "--lesson", "L-nope", "--lesson", "L-1001", "--lesson", "L-1001")
    assert outcome.exit_code == 1, outcome.output
    assert "lesson L-nope: not in manifest manifest.csv" in outcome.stdout
    assert str(tmp_path) not in outcome.stdout.split("results:")[0]
    assert [line.split()[0] for line in outcome.stdout.splitlines()[1:3]] == ["L-nope", "L-1001"]


def test_a_multi_line_database_error_is_one_line_of_the_summary() -> None:
    result = LessonResult("L-1", "failed", reason="lesson L-1: database x: OperationalError: locked\n[SQL: INSERT]\n(Background)")
    table = _summary_table([result, LessonResult("L-2", "ok")], {})
    assert len(table.splitlines()) == 4  # header, two lessons, counts


@pytest.mark.parametrize("problem", ["missing", "not weights"])
def test_a_weights_setting_that_names_no_usable_file_is_a_bad_setting(videos, tmp_path: Path, clean_env, problem) -> None:
    # It used to reach the workers, which could not start: exit 1, "the face models cannot be
    # loaded", and a run record marked failed, where the README promises exit 2 for a bad setting.
    root = tmp_path / "rec"
    manifest = write_manifest(root, lesson_rows(videos, root, "L-1001"))
    weights = tmp_path / "age-school.pt"
    if problem == "not weights":
        weights.write_text("not a weights file\n")
    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), "--no-progress"],
                               env={"HIGHLIGHTS_AGE_WEIGHTS": str(weights)})
    assert outcome.exit_code == 2, outcome.output
    assert "age model weights" in outcome.output and "age-school.pt" in outcome.output
    assert not (tmp_path / "out" / "L-1001").exists()  # no lesson ran
