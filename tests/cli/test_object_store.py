"""``highlights run`` and ``withdraw`` with a bucket: URLs in, GIFs published, the options
checked before any lesson runs (the real S3 server of the ``s3`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from highlights.cli import main
from highlights.storage import objects

from support.weed import SECRETS_OF, bucket_lessons, object_headers

CDN = "https://cdn.example.com/gifs"


def test_run_from_a_bucket_publishes_and_withdraw_deletes(s3, clean_env, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    out, db = tmp_path / "out", f"sqlite:///{tmp_path / 'h.sqlite'}"
    ran = clean_env.invoke(main, ["run", manifest_url, "--out", str(out), "--db", db, "--workers", "0",
                                  "--publish", publish, "--public-base-url", CDN, "--no-progress"])
    assert ran.exit_code == 0, ran.output
    result = json.loads((out / "L-1" / "result.json").read_text())
    assert result["status"] == "ok" and result["gif_url"] == f"{CDN}/L-1/{result['gif']}"
    key_url = f"{publish}/L-1/{result['gif']}"
    assert object_headers(key_url)["Content-Type"] == "image/gif"
    assert not [secret for secret in SECRETS_OF if secret in ran.output + json.dumps(result)]

    withdrawn = clean_env.invoke(main, ["withdraw", "L-1", "--out", str(out), "--db", db])
    assert withdrawn.exit_code == 0, withdrawn.output
    with pytest.raises(objects.ObjectStoreError, match="does not exist"):
        objects.stat(key_url)


def test_out_on_a_bucket_keeps_the_lesson_folders_there(s3, clean_env, videos, tmp_path: Path) -> None:
    manifest_url, publish, _ = bucket_lessons(videos, tmp_path, ids=("L-1",))
    out, db, work = publish.rsplit("/", 1)[0] + "/out", f"sqlite:///{tmp_path / 'h.sqlite'}", tmp_path / "work"
    ran = clean_env.invoke(main, ["run", manifest_url, "--out", out, "--work-dir", str(work), "--db", db,
                                  "--public-base-url", CDN, "--workers", "0", "--no-progress"])
    assert ran.exit_code == 0, ran.output
    assert f"results: {out}/<lesson_id>/result.json" in ran.output
    result = json.loads(objects.read_bytes(f"{out}/L-1/result.json"))
    assert result["status"] == "ok" and result["gif_url"] == f"{CDN}/L-1/{result['gif']}"  # the bucket served
    assert object_headers(f"{out}/L-1/{result['gif']}")["Content-Type"] == "image/gif"
    assert sorted(p.name for p in (work / "L-1").iterdir()) == [".lock"]

    # The same bucket named by the environment; the working folder by default a private temporary one.
    withdrawn = clean_env.invoke(main, ["withdraw", "L-1", "--db", db], env={"HIGHLIGHTS_OUT_URL": out})
    assert withdrawn.exit_code == 0, withdrawn.output
    assert json.loads(objects.read_bytes(f"{out}/L-1/result.json"))["status"] == "withdrawn"
    with pytest.raises(objects.ObjectStoreError, match="does not exist"):
        objects.stat(f"{out}/L-1/{result['gif']}")


@pytest.mark.parametrize(("arguments", "message"), [
    (["--publish", "s3://pub/gifs"], "needs public_base_url"),
    (["--publish", "gs://pub/gifs", "--public-base-url", CDN], "is not a bucket prefix"),
    (["--out", "s3://pub/out"], "needs a database URL (--db / db_url)"),
    (["--out", "s3://pub/out", "--db", "sqlite:///db.sqlite"], "needs public_base_url (--public-base-url)"),
    (["--out", "gs://pub/out"], "gs:// URLs are not supported"),
    (["--out", "s3://"], "is not a bucket prefix"),
])  # fmt: skip
def test_bad_object_store_options_are_refused_before_any_lesson(clean_env, tmp_path: Path, arguments,
                                                                message) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("lesson_id,role,path,started_at\n")
    ran = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), *arguments])
    assert ran.exit_code == 2 and message in ran.output, ran.output


def test_a_manifest_url_of_another_scheme_is_refused(clean_env, tmp_path: Path) -> None:
    ran = clean_env.invoke(main, ["run", "gs://bucket/manifest.csv", "--out", str(tmp_path / "out")])
    assert ran.exit_code == 2 and "gs:// URLs are not supported (only s3://)" in ran.output, ran.output


def test_a_manifest_url_that_is_not_there_is_an_unreadable_manifest(s3, clean_env, tmp_path: Path) -> None:
    ran = clean_env.invoke(main, ["run", "s3://rec/nowhere/manifest.csv", "--out", str(tmp_path / "out")])
    assert ran.exit_code == 2, ran.output
    assert "file s3://rec/nowhere/manifest.csv does not exist (HTTP 404, NoSuchKey)" in ran.output


def test_timeline_reads_a_bucket_manifest_and_its_recordings(s3, clean_env, videos, tmp_path: Path) -> None:
    manifest_url, _, local_manifest = bucket_lessons(videos, tmp_path, ids=("L-1", "L-2"))
    objects.delete(manifest_url.rsplit("/", 1)[0] + "/L-2/teacher.mp4")
    remote = clean_env.invoke(main, ["timeline", manifest_url, "--json"])
    local = clean_env.invoke(main, ["timeline", str(local_manifest), "--json"])
    assert remote.exit_code == 1, remote.output
    first_remote, first_local = (json.loads(result.output.splitlines()[0]) for result in (remote, local))
    assert first_remote == first_local and first_remote["status"] == "ok"
    second = json.loads(remote.output.splitlines()[1])
    assert second["status"] == "failed" and "manifest.csv row 4" in second["reason"]
    assert "L-2/teacher.mp4 does not exist (HTTP 404, NoSuchKey)" in second["reason"]
