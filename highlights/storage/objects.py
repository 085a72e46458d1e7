"""Objects in an S3-compatible store: read (stat, download, small files), written (upload with
content type and cache headers), deleted. Every failure is an :class:`ObjectStoreError` whose
message names the object and says what went wrong in words, never a credential.

The client is ``obstore`` (Rust's ``object_store`` behind a synchronous Python API, one wheel,
no botocore: boto3 and s3fs would downgrade the pinned python-dateutil). Only ``s3://`` URLs are
supported (AWS S3 and S3-compatible stores: SeaweedFS, MinIO, Ceph, R2...).

Credentials, region and endpoint come from where AWS tools look, in this order: the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for an S3-compatible store),
the static keys, region and ``endpoint_url`` of profile ``AWS_PROFILE`` (default ``default``) in
``~/.aws/credentials`` and ``~/.aws/config``, then web identity, ECS/EKS container credentials and
EC2 instance roles (object_store's own chain). SSO, ``credential_process`` and ``role_arn``
profiles need botocore and are not read.

Retries: object_store retries each request (connect errors, 5xx, a body cut mid-transfer is
resumed with a Range request), kept short here so a dead store fails a lesson in seconds; around
that every operation is retried as a whole on transient failures (:data:`TRANSIENT`) with
exponential backoff and jitter.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import os
import posixpath
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

SCHEMES = ("s3",)
"""URL schemes of objects (``s3://bucket/key``)."""
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

GIF_CACHE_CONTROL = "public, max-age=31536000, immutable"
"""Cache headers of a published GIF: its key holds 128 random bits and a rebuilt GIF of the same
lesson replaces it under the same key only when the lesson is redone (a CDN may then serve the
old one for a while, as a browser that cached it does anyway)."""
GIF_CONTENT_TYPE = "image/gif"

MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024  # S3's least part size is 5 MiB (but the last)
DOWNLOAD_CHUNK = 8 * 1024 * 1024

_STORE_RETRY = {
    # object_store's defaults (10 retries within 3 minutes) would hold every lesson of a night
    # for minutes when the store is down.
    "max_retries": 3,
    "retry_timeout": dt.timedelta(seconds=20),
    "backoff": {"init_backoff": dt.timedelta(milliseconds=200), "max_backoff": dt.timedelta(seconds=4), "base": 2},
}
_CLIENT_OPTIONS = {
    # object_store's "timeout" bounds a whole request, body included (default 30 s: a 150 MB
    # recording below 5 MB/s would always fail); stalls are caught by read_timeout instead.
    "connect_timeout": "5s", "read_timeout": "30s", "timeout": "30min", "pool_idle_timeout": "30s",
}
OPERATION_RETRIES = 3
"""Tries of a whole operation after the first, on a transient failure (after 0.5, 1, 2 s)."""
OPERATION_BACKOFF_S = 0.5


# --------------------------------------------------------------------------- errors

_KINDS = {
    "missing": "does not exist",
    "no_bucket": "is in a bucket that does not exist",
    "denied": "cannot be accessed: access denied",
    "credentials": "cannot be accessed: the store rejected the credentials (unknown access key or wrong secret)",
    "unauthenticated": "cannot be accessed: no credentials were found (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                       "a profile in ~/.aws, or an instance role)",
    "refused": "cannot be reached: connection refused",
    "unreachable": "cannot be reached",
    "timeout": "cannot be reached: the store did not answer in time",
    "reset": "could not be read to the end: the connection was reset mid-read",
    "server": "cannot be accessed: the store answered with a server error",
    "changed": "changed while it was being read (its ETag no longer matches)",
    "truncated": "was cut short: fewer bytes arrived than the store announced",
    "upload_failed": "could not be uploaded: the upload failed part-way; nothing was written under its key",
    "bad_url": "is not a usable object URL",
    "other": "cannot be accessed",
}
_UPLOAD_KINDS = {
    "refused": "could not be uploaded: connection refused; nothing was written under its key",
    "unreachable": "could not be uploaded: the store cannot be reached; nothing was written under its key",
    "reset": "could not be uploaded: the connection was reset mid-upload; nothing was written under its key",
    "timeout": "could not be uploaded: the store did not answer in time; nothing was written under its key",
    "server": "could not be uploaded: the store answered with a server error; nothing was written under its key",
}
TRANSIENT = frozenset({"refused", "unreachable", "timeout", "reset", "server", "truncated"})
"""Kinds worth another try: the store down or restarting, a connection dropped."""


