"""Objects in a real S3 server (SeaweedFS, the ``s3`` fixture): reading, writing, and every
fault's message (no S3 mocks; connection faults come from a TCP proxy in front of the server)."""

from __future__ import annotations

import os
import traceback
import uuid
from pathlib import Path

import pytest

from highlights.storage import objects
from highlights.storage.objects import ObjectStoreError

from support.faultproxy import FaultProxy
from support.weed import ADMIN, READER, free_ports, start_weed_server, use_s3

SECRETS = [ADMIN[0], ADMIN[1], READER[0], READER[1]]


def failure(action) -> ObjectStoreError:
    """The ObjectStoreError ``action`` raises; neither its message, repr nor traceback holds a
    credential, and the client's own text is not chained to it."""
    with pytest.raises(ObjectStoreError) as caught:
        action()
    error = caught.value
    text = str(error) + repr(error) + "".join(traceback.format_exception(error))
    assert not [secret for secret in SECRETS if secret in text]
    assert error.__cause__ is None and error.__suppress_context__
    return error


@pytest.fixture()
def stored(s3) -> tuple[str, bytes]:
    """A 3 MB 'recording' in bucket rec, under a key of this test's own."""
    url = f"s3://rec/{uuid.uuid4().hex[:8]}/L-1/student.webm"
    data = os.urandom(3_000_000)
    objects.upload(url, data, content_type="video/webm")
    return url, data


def test_urls_parse_resolve_and_stay_in_their_bucket() -> None:
    assert objects.is_object_url("s3://b/k.mp4") and not objects.is_object_url("/data/k.mp4")
    assert not objects.is_object_url("gs://b/k.mp4") and objects.looks_like_url("gs://b/k.mp4")
    assert objects.join_url("s3://b/2026-12-01/manifest.csv", "L-1/student.webm") == "s3://b/2026-12-01/L-1/student.webm"
    assert objects.join_url("s3://b/2026-12-01/manifest.csv", "../other/t.mp4") == "s3://b/other/t.mp4"
    with pytest.raises(ObjectStoreError, match="out of the bucket"):
        objects.join_url("s3://b/manifest.csv", "../../x.mp4")
    with pytest.raises(ObjectStoreError, match="supported schemes: s3"):
        objects.parse_url("gs://bucket/key")
    assert objects.prefix_url("s3://pub/highlights/", "L-1", "a.gif") == "s3://pub/highlights/L-1/a.gif"
    assert objects.prefix_url("s3://pub", "L-1", "a.gif") == "s3://pub/L-1/a.gif"
    assert objects.mask_url("http://user:secret@host:9000/x") == "http://***@host:9000/x"


def test_download_stat_and_read_give_the_objects_bytes(stored, tmp_path: Path) -> None:
    url, data = stored
    info = objects.download(url, tmp_path / "copy.webm")
    assert (tmp_path / "copy.webm").read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["copy.webm"]  # no part file left
    assert info.size == len(data) and info.etag and info == objects.stat(url)
    assert objects.read_bytes(url) == data


def test_the_identity_changes_when_the_object_is_replaced(stored) -> None:
    url, data = stored
    before = objects.stat(url).identity()
    objects.upload(url, data[::-1], content_type="video/webm")
    assert objects.stat(url).identity() != before


def test_upload_sets_content_type_and_cache_headers_and_delete_is_idempotent(s3) -> None:
    import obstore

    url = f"s3://pub/{uuid.uuid4().hex[:8]}/L-1/a.gif"
    objects.upload(url, b"GIF89a" + bytes(100), content_type="image/gif", cache_control=objects.GIF_CACHE_CONTROL)
    where = objects.parse_url(url)
    attributes = obstore.get(objects._client(where.bucket), where.key).attributes
    assert attributes["Content-Type"] == "image/gif"
    assert attributes["Cache-Control"] == "public, max-age=31536000, immutable"
    objects.delete(url)
    objects.delete(url)
    assert failure(lambda: objects.stat(url)).kind == "missing"


@pytest.mark.parametrize(("where", "identity", "kind", "words"), [
    ("s3://rec/nowhere/nope.mp4", ADMIN, "missing", "recording s3://rec/nowhere/nope.mp4 does not exist"),
    ("s3://no-such-bucket/L-1/student.mp4", ADMIN, "no_bucket", "is in a bucket that does not exist"),
    ("s3://pub/L-1/report.html", READER, "denied", "access denied"),
    ("s3://rec/L-1/student.webm", (ADMIN[0], "wrong-secret"), "credentials", "rejected the credentials"),
])  # fmt: skip
def test_each_fault_says_what_happened_to_which_object(weed, monkeypatch, tmp_path, where, identity, kind,
                                                       words) -> None:
    use_s3(monkeypatch, weed.endpoint, identity)
    for action in (lambda: objects.stat(where), lambda: objects.download(where, tmp_path / "x"),
                   lambda: objects.read_bytes(where)):
        error = failure(action)
        assert (error.kind, error.transient, error.attempts) == (kind, False, 1)
        assert words in str(error) and where in str(error)
    assert not list(tmp_path.iterdir())


