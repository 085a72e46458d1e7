"""The stage graph (:mod:`highlights.lesson.graph`) on its own: the declared stages, the
fingerprints derived from the declarations, and :func:`~highlights.lesson.graph.produce`'s
"current? load : run, write, record" with a toy stage. The real stages run in tests/lesson/test_run.py."""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from highlights.config import Settings
from highlights.core.lesson import LessonInfo, LessonInput, Recording, SourceRow
from highlights.lesson.graph import (
    INPUTS,
    STAGES,
    LessonRun,
    Progress,
    Stage,
    StageError,
    StageKeys,
    produce,
    stage_keys,
)
from highlights.lesson.resume import StageState
from highlights.models.detection import DetectionOptions

START = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)


class Recorder(Progress):
    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, lesson_id: str, stage: str) -> None:
        self.stages.append(stage)


def lesson_run(folder: Path, key: str = "k1") -> LessonRun:
    keys = StageKeys({stage.name: f"{stage.name}-key" for stage in STAGES}, overall="o")
    keys["selection"] = keys["gif"] = keys["scores"] = key
    return LessonRun(SimpleNamespace(lesson_id="L-1"), None, folder, keys, StageState(folder), {}, Recorder(), None)


def a_lesson(tmp_path: Path) -> LessonInput:
    at = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
    recordings = [Recording("L-1", role, tmp_path / f"{role}.webm", at, None, SourceRow(tmp_path / "m.csv", n + 2))
                  for n, role in enumerate(("student", "teacher"))]
    return LessonInput("L-1", recordings, LessonInfo("L-1", student_name="Anna"))


class Toy:
    """A stage under the selection stage's name: writes ``toy.txt`` from its input."""

    def __init__(self) -> None:
        self.runs = self.loads = 0

    def run(self, c: LessonRun, text: str) -> str:
        self.runs += 1
        (c.folder / "toy.txt").write_text(text, encoding="utf-8")
        return text

    def load(self, c: LessonRun, record: dict) -> str:
        self.loads += 1
        return (c.folder / "toy.txt").read_text(encoding="utf-8")

    def stage(self) -> Stage:
        return Stage("selection", ("scores",), settings=lambda s: {}, files=("toy.txt",), run=self.run, load=self.load,
                     notes=lambda run, text: {"length": len(text)})


def test_every_stage_is_declared_once_in_run_order():
    names = [stage.name for stage in STAGES]
    assert names == ["timeline", "scores", "analytics", "selection", "gif", "snippet", "report"]


def test_each_stage_runs_on_exactly_the_values_it_declares():
    """The data flow and the fingerprints come from one declaration: a stage's ``run`` takes the
    values its ``needs`` name, in that order, and each is a lesson input or an earlier stage."""
    earlier: set[str] = set()
    for stage in STAGES:
        parameters = list(inspect.signature(stage.run).parameters)[1:]  # after the LessonRun
        assert len(parameters) == len(stage.needs), stage.name
        assert all(need in INPUTS or need in earlier for need in stage.needs), stage.name
        earlier.add(stage.name)


def test_a_setting_changes_the_fingerprints_of_its_stage_and_those_after_it_only(tmp_path: Path):
    lesson = a_lesson(tmp_path)
    versions = {"smile_model": "s1", "age_model": "a1"}
    base = stage_keys(lesson, Settings(), versions)
    changed = stage_keys(lesson, Settings().with_overrides(gif__max_bytes=500_000), versions)
    assert [name for name in base if base[name] != changed[name]] == ["gif", "snippet", "report", "overall"]
    new_model = stage_keys(lesson, Settings(), {**versions, "smile_model": "s2"})
    assert new_model["timeline"] == base["timeline"] and new_model["scores"] != base["scores"]
    renamed = stage_keys(replace(lesson, info=LessonInfo("L-1", student_name="Bob")), Settings(), versions)
    assert [name for name in base if base[name] != renamed[name]] == ["snippet", "report", "overall"]


def test_where_the_lessons_row_was_read_is_not_part_of_the_fingerprints(tmp_path: Path):
    # A row moved down the lessons file, or the file read again from a bucket (a new temporary
    # copy each run), is the same lesson: the night's rerun must skip it, not redo its report.
    lesson = a_lesson(tmp_path)
    versions = {"smile_model": "s1", "age_model": "a1"}
    one = replace(lesson, info=LessonInfo("L-1", student_name="Ann", source=SourceRow(tmp_path / "a/lessons.csv", 2)))
    other = replace(lesson, info=LessonInfo("L-1", student_name="Ann", source=SourceRow(tmp_path / "b/lessons.csv", 9)))
    assert stage_keys(one, Settings(), versions) == stage_keys(other, Settings(), versions)