class ObjectStoreError(Exception):
    """One failed operation on one object, with a message for a lesson's reason: what the object
    is (recording, GIF, file) and its URL (no credentials), what went wrong in words, and a short
    hint (HTTP status, S3 error code, bytes done, tries). Not an OSError, so that a decoder's or
    the lesson's ``except OSError`` never takes a store failure for a bad local file."""

    def __init__(self, kind: str, url: str, op: str, *, detail: str = "", attempts: int = 1) -> None:
        self.kind, self.url, self.op, self.detail, self.attempts = kind, url, op, detail, attempts
        super().__init__(self.message)

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT

    @property
    def message(self) -> str:
        texts = _UPLOAD_KINDS if self.op == "upload" and self.kind in _UPLOAD_KINDS else _KINDS
        text = f"{object_kind(self.url)} {self.url} {texts.get(self.kind, _KINDS['other'])}"
        extras = [self.detail] if self.detail else []
        if self.attempts > 1:
            extras.append(f"gave up after {self.attempts} tries")
        return text + (f" ({'; '.join(extras)})" if extras else "")

    def __reduce__(self) -> Any:  # picklable: worker processes and Ray actors send it back
        return _rebuild, (self.kind, self.url, self.op, self.detail, self.attempts)


def _rebuild(kind: str, url: str, op: str, detail: str, attempts: int) -> ObjectStoreError:
    return ObjectStoreError(kind, url, op, detail=detail, attempts=attempts)


def object_kind(url: str) -> str:
    """What an object is, for messages: ``recording``, ``GIF``, ``file`` or ``object``."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix == ".gif":
        return "GIF"
    if suffix in (".mp4", ".webm", ".mkv", ".mov", ".m4v", ".ts", ".avi"):
        return "recording"
    if suffix in (".csv", ".jsonl", ".ndjson", ".json", ".txt"):
        return "file"
    return "object"


_S3_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>|\(code: ([A-Za-z]+)\)")
_RESET_WORDS = ("connection reset", "broken pipe", "connection closed before message completed",
                "error decoding response body", "incompletemessage", "unexpected eof", "error reading a body",
                "end of file before message length", "kind: body", "connection aborted", "kind: decode",
                "kind: interrupted")  # fmt: skip


def _classify(error: BaseException) -> tuple[str, str]:
    """(kind, short detail) of an obstore or I/O exception; the detail holds no credentials
    (only an HTTP status and an S3 error code are taken from the text)."""
    from obstore.exceptions import NotFoundError, PermissionDeniedError, PreconditionError, UnauthenticatedError

    text = str(error)
    found = _S3_CODE.search(text)
    code = (found.group(1) or found.group(2)) if found else ""
    found = re.search(r"non-2xx status code: (\d{3})", text) or re.search(r"status: (\d{3})", text)
    status = found.group(1) if found else ""
    hint = ", ".join(part for part in (f"HTTP {status}" if status else "", code) if part)
    low = text.lower()
    if code == "NoSuchBucket":
        return "no_bucket", hint
    if code in ("NoSuchKey", "NotFound") or isinstance(error, (NotFoundError, FileNotFoundError)):
        return "missing", hint
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        return "credentials", hint
    if isinstance(error, UnauthenticatedError):
        return "unauthenticated", hint
    if code in ("AccessDenied", "AllAccessDisabled", "AccountProblem") or isinstance(error, PermissionDeniedError):
        return "denied", hint
    if isinstance(error, PreconditionError) or code == "PreconditionFailed":
        return "changed", hint
    if "connection refused" in low:
        return "refused", ""
    if any(word in low for word in _RESET_WORDS):  # before "connect": reqwest says "kind: ConnectionReset"
        return "reset", ""
    if "timed out" in low or "kind: timeout" in low:
        return "timeout", ""
    if "tcp connect error" in low or "dns error" in low or re.search(r"kind: connect\b", low):
        return "unreachable", "could not connect"
    if status.startswith("5") or code in ("InternalError", "ServiceUnavailable", "SlowDown"):
        return "server", hint
    if "could not find aws credentials" in low or "no credentials" in low:
        return "unauthenticated", ""
    if isinstance(error, _ShortRead):
        return "truncated", str(error)
    if isinstance(error, (ConnectionError, TimeoutError)):
        return ("timeout" if isinstance(error, TimeoutError) else "reset"), ""
    return "other", hint or type(error).__name__


class _ShortRead(Exception):
    """Fewer bytes arrived than the store announced."""


def _retry(op: str, url: str, action: Callable[[], T], *, refine: Callable[[str, str], tuple[str, str]] | None = None,
           detail: Callable[[], str] | None = None) -> T:
    """``action()``, retried on transient failures; any failure becomes an ObjectStoreError
    raised ``from None``: the client's own text (endpoint, headers) stays out of tracebacks."""
    from obstore.exceptions import BaseError

    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except ObjectStoreError:
            raise
        except (BaseError, OSError, ValueError, RuntimeError, _ShortRead) as error:  # what obstore raises
            kind, hint = _classify(error)
            if refine is not None:
                kind, hint = refine(kind, hint)
            if kind in TRANSIENT and attempt <= OPERATION_RETRIES:
                time.sleep(OPERATION_BACKOFF_S * 2 ** (attempt - 1) * (1 + random.random() / 4))
                continue
            extra = detail() if detail is not None else ""
            failure = ObjectStoreError(kind, url, op, detail="; ".join(p for p in (hint, extra) if p), attempts=attempt)
        raise failure from None


