"""The mixed batch the pools' tests run, and its serial run: the reference every pool must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from highlights.batch.run import run_manifest
from highlights.config import Settings

from support.fakes import FakeScorer
from support.runs import mixed_manifest, snapshot


@pytest.fixture(scope="module")
def mixed(videos, tmp_path_factory) -> Path:
    """The four lessons' manifest; the runs compared read the same files (their paths and
    mtimes are part of each lesson's fingerprint)."""
    return mixed_manifest(videos, tmp_path_factory.mktemp("mixed") / "rec")


@pytest.fixture(scope="module")
def serial_run(mixed, tmp_path_factory):
    """The four lessons run serially (the reference the other executors must match)."""
    manifest = mixed
    settings = Settings(out_dir=tmp_path_factory.mktemp("serial") / "out")
    results = run_manifest(manifest, settings, scorer=FakeScorer())
    assert [r.status for r in results] == ["ok", "no_highlight", "failed", "ok"], [r.reason for r in results]
    return snapshot(settings, results)