def test_writes_without_the_right_are_denied(weed, monkeypatch) -> None:
    use_s3(monkeypatch, weed.endpoint, READER)
    error = failure(lambda: objects.upload("s3://pub/x/a.gif", b"GIF89a", content_type="image/gif"))
    assert error.kind == "denied" and str(error).startswith("GIF s3://pub/x/a.gif cannot be accessed: access denied")
    assert failure(lambda: objects.delete("s3://rec/x/a.mp4")).kind == "denied"


def test_a_store_that_is_not_there_is_refused_after_retries(monkeypatch) -> None:
    use_s3(monkeypatch, f"http://user:pw@127.0.0.1:{free_ports(1)[0]}")
    error = failure(lambda: objects.stat("s3://rec/L-1/student.webm"))
    assert error.kind == "refused" and error.transient and error.attempts == objects.OPERATION_RETRIES + 1
    assert str(error) == ("recording s3://rec/L-1/student.webm cannot be reached: connection refused "
                          "(gave up after 4 tries)")
    assert "pw" not in str(error)


@pytest.fixture()
def proxy(weed, stored, monkeypatch):
    """A TCP proxy in front of the server that resets connections when armed."""
    fault_proxy = FaultProxy(("127.0.0.1", int(weed.endpoint.rsplit(":", 1)[1])))
    use_s3(monkeypatch, fault_proxy.endpoint)
    yield fault_proxy
    fault_proxy.close()


def test_a_connection_reset_once_mid_download_is_resumed(proxy, stored, tmp_path) -> None:
    url, data = stored
    proxy.arm(down_after=1_000_000, faults=1)
    objects.download(url, tmp_path / "copy.webm")
    assert (tmp_path / "copy.webm").read_bytes() == data and proxy.faults_done == 1


def test_resets_that_go_on_fail_the_download_and_leave_no_file(proxy, stored, tmp_path) -> None:
    url, _ = stored
    proxy.arm(down_after=300_000, faults=1 << 30)
    error = failure(lambda: objects.download(url, tmp_path / "copy.webm"))
    assert error.kind in ("reset", "truncated") and error.transient
    assert "could not be read to the end" in str(error) or "cut short" in str(error)
    assert "of 3,000,000 bytes arrived" in str(error)
    assert not list(tmp_path.iterdir())


def test_an_upload_that_fails_half_way_leaves_nothing_under_its_key(proxy) -> None:
    url = f"s3://pub/{uuid.uuid4().hex[:8]}/big.bin"
    proxy.arm(up_after=3_000_000, faults=1 << 30)
    error = failure(lambda: objects.upload(url, os.urandom(20 << 20), content_type="application/octet-stream"))
    assert error.kind == "upload_failed" and "nothing was written under its key" in str(error)
    proxy.disarm()
    assert failure(lambda: objects.stat(url)).kind == "missing"


def test_a_server_stopped_mid_download_is_a_clear_error(tmp_path, monkeypatch) -> None:
    server = start_weed_server(tmp_path / "weed")
    try:
        use_s3(monkeypatch, server.endpoint)
        url = "s3://rec/L-1/student.webm"
        objects.upload(url, os.urandom(1_000_000), content_type="video/webm")
        objects.stat(url)
        server.stop(kill=True)
        error = failure(lambda: objects.download(url, tmp_path / "copy.webm"))
        assert error.kind == "refused" and "cannot be reached: connection refused" in str(error)
    finally:
        server.stop()


def test_keys_region_and_endpoint_come_from_an_aws_profile(stored, weed, tmp_path, monkeypatch) -> None:
    url, _ = stored
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n\n"
        f"[highlights]\naws_access_key_id = {READER[0]}\naws_secret_access_key = {READER[1]}\n")
    (tmp_path / "config").write_text(f"[profile highlights]\nregion = eu-west-1\nendpoint_url = {weed.endpoint}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "highlights")
    objects.forget_clients()
    assert objects.stat(url).size == 3_000_000
    assert failure(lambda: objects.upload("s3://pub/x/a.gif", b"GIF89a", content_type="image/gif")).kind == "denied"
