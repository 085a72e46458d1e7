"""The night's overview (highlights dashboard): its content for a database of known lessons, the
period filter, the smile / presence switch, the CLI, and headless Chromium drawing it."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from highlights.cli import main
from highlights.persist.store import ResultStore
from highlights.stages.analytics import AnalyticsOptions
from highlights.tools.dashboard import write_dashboard

from support.analytics_lessons import save_lessons
from support.chromium import chromium_binary, run_chromium, screenshot_rgb

CHARTS = ("status", "reasons", "disconnects", "presence", "smiles", "slowest")


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> tuple[str, Path]:
    """A SQLite database of the known lessons (tests/support/analytics_lessons.py) and their OUT folder."""
    root = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{root / 'out' / 'highlights.sqlite'}"
    store = ResultStore(url)
    save_lessons(store, root / "out")
    store.dispose()
    return url, root / "out"


def charts_in(html: str) -> list[str]:
    return re.findall(r'<svg class="chart" data-chart="([a-z]+)"', html)


def test_the_page_shows_every_chart_and_links_each_lesson_to_its_report(database, tmp_path):
    url, out = database
    page = write_dashboard(url, tmp_path / "pages" / "overview.html")
    html = page.read_text(encoding="utf-8")
    assert charts_in(html) == list(CHARTS)
    # Self-contained: nothing fetched, nothing run.
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert "<img" not in html and "@import" not in html
    # Every lesson has a row; those with a report here link to it, relative to the page.
    rows = re.findall(r'<tr class="lesson">(.*?)</tr>', html)
    assert len(rows) == 6
    links = dict((lesson, href) for href, lesson in re.findall(r'<td class="id"><a href="([^"]+)">([^<]+)</a>', html))
    assert sorted(links) == ["L-A", "L-B", "L-C", "L-D"]
    for lesson, href in links.items():
        assert not href.startswith(("/", "file:")) and (page.parent / href).resolve() == (out / lesson / "report.html").resolve()
    assert "L-E <span class=\"muted\">(no report here)</span>" in html
    # The slowest lessons, slowest first.
    slowest = re.search(r'<ol class="slowest">(.*?)</ol>', html, flags=re.S).group(1)
    assert re.findall(r"(L-[A-F])</a> ([0-9:]+)", slowest)[:3] == [("L-C", "10:00"), ("L-A", "2:00"), ("L-D", "1:00")]
    # Reasons and statuses; the page was written atomically (no temporary file left).
    assert "no_smile" in html and "bad_input" in html
    assert [p.name for p in page.parent.iterdir()] == ["overview.html"]


def test_the_period_selects_lessons_by_their_day(database, tmp_path):
    url, _ = database
    html = write_dashboard(url, tmp_path / "o.html", since=date(2026, 11, 24), until=date(2026, 11, 25)).read_text()
    lessons = re.findall(r'<tr class="lesson"><td class="id">(?:<a href="[^"]+">)?(L-[A-F])', html)
    assert lessons == ["L-B", "L-C", "L-E", "L-F"]  # L-E by its row's day: it has no start
    assert "4 lessons, 2026-11-24 to 2026-11-25" in html
    empty = write_dashboard(url, tmp_path / "e.html", since=date(2025, 1, 1), until=date(2025, 1, 2)).read_text()
    assert "No lesson in this period." in empty and len(charts_in(empty)) == 6


def test_switched_off_smiles_and_presence_leave_their_charts_out(database, tmp_path):
    url, _ = database
    html = write_dashboard(url, tmp_path / "o.html", analytics=AnalyticsOptions(smiles=False, presence=False)).read_text()
    assert charts_in(html) == ["status", "reasons", "disconnects", "slowest"]
    assert "Smile detection by minute" not in html and "Parent presence" not in html
    assert "Smile-detection figures are switched off" in html


def test_cli_dashboard(database, tmp_path):
    url, _ = database
    runner = CliRunner()
    out = tmp_path / "overview.html"
    result = runner.invoke(main, ["dashboard", "--db", url, "--since", "2026-11-23", "--until", "2026-11-29",
                                  "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"overview: {out}" in result.output and len(charts_in(out.read_text())) == 6
    config = tmp_path / "h.toml"
    config.write_text("[analytics]\nsmiles = false\n")
    result = runner.invoke(main, ["dashboard", "--db", url, "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "smiles" not in charts_in(out.read_text()) and "presence" in charts_in(out.read_text())
    bad = runner.invoke(main, ["dashboard", "--db", url, "--since", "2026-11-29", "--until", "2026-11-23", "--out", str(out)])
    assert bad.exit_code == 2 and "is after" in bad.output
    bad = runner.invoke(main, ["dashboard", "--db", "postgresql+psycopg://u:pw@localhost:notaport/db", "--out", str(out)])
    assert bad.exit_code == 2 and "is not a database URL" in bad.output and "pw@" not in bad.output


def test_the_dashboard_creates_no_database(tmp_path):
    # A typo in --db used to create the folder and an empty database, and report "0 lessons", exit 0.
    missing = tmp_path / "missing" / "typo.sqlite"
    out = tmp_path / "overview.html"
    result = CliRunner().invoke(main, ["dashboard", "--db", f"sqlite:///{missing}", "--out", str(out)])
    assert result.exit_code == 2, result.output  # a typo in --db: a bad option
    assert f"there is no database at {missing}" in result.output
    assert not (tmp_path / "missing").exists() and not out.exists()
    result = CliRunner().invoke(main, ["dashboard", "--db", "sqlite://", "--out", str(out)])
    assert result.exit_code == 2 and "in-memory database: it keeps nothing" in result.output


@pytest.mark.timeout(240)
def test_the_page_draws_in_headless_chromium(database, tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium; .ci/run installs it)")
    url, _ = database
    page = write_dashboard(url, tmp_path / "overview.html")

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert charts_in(dom.stdout) == list(CHARTS), dom.stderr[-2000:]

    rgb = screenshot_rgb(binary, page, tmp_path, 1200, 2200)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50, "the page looks blank"
    # The charts drew: solid areas of their colours (status bars, teacher bars, the lines' fill).
    for colour, least in (((0x2D, 0xA4, 0x4E), 2000), ((0xCF, 0x22, 0x2E), 500), ((0x82, 0x50, 0xDF), 500),
                          ((0xBF, 0x87, 0x00), 500), ((0x09, 0x69, 0xDA), 50)):  # fmt: skip
        pixels = int(np.all(rgb == colour, axis=-1).sum())
        assert pixels >= least, f"only {pixels} pixels of colour {colour}"