# --------------------------------------------------------------------------- URLs


def is_object_url(value: object) -> bool:
    """Whether ``value`` is an object URL (``s3://...``), not a local path."""
    return isinstance(value, str) and bool(_URL.match(value)) and value.split("://", 1)[0].lower() in SCHEMES


def looks_like_url(value: object) -> bool:
    """Whether ``value`` has a URL's ``scheme://`` (supported or not): never a local path."""
    return isinstance(value, str) and bool(_URL.match(value))


@dataclass(frozen=True)
class ObjectUrl:
    """An object's place: ``s3://bucket/key``."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        """The key's last part (the file name)."""
        return PurePosixPath(self.key).name


def parse_url(url: str) -> ObjectUrl:
    """``s3://bucket/key`` parsed; an ObjectStoreError (``bad_url``) for anything else."""
    parts = urlsplit(str(url))
    if parts.scheme.lower() not in SCHEMES or not parts.netloc or "@" in parts.netloc or parts.query or parts.fragment:
        raise ObjectStoreError("bad_url", mask_url(str(url)), "parse",
                               detail=f"expected s3://bucket/key; supported schemes: {', '.join(SCHEMES)}")
    return ObjectUrl(parts.netloc, parts.path.lstrip("/"))


def mask_url(url: str) -> str:
    """``url`` without userinfo (``http://user:pw@host`` becomes ``http://***@host``)."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts)


def join_url(base: str, relative: str) -> str:
    """``relative`` (a manifest row's path) taken from the folder of object ``base`` (the
    manifest): ``s3://b/2026-12-01/manifest.csv`` + ``L-1/student.webm`` is
    ``s3://b/2026-12-01/L-1/student.webm``. ``..`` may not climb out of the bucket."""
    where = parse_url(base)
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(where.key), relative))
    if relative.startswith("/") or joined == "." or joined == ".." or joined.startswith("../"):
        raise ObjectStoreError("bad_url", f"{where} + {relative}", "parse", detail="a path out of the bucket")
    return str(ObjectUrl(where.bucket, joined.lstrip("/")))


def prefix_url(prefix: str, *parts: str) -> str:
    """``parts`` under the prefix ``s3://bucket/prefix``."""
    where = parse_url(prefix if prefix.count("/") > 2 else prefix.rstrip("/") + "/")
    key = "/".join(p.strip("/") for p in (where.key, *parts) if p.strip("/"))
    return str(ObjectUrl(where.bucket, key))


