"""The Ray executor without a shared file system: the manifest and recordings in a bucket, the
GIFs published to one, against a real local Ray (as ``test_ray_pool.py``) and the session's
real S3 server. The actors get the store's ``AWS_*`` variables through Ray's runtime
environment, as every node of a cluster needs them.

Skipped where Ray is not installed (the ray extra: ``pip install '.[ray]'``); CI installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from highlights.batch.options import BatchOptions
from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.stages.snippet import EmailOptions

from support.fakes import FakeScorer
from support.lessons import db_row
from support.ray_head import local_ray_head
from support.weed import bucket_lessons, object_headers, s3_environment

ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra (pip install '.[ray]')")

CDN = "https://cdn.example.com/highlights"


@pytest.fixture(scope="module")
def ray_with_store(weed):
    """A Ray head on 127.0.0.1 (2 CPUs, an 80 MB object store) whose workers reach the S3 server."""
    env = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, **s3_environment(weed.endpoint)}
    with local_ray_head(ray, env, keep_pythonpath=True) as head:
        yield head


def test_ray_actors_read_the_bucket_and_publish_to_it(ray_with_store, s3, videos, tmp_path: Path) -> None:
    manifest_url, publish, local_manifest = bucket_lessons(videos, tmp_path)
    settings = Settings(out_dir=tmp_path / "out", publish=publish, email=EmailOptions(public_base_url=CDN))
    results = run_manifest(manifest_url, settings, scorer=FakeScorer(), batch=BatchOptions(executor="ray", workers=2))
    assert [(r.lesson_id, r.status) for r in results] == [("L-1", "ok"), ("L-2", "ok")], [r.reason for r in results]
    from_disk = run_manifest(local_manifest, Settings(out_dir=tmp_path / "disk"), scorer=FakeScorer())
    for result, local in zip(results, from_disk):
        assert result.frames == local.frames
        headers = object_headers(f"{publish}/{result.lesson_id}/{result.gif}")
        assert headers["Content-Type"] == "image/gif"
        row, _ = db_row(settings, result.lesson_id)
        assert row["status"] == "ok" and row["gif_url"] == f"{CDN}/{result.lesson_id}/{result.gif}"
        assert result.gif_url in row["snippet_html"]


def test_ray_actors_keep_the_lesson_folders_in_the_bucket(ray_with_store, s3, videos, tmp_path: Path) -> None:
    # No folder is shared with the actors: each works in its own node's temporary folder and
    # puts the lesson's folder in the bucket; a second run skips both lessons from there.
    from highlights.storage import objects

    manifest_url, publish, _ = bucket_lessons(videos, tmp_path)
    out = publish.rsplit("/", 1)[0] + "/out"
    settings = Settings(out_url=out, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", publish=publish,
                        email=EmailOptions(public_base_url=CDN))
    results = run_manifest(manifest_url, settings, scorer=FakeScorer(), batch=BatchOptions(executor="ray", workers=2))
    assert [(r.lesson_id, r.status) for r in results] == [("L-1", "ok"), ("L-2", "ok")], [r.reason for r in results]
    for result in results:
        assert object_headers(f"{out}/{result.lesson_id}/{result.gif}")["Content-Type"] == "image/gif"
        assert objects.stat(f"{out}/{result.lesson_id}/result.json").size > 0
        row, _ = db_row(settings, result.lesson_id)
        assert row["gif_path"] == f"{out}/{result.lesson_id}/{result.gif}"
    again = run_manifest(manifest_url, settings, scorer=FakeScorer(), batch=BatchOptions(executor="ray", workers=2))
    assert [(r.status, r.skipped, r.gif) for r in again] == [("ok", True, r.gif) for r in results]
