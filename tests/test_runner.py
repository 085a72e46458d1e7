"""The stage runner (:mod:`highlights.runner`) on its own: the declared stages, and
:func:`~highlights.runner.produce`'s "current? load : run, write, record" with a toy stage.
The real stages run in tests/test_pipeline.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from highlights.runner import STAGES, LessonRun, Progress, Stage, StageError, produce
from highlights.stages import StageKeys, StageState


class Recorder(Progress):
    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, lesson_id: str, stage: str) -> None:
        self.stages.append(stage)


def lesson_run(folder: Path, selection_key: str = "k1") -> LessonRun:
    keys = StageKeys(*(f"{field.name}-key" for field in dataclasses.fields(StageKeys)))
    keys = dataclasses.replace(keys, selection=selection_key)
    return LessonRun(SimpleNamespace(lesson_id="L-1"), None, folder, keys, StageState(folder), {}, Recorder(), None)


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
        return Stage("selection", ("toy.txt",), run=self.run, load=self.load, notes=lambda run, text: {"length": len(text)})


def test_every_stage_is_declared_once_with_a_fingerprint_of_its_own():
    names = [stage.name for stage in STAGES]
    assert len(set(names)) == len(names)
    assert set(names) == {field.name for field in dataclasses.fields(StageKeys)} - {"overall"}
    assert names == ["timeline", "scores", "analytics", "selection", "gif", "snippet", "report"]


def test_a_stage_runs_and_is_recorded_then_is_loaded_while_current(tmp_path: Path):
    toy = Toy()
    first = lesson_run(tmp_path)
    assert produce(first, toy.stage(), "smiles") == "smiles"
    assert (toy.runs, toy.loads) == (1, 0)
    record = json.loads((tmp_path / "stages.json").read_text(encoding="utf-8"))["selection"]
    assert record["key"] == "k1" and record["files"] == ["toy.txt"] and record["length"] == 6
    assert "finished_at" in record
    assert first.progress.stages == ["selection"]

    # A rerun with the same fingerprint loads the file; the input is not even looked at.
    assert produce(lesson_run(tmp_path), toy.stage(), "ignored") == "smiles"
    assert (toy.runs, toy.loads) == (1, 1)

    # A new fingerprint, or a missing file, runs it again.
    assert produce(lesson_run(tmp_path, selection_key="k2"), toy.stage(), "frowns") == "frowns"
    (tmp_path / "toy.txt").unlink()
    assert produce(lesson_run(tmp_path, selection_key="k2"), toy.stage(), "again") == "again"
    assert (toy.runs, toy.loads) == (3, 1)


def test_a_stage_without_a_loader_gives_none_when_current(tmp_path: Path):
    toy = Toy()
    stage = dataclasses.replace(toy.stage(), load=None)
    produce(lesson_run(tmp_path), stage, "smiles")
    assert produce(lesson_run(tmp_path), stage, "smiles") is None
    assert toy.runs == 1


def test_files_named_at_run_time_are_recorded(tmp_path: Path):
    """The GIF's way: its file name is part of its value."""

    def run(c: LessonRun) -> str:
        (c.folder / "drawn.gif").write_bytes(b"GIF89a")
        return "drawn.gif"

    stage = Stage("gif", lambda name: (name,), run=run, load=lambda c, record: record["gif"],
                  notes=lambda run, name: {"gif": name})
    assert produce(lesson_run(tmp_path), stage) == "drawn.gif"
    record = json.loads((tmp_path / "stages.json").read_text(encoding="utf-8"))["gif"]
    assert record["files"] == ["drawn.gif"] and record["gif"] == "drawn.gif"
    assert produce(lesson_run(tmp_path), stage) == "drawn.gif"  # loaded from the record


def test_an_error_is_blamed_on_its_stage_and_nothing_is_recorded(tmp_path: Path):
    def run(c: LessonRun) -> None:
        raise ValueError("no frames")

    with pytest.raises(StageError) as raised:
        produce(lesson_run(tmp_path), Stage("scores", ("scores.csv",), run=run))
    assert raised.value.stage == "scores"
    assert isinstance(raised.value.__cause__, ValueError)
    assert not (tmp_path / "stages.json").exists()
