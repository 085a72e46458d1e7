"""Lesson folders kept in a bucket (``Settings.out_url``, ``--out s3://...``), against the
session's real S3 server: the objects are the folder a run on disk writes, a rerun on another
machine (a new working folder) resumes or skips from the bucket, a withdrawal reaches the
objects, and a bucket that cannot take the outputs fails the lesson and keeps the earlier ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.lesson.withdraw import withdraw_lesson
from highlights.stages.snippet import EmailOptions
from highlights.storage import objects

from support.fakes import FakeScorer
from support.lessons import db_row
from support.weed import READER, bucket_lessons, object_headers, run_with_uploads_cut, use_s3

CDN = "https://cdn.example.com/highlights"


def in_bucket(tmp_path: Path, publish: str, machine: str = "a", **fields) -> Settings:
    """Outputs under ``<publish's run>/out``, the lessons run in ``tmp_path/<machine>``."""
    out_url = publish.rsplit("/", 1)[0] + "/out"
    return Settings(out_url=out_url, work_dir=tmp_path / machine, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                    publish=publish, email=EmailOptions(public_base_url=CDN), **fields)


def objects_of(settings: Settings, lesson_id: str) -> dict[str, objects.ObjectInfo]:
    prefix = f"{settings.out_url}/{lesson_id}/"
    return {info.url.rsplit("/", 1)[-1]: info for info in objects.list_objects(prefix)}