def test_a_stage_runs_and_is_recorded_then_is_loaded_while_current(tmp_path: Path):
    toy = Toy()
    first = lesson_run(tmp_path)
    assert produce(first, toy.stage(), {"scores": "smiles"}) == "smiles"
    assert (toy.runs, toy.loads) == (1, 0)
    record = json.loads((tmp_path / "stages.json").read_text(encoding="utf-8"))["selection"]
    assert record["key"] == "k1" and record["files"] == ["toy.txt"] and record["length"] == 6
    assert "finished_at" in record
    assert first.progress.stages == ["selection"]

    # A rerun with the same fingerprint loads the file; the input is not even looked at.
    assert produce(lesson_run(tmp_path), toy.stage(), {"scores": "ignored"}) == "smiles"
    assert (toy.runs, toy.loads) == (1, 1)

    # A new fingerprint, or a missing file, runs it again.
    assert produce(lesson_run(tmp_path, key="k2"), toy.stage(), {"scores": "frowns"}) == "frowns"
    (tmp_path / "toy.txt").unlink()
    assert produce(lesson_run(tmp_path, key="k2"), toy.stage(), {"scores": "again"}) == "again"
    assert (toy.runs, toy.loads) == (3, 1)


def test_a_stage_without_a_loader_gives_none_when_current(tmp_path: Path):
    toy = Toy()
    stage = dataclasses.replace(toy.stage(), load=None)
    produce(lesson_run(tmp_path), stage, {"scores": "smiles"})
    assert produce(lesson_run(tmp_path), stage, {"scores": "smiles"}) is None
    assert toy.runs == 1


def test_files_named_at_run_time_are_recorded(tmp_path: Path):
    """The GIF's way: its file name is part of its value."""

    def run(c: LessonRun) -> str:
        (c.folder / "drawn.gif").write_bytes(b"GIF89a")
        return "drawn.gif"

    stage = Stage("gif", (), settings=lambda s: {}, files=lambda name: (name,), run=run,
                  load=lambda c, record: record["gif"], notes=lambda run, name: {"gif": name})
    assert produce(lesson_run(tmp_path), stage, {}) == "drawn.gif"
    record = json.loads((tmp_path / "stages.json").read_text(encoding="utf-8"))["gif"]
    assert record["files"] == ["drawn.gif"] and record["gif"] == "drawn.gif"
    assert produce(lesson_run(tmp_path), stage, {}) == "drawn.gif"  # loaded from the record


def test_an_error_is_blamed_on_its_stage_and_nothing_is_recorded(tmp_path: Path):
    def run(c: LessonRun) -> None:
        raise ValueError("no frames")

    with pytest.raises(StageError) as raised:
        produce(lesson_run(tmp_path), Stage("scores", (), settings=lambda s: {}, files=("scores.csv",), run=run), {})
    assert raised.value.stage == "scores"
    assert isinstance(raised.value.__cause__, ValueError)
    assert not (tmp_path / "stages.json").exists()


def test_the_pipeline_decodes_the_plans_points(monkeypatch, tmp_path):
    """The scores stage gets its frames from the plan's points, not from a second computation."""
    from highlights.lesson import graph as runner
    from highlights.stages import timeline

    def no_second_computation(*args, **kwargs):
        raise AssertionError("sample points computed outside the plan")

    seen = {}
    real = runner.frames_at_points

    def spy(points):
        seen["points"] = list(points)
        return real(points)

    monkeypatch.setattr(runner, "frames_at_points", spy)
    assert timeline.sample_points is not no_second_computation  # the plan's own computation stays
    from highlights.media.synthetic import index_frame, write_lesson_files, write_video

    write_video(tmp_path / "s.mp4", (index_frame(i, (64, 48)) for i in range(50)), fps=5)
    write_video(tmp_path / "t.mp4", (index_frame(i, (64, 48)) for i in range(60)), fps=5)
    manifest, lessons = write_lesson_files(tmp_path, "L-1", START, [("s.mp4", "student", 0, 10), ("t.mp4", "teacher", -1, 12)],
                                           {"student_name": "A", "subject": "M", "locale": "en", "lesson_url": "https://x.example/l"})
    from highlights.api import run_manifest
    from highlights.config import Settings

    class NoFaces:
        versions = {"detector": "none", "smile": "none", "age": "none"}
        options = DetectionOptions()

        def score_images(self, images):
            return [[] for _ in images]

    [result] = run_manifest(manifest, Settings(out_dir=tmp_path / "out"), lessons_path=lessons, scorer=NoFaces())
    assert result.status == "no_highlight"
    assert [p.offset_s for p in seen["points"]] == [float(k) for k in range(10)]