# --------------------------------------------------------------------------- clients

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _aws_profile() -> dict[str, str]:
    """Static keys, region and endpoint of the AWS profile in the shared files (object_store
    reads the environment and instance roles, not ``~/.aws``)."""
    env = os.environ
    name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    config_file = Path(env.get("AWS_CONFIG_FILE", "~/.aws/config")).expanduser()
    credentials_file = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    found: dict[str, str] = {}
    for path, section in ((config_file, "default" if name == "default" else f"profile {name}"),
                          (credentials_file, name)):
        parser = configparser.RawConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(path)
            if parser.has_section(section):
                found.update({key.lower(): value.strip() for key, value in parser.items(section)})
    return found


def _s3_settings() -> dict[str, str]:
    env = os.environ
    settings: dict[str, str] = {}
    profile = _aws_profile() if not env.get("AWS_ACCESS_KEY_ID") else {}
    if profile.get("aws_access_key_id") and profile.get("aws_secret_access_key"):
        settings["access_key_id"] = profile["aws_access_key_id"]
        settings["secret_access_key"] = profile["aws_secret_access_key"]
        if profile.get("aws_session_token"):
            settings["token"] = profile["aws_session_token"]
    # object_store does not ask a bucket for its region: us-east-1 unless told.
    settings["region"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or profile.get("region") or "us-east-1"
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or profile.get("endpoint_url")
    if endpoint:
        settings["endpoint"] = endpoint
    return settings


def _client(bucket: str) -> Any:
    """One client per bucket and settings, shared by threads (it keeps a connection pool). Made
    in the process that uses it: workers are spawned, never forked with a client inside."""
    from obstore.store import S3Store

    settings = _s3_settings()
    # Environment credentials are read by object_store itself at construction; they are part of
    # the cache key so a changed environment (tests, a rotated key) gets a new client.
    key = (bucket, tuple(sorted(settings.items())),
           tuple(os.environ.get(n, "") for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            options: dict[str, Any] = dict(_CLIENT_OPTIONS)
            if settings.get("endpoint", "").startswith("http://"):
                options["allow_http"] = True  # an S3-compatible store on plain HTTP (a LAN, the tests)
            client = _clients[key] = S3Store(bucket, client_options=options, retry_config=_STORE_RETRY, **settings)
        return client


def forget_clients() -> None:
    """Drop the cached clients (after the environment changed: tests)."""
    with _clients_lock:
        _clients.clear()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD says of an object."""

    url: str
    size: int
    etag: str | None
    modified: dt.datetime

    def identity(self) -> list[Any]:
        """What changes when the object is replaced, for a lesson's input fingerprint (an ETag
        of a multipart upload is no MD5 of the bytes: compared as an opaque string only)."""
        return [self.size, self.etag, int(self.modified.timestamp() * 1_000_000_000)]


def _explain(client: Any, key: str) -> Callable[[str, str], tuple[str, str]]:
    """A HEAD's error has no body: its 404 does not tell a missing key from a missing bucket,
    nor its 403 a denied access from a wrong secret. A one-byte GET's error body does."""
    import obstore

    def refine(kind: str, hint: str) -> tuple[str, str]:
        if kind not in ("missing", "denied", "other") or "," in hint:  # "HTTP 404, NoSuchKey": known already
            return kind, hint
        try:
            obstore.get(client, key, options={"range": (0, 1)}).bytes()
        except Exception as error:  # noqa: BLE001 - only its S3 code matters here
            return _classify(error)
        return kind, hint

    return refine


def stat(url: str) -> ObjectInfo:
    """Size, ETag and last-modified time of the object (one HEAD)."""
    import obstore

    where = parse_url(url)
    client = _client(where.bucket)
    meta = _retry("stat", str(where), lambda: obstore.head(client, where.key), refine=_explain(client, where.key))
    return ObjectInfo(str(where), int(meta["size"]), meta.get("e_tag"), meta["last_modified"])


def read_bytes(url: str) -> bytes:
    """A whole small object (a manifest, a lessons file)."""
    import obstore

    where = parse_url(url)
    client = _client(where.bucket)
    return _retry("read", str(where), lambda: bytes(obstore.get(client, where.key).bytes()),
                  refine=_explain(client, where.key))


def download(url: str, dest: Path, *, known: ObjectInfo | None = None) -> ObjectInfo:
    """The object into the local file ``dest`` (written beside it and renamed when complete, so
    ``dest`` is never half a recording): streamed, its length checked against the HEAD's, every
    byte from the version the HEAD saw (``If-Match`` its ETag: an object replaced meanwhile is an
    error, not a splice of two files). Retried from the start on a transient failure. Returns
    what the HEAD said. ``known``: what a listing said of the object, in place of the HEAD."""
    import obstore

    where = parse_url(url)
    client = _client(where.bucket)
    info = known if known is not None else stat(url)
    dest = Path(dest)
    part = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    arrived = 0

    def transfer() -> ObjectInfo:
        nonlocal arrived
        arrived = 0
        options = {"if_match": info.etag} if info.etag else {}
        response = obstore.get(client, where.key, options=options)
        with open(part, "wb") as out:
            for piece in response.stream(min_chunk_size=DOWNLOAD_CHUNK):
                out.write(piece)
                arrived += len(piece)
        if arrived != info.size:
            raise _ShortRead(f"{arrived:,} of {info.size:,} bytes arrived")
        os.replace(part, dest)
        return info

    try:
        return _retry("download", str(where), transfer, refine=_explain(client, where.key),
                      detail=lambda: f"{arrived:,} of {info.size:,} bytes arrived" if arrived < info.size else "")
    finally:
        with contextlib.suppress(OSError):
            part.unlink()


@contextlib.contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A private temporary copy of a small object (a manifest, a lessons file) under its own
    file name (messages name it so), deleted on the way out."""
    import tempfile

    where = parse_url(url)
    with tempfile.TemporaryDirectory(prefix="highlights-") as folder:  # 0700
        path = Path(folder) / (where.name or "object")
        download(url, path)
        yield path


def list_objects(url: str) -> list[ObjectInfo]:
    """The objects whose keys start with the URL's key."""
    import obstore

    where = parse_url(url)
    client = _client(where.bucket)

    def listing() -> list[ObjectInfo]:
        return [ObjectInfo(str(ObjectUrl(where.bucket, meta["path"])), int(meta["size"]), meta.get("e_tag"),
                           meta["last_modified"])
                for batch in obstore.list(client, where.key or None, chunk_size=1000) for meta in batch]

    return _retry("list", str(where), listing)


# --------------------------------------------------------------------------- writing


def upload(url: str, source: Path | bytes, *, content_type: str, cache_control: str | None = None) -> ObjectInfo:
    """PUT ``source`` (a local file or bytes) at ``url`` with its ``Content-Type`` and
    ``Cache-Control``; multipart above 8 MiB. Nothing appears under the key unless the whole
    upload succeeds (S3 creates a multipart object only when it is completed; a failed one is
    aborted). Retried as a whole on a transient failure. Returns the new object's size and ETag."""
    import obstore

    where = parse_url(url)
    client = _client(where.bucket)
    size = len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size
    attributes = {"Content-Type": content_type, **({"Cache-Control": cache_control} if cache_control else {})}

    def put() -> ObjectInfo:
        result = obstore.put(client, where.key, source, attributes=attributes, use_multipart=size > MULTIPART_THRESHOLD,
                             chunk_size=MULTIPART_CHUNK, max_concurrency=4)
        return ObjectInfo(str(where), size, result.get("e_tag"), dt.datetime.now(dt.timezone.utc))

    try:
        return _retry("upload", str(where), put)
    except ObjectStoreError as error:
        if error.kind in TRANSIENT and size > MULTIPART_THRESHOLD:
            raise ObjectStoreError("upload_failed", error.url, "upload",
                                   detail=f"multipart upload of {size:,} bytes", attempts=error.attempts) from None
        raise


def delete(url: str) -> None:
    """Delete the object; a missing one is no error (S3's rule), so a withdrawal can be repeated."""
    import obstore

    where = parse_url(url)
    client = _client(where.bucket)
    _retry("delete", str(where), lambda: obstore.delete(client, where.key))


__all__ = [
    "GIF_CACHE_CONTROL",
    "GIF_CONTENT_TYPE",
    "SCHEMES",
    "TRANSIENT",
    "ObjectInfo",
    "ObjectStoreError",
    "ObjectUrl",
    "delete",
    "download",
    "forget_clients",
    "is_object_url",
    "join_url",
    "list_objects",
    "local_copy",
    "looks_like_url",
    "mask_url",
    "object_kind",
    "parse_url",
    "prefix_url",
    "read_bytes",
    "stat",
    "upload",
]
