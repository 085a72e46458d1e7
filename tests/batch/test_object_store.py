"""Batches whose manifest and recordings live in a bucket and whose GIFs are published to one,
against a real S3 server (SeaweedFS, the ``s3`` fixture): the objects, the rows, reruns,
withdrawals, and every fault as one lesson's clear error while the rest of the batch goes on."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from highlights.batch.options import BatchOptions
from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.lesson.graph import Progress
from highlights.lesson.withdraw import withdraw_lesson
from highlights.stages.snippet import EmailOptions
from highlights.storage import objects

from support.fakes import FakeScorer
from support.lessons import db_row
from support.weed import (
    ADMIN,
    READER,
    SECRETS_OF,
    bucket_lessons,
    object_headers,
    run_with_uploads_cut,
    start_weed_server,
    use_s3,
)

CDN = "https://cdn.example.com/highlights"


def published(settings: Settings, publish: str) -> Settings:
    return Settings(out_dir=settings.out_dir, publish=publish, email=EmailOptions(public_base_url=CDN))


def test_a_batch_from_a_bucket_to_a_bucket(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, local_manifest = bucket_lessons(videos, tmp_path)
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    results = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert [(r.lesson_id, r.status) for r in results] == [("L-1", "ok"), ("L-2", "ok")], [r.reason for r in results]

    for result in results:
        key_url = f"{publish}/{result.lesson_id}/{result.gif}"
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.gif", result.gif)  # 128 random bits, nothing of the lesson
        headers = object_headers(key_url)
        assert headers["Content-Type"] == "image/gif"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        folder = settings.out_dir / result.lesson_id
        assert headers["body"] == (folder / result.gif).read_bytes()
        row, campaign = db_row(settings, result.lesson_id)
        assert row["gif_url"] == result.gif_url == f"{CDN}/{result.lesson_id}/{result.gif}"  # base + key under the prefix
        assert result.gif_url in (folder / "snippet.html").read_text() and result.gif_url in row["snippet_html"]
        assert not (folder / ".recordings").exists()  # the downloaded recordings went with the lesson
        stages = json.loads((folder / "stages.json").read_text())
        assert stages["gif"]["published"] == key_url

    # The same lessons from disk pick the same frames.
    from_disk = run_manifest(local_manifest, Settings(out_dir=tmp_path / "disk"), scorer=FakeScorer())
    for remote, local in zip(results, from_disk):
        assert remote.frames == local.frames and remote.frames
        assert (settings.out_dir / remote.lesson_id / "scores.csv").read_text() == \
            (tmp_path / "disk" / local.lesson_id / "scores.csv").read_text()


def test_a_rerun_uploads_nothing_again_and_a_withdrawal_deletes_the_object(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    [first] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    key_url = f"{publish}/L-1/{first.gif}"
    before = object_headers(key_url)
    time.sleep(1.1)  # Last-Modified has a resolution of a second
    [again] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert again.skipped and again.status == "ok"
    after = object_headers(key_url)
    assert (after["etag"], after["modified"]) == (before["etag"], before["modified"])

    # The report's settings change: the lesson reruns from its report stage; the GIF stays as it is.
    [resumed] = run_manifest(manifest_url, Settings(out_dir=settings.out_dir, publish=publish, analytics_bucket_s=30,
                                                    email=settings.email), scorer=FakeScorer())
    assert resumed.status == "ok" and not resumed.skipped and resumed.gif == first.gif
    assert object_headers(key_url)["modified"] == before["modified"]

    withdrawn = withdraw_lesson("L-1", settings)
    assert withdrawn.status == "withdrawn"
    with pytest.raises(objects.ObjectStoreError, match="does not exist"):
        objects.stat(key_url)
    row, campaign = db_row(settings, "L-1")
    assert row["status"] == "withdrawn" and row["gif_url"] is None and campaign is None


def test_missing_objects_and_bad_buckets_fail_their_lesson_only(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1", "L-2", "L-3"))
    prefix = manifest_url.rsplit("/", 1)[0]
    objects.delete(f"{prefix}/L-2/student.webm")
    manifest = tmp_path / "manifest.csv"  # L-3's student in a bucket that does not exist
    text = objects.read_bytes(manifest_url).decode().replace("L-3/student.webm", "s3://no-such-bucket/L-3/student.webm")
    objects.upload(manifest_url, text.encode(), content_type="text/csv")
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    results = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert [r.status for r in results] == ["ok", "failed", "failed"]
    assert results[1].reason == (f"lesson L-2: download stage failed (student recording, manifest.csv row 5): "
                                 f"recording {prefix}/L-2/student.webm does not exist (HTTP 404, NoSuchKey)")
    assert results[2].reason.startswith("lesson L-3: download stage failed (student recording, manifest.csv row 7): "
                                        "recording s3://no-such-bucket/L-3/student.webm is in a bucket that does not exist")
    for result in results[1:]:
        row, _ = db_row(settings, result.lesson_id)
        assert row["status"] == "failed" and row["gif_url"] is None and row["reason"] == result.reason
        assert not (settings.out_dir / result.lesson_id / ".recordings").exists()
    assert not manifest.exists()


def test_a_manifest_that_is_not_there_is_an_input_error(s3, tmp_path: Path) -> None:
    from highlights.inputs.rows import InputError

    with pytest.raises(InputError, match=r"file s3://rec/nowhere/manifest.csv does not exist \(HTTP 404, NoSuchKey\)"):
        run_manifest("s3://rec/nowhere/manifest.csv", Settings(out_dir=tmp_path / "out"), scorer=FakeScorer())


def test_publishing_without_the_right_fails_the_lesson_and_writes_no_url(weed, monkeypatch, videos, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    use_s3(monkeypatch, weed.endpoint, ADMIN)
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    use_s3(monkeypatch, weed.endpoint, READER)  # reads rec, may not write pub
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    [result] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert result.status == "failed" and result.gif_url is None
    assert re.fullmatch(rf"lesson L-1: gif stage failed: GIF {publish}/L-1/[A-Za-z0-9_-]{{22}}\.gif cannot be "
                        r"accessed: access denied \(HTTP 403, AccessDenied\)", result.reason), result.reason
    row, campaign = db_row(settings, "L-1")
    assert row["status"] == "failed" and row["gif_url"] is None and campaign is None
    stored = json.dumps(row, default=str) + (settings.out_dir / "L-1" / "result.json").read_text()
    assert not [secret for secret in SECRETS_OF if secret in stored + caplog.text]
    assert "lesson L-1: gif stage failed" in caplog.text


def test_an_upload_cut_every_time_fails_the_lesson_and_keeps_what_was_published(weed, monkeypatch, videos,
                                                                                 tmp_path: Path) -> None:
    use_s3(monkeypatch, weed.endpoint)
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    [first] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    assert first.status == "ok"
    forced = Settings(out_dir=settings.out_dir, publish=publish, email=settings.email, force=True)
    again = run_with_uploads_cut(weed, monkeypatch, manifest_url, forced, from_stage="gif")
    assert again.status == "failed"
    assert "could not be uploaded: the connection was reset mid-upload; nothing was written under its key" in again.reason
    row, campaign = db_row(settings, "L-1")
    assert row["status"] == "ok" and row["gif_url"] == first.gif_url  # the published highlight stays
    assert object_headers(f"{publish}/L-1/{first.gif}")["Content-Type"] == "image/gif"


def test_the_store_stopped_mid_batch_fails_the_lessons_left_and_the_batch_goes_on(monkeypatch, videos,
                                                                                 tmp_path: Path) -> None:
    server = start_weed_server(tmp_path / "weed")
    try:
        use_s3(monkeypatch, server.endpoint)
        manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1", "L-2"))
        settings = published(Settings(out_dir=tmp_path / "out"), publish)

        class StopAfterFirst(Progress):
            def lesson_finished(self, result) -> None:
                server.stop(kill=True)

        results = run_manifest(manifest_url, settings, scorer=FakeScorer(), progress=StopAfterFirst())
    finally:
        server.stop()
    assert [r.status for r in results] == ["ok", "failed"]
    assert re.match(r"lesson L-2: download stage failed \(teacher recording, manifest.csv row 4\): recording "
                    r"s3://rec/\w+/2026-12-01/L-2/teacher.mp4 cannot be reached: connection refused", results[1].reason)
    assert "Traceback" not in results[1].reason and str(tmp_path) not in results[1].reason


def test_a_batch_in_worker_processes_reads_the_bucket(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path)
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    results = run_manifest(manifest_url, settings, scorer=FakeScorer(), batch=BatchOptions(workers=2, threads=1))
    assert [r.status for r in results] == ["ok", "ok"], [r.reason for r in results]
    for result in results:
        assert object_headers(f"{publish}/{result.lesson_id}/{result.gif}")["Content-Type"] == "image/gif"


def test_a_clean_rerun_without_a_highlight_takes_the_published_gif_down(s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    settings = published(Settings(out_dir=tmp_path / "out"), publish)
    [first] = run_manifest(manifest_url, settings, scorer=FakeScorer())
    key_url = f"{publish}/L-1/{first.gif}"
    assert objects.stat(key_url).size > 0
    forced = Settings(out_dir=settings.out_dir, publish=publish, email=settings.email, force=True)
    [again] = run_manifest(manifest_url, forced, scorer=FakeScorer(smiles=False))  # a new model sees no smile
    assert again.status == "no_highlight" and again.gif is None
    with pytest.raises(objects.ObjectStoreError, match="does not exist"):
        objects.stat(key_url)