def test_the_objects_are_the_folder_a_run_on_disk_writes(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, local_manifest = bucket_lessons(videos, tmp_path)
    settings = in_bucket(tmp_path, publish)
    results = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert [(r.lesson_id, r.status) for r in results] == [("L-1", "ok"), ("L-2", "ok")], [r.reason for r in results]
    from_disk = run_manifest(local_manifest, Settings(out_dir=tmp_path / "disk"), scorer=FakeScorer())

    for result, local in zip(results, from_disk):
        lesson_id = result.lesson_id
        stored = objects_of(settings, lesson_id)
        on_disk = {p.name for p in (tmp_path / "disk" / lesson_id).iterdir() if not p.name.startswith(".")}
        assert set(stored) - {result.gif} == on_disk - {local.gif}, (sorted(stored), sorted(on_disk))
        assert result.gif in stored and result.frames == local.frames and result.frames
        prefix = f"{settings.out_url}/{lesson_id}"
        assert result.location == prefix
        assert objects.read_bytes(f"{prefix}/scores.csv") == (tmp_path / "disk" / lesson_id / "scores.csv").read_bytes()
        gif = object_headers(f"{prefix}/{result.gif}")
        assert gif["Content-Type"] == "image/gif" and gif["body"] == object_headers(f"{publish}/{lesson_id}/{result.gif}")["body"]
        report = object_headers(f"{prefix}/report.html")
        assert report["Content-Type"] == "text/html; charset=utf-8" and report["Cache-Control"] == "private, no-store"
        assert json.loads(objects.read_bytes(f"{prefix}/result.json"))["status"] == "ok"
        # Nothing of the lesson stays on the machine that ran it (its lock file aside).
        assert [p.name for p in (tmp_path / "a" / lesson_id).iterdir()] == [".lock"]
        assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
        row, campaign = db_row(settings, lesson_id)
        assert row["gif_url"] == f"{CDN}/{lesson_id}/{result.gif}" and campaign is not None
        assert row["gif_path"] == f"{prefix}/{result.gif}" and row["result_path"] == f"{prefix}/result.json"


def test_a_rerun_on_another_machine_resumes_from_the_bucket(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    [first] = run_manifest(manifest_url, in_bucket(tmp_path, publish, "a"), scorer=FakeScorer())
    before = objects_of(in_bucket(tmp_path, publish), "L-1")
    time.sleep(1.1)  # Last-Modified has a resolution of a second

    # An empty working folder (another machine, a Ray node): skipped, nothing written again.
    [again] = run_manifest(manifest_url, in_bucket(tmp_path, publish, "b"), scorer=FakeScorer())
    assert again.skipped and again.status == "ok" and again.gif == first.gif
    assert objects_of(in_bucket(tmp_path, publish), "L-1") == before

    # A report setting changes: resumed at the report stage, under the same GIF name; neither
    # GIF is uploaded again.
    published_gif = f"{publish}/L-1/{first.gif}"
    published_at = objects.stat(published_gif).modified
    [resumed] = run_manifest(manifest_url, in_bucket(tmp_path, publish, "c", analytics_bucket_s=30), scorer=FakeScorer())
    assert resumed.status == "ok" and not resumed.skipped and resumed.gif == first.gif
    after = objects_of(in_bucket(tmp_path, publish), "L-1")
    assert after[first.gif] == before[first.gif] and objects.stat(published_gif).modified == published_at
    assert after["scores.csv"] == before["scores.csv"]  # the scores stage was not run again
    assert after["result.json"].modified > before["result.json"].modified


def test_a_withdrawal_reaches_the_objects_and_sticks(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    settings = in_bucket(tmp_path, publish)
    [first] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert first.status == "ok"

    withdrawn = withdraw_lesson("L-1", in_bucket(tmp_path, publish, "elsewhere"))
    assert withdrawn.status == "withdrawn"
    stored = objects_of(settings, "L-1")
    assert first.gif not in stored and "snippet.html" not in stored and "snippet.txt" not in stored
    assert {"result.json", "scores.csv", "report.html"} <= set(stored)
    assert json.loads(objects.read_bytes(f"{settings.out_url}/L-1/result.json"))["status"] == "withdrawn"
    assert "withdrawn" in objects.read_bytes(f"{settings.out_url}/L-1/report.html").decode()
    with pytest.raises(objects.ObjectStoreError, match="does not exist"):
        objects.stat(f"{publish}/L-1/{first.gif}")
    assert db_row(settings, "L-1")[0]["status"] == "withdrawn"

    [later] = run_manifest(manifest_url, in_bucket(tmp_path, publish, "b", force=True), scorer=FakeScorer())
    assert later.status == "withdrawn" and later.skipped  # a night's --force leaves it withdrawn


def test_a_bucket_that_cannot_take_the_outputs_fails_the_lesson_and_keeps_the_earlier_ones(weed, monkeypatch, videos,
                                                                                          tmp_path: Path) -> None:
    use_s3(monkeypatch, weed.endpoint)
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    settings = in_bucket(tmp_path, publish)
    [first] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    before = objects_of(settings, "L-1")
    again = run_with_uploads_cut(weed, monkeypatch, manifest_url, in_bucket(tmp_path, publish, "b", force=True),
                                 from_stage="report")
    assert again.status == "failed"
    assert again.reason.startswith("lesson L-1: its outputs cannot be put in the bucket: ")
    assert "connection was reset" in again.reason and str(tmp_path) not in again.reason
    after = objects_of(settings, "L-1")
    assert after["result.json"] == before["result.json"]  # result.json goes last: the bucket keeps the first run's
    assert first.gif in after
    row, campaign = db_row(settings, "L-1")
    assert row["status"] == "ok" and row["gif_url"] == first.gif_url and campaign is not None
    assert "its outputs cannot be put in the bucket" in row["last_error"]

    # Credentials that may not read the outputs: the lesson fails at once, naming the prefix.
    use_s3(monkeypatch, weed.endpoint, READER)
    [denied] = run_manifest(manifest_url, in_bucket(tmp_path, publish, "c", force=True), scorer=FakeScorer())
    assert denied.status == "failed"
    assert denied.reason.startswith("lesson L-1: its earlier outputs cannot be read from the bucket: ")
    assert "access denied" in denied.reason and settings.out_url in denied.reason
