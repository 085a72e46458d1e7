"""Settings (:mod:`highlights.config`): values out of range, of the wrong shape, not finite or
not configurable stop the run before any lesson, named plainly (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from highlights.cli import main
from highlights.config import ConfigError, load_settings
from highlights.stages.selection import SelectionOptions

from support.lessons import one_lesson


def test_republishing_withdrawn_lessons_cannot_be_configured(tmp_path: Path) -> None:
    # Only a rerun naming its lessons with --force makes withdrawn highlights again.
    with pytest.raises(ConfigError, match="unknown setting 'republish_withdrawn'"):
        load_settings(None, env={"HIGHLIGHTS_FORCE": "1", "HIGHLIGHTS_REPUBLISH_WITHDRAWN": "true"})
    config = tmp_path / "highlights.toml"
    config.write_text("force = true\nrepublish_withdrawn = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="republish_withdrawn"):
        load_settings(config, env={})


@pytest.mark.parametrize(
    ("toml", "setting"),
    [("fps = 0", "fps"), ("fps = 1e9", "fps"), ("gap_tolerance_s = -5", "gap_tolerance_s"),
     ("[detection]\nmax_side = 5", "max_side"), ("[gif]\nmax_bytes = -5", "max_bytes"),
     ("[gif]\npalettes = [1024]", "palettes"), ('[detection]\ndevice = "tpu"', "device"),
     # Before: accepted. inf / nan: min_gap_s looped for ever, margin and gap_tolerance_s failed every
     # lesson, scene_change = nan switched scene changes off; 1e300 overflowed a timedelta; a bucket
     # of a nanosecond never finished a 2-minute lesson.
     ("[selection]\nmin_gap_s = inf", "min_gap_s"), ("[gif]\nmargin = inf", "margin"),
     ("gap_tolerance_s = inf", "gap_tolerance_s"), ("[detection]\nscene_change = nan", "scene_change"),
     ("gap_tolerance_s = 1e300", "gap_tolerance_s"), ("analytics_bucket_s = 1e-9", "analytics_bucket_s")],
)
def test_settings_out_of_range_stop_the_run_before_any_lesson(videos, tmp_path: Path, clean_env, toml, setting) -> None:
    config = tmp_path / "highlights.toml"
    config.write_text(toml + "\n", encoding="utf-8")
    manifest = one_lesson(videos, tmp_path / "rec")
    out = tmp_path / "out"

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(out), "--config", str(config), "--no-progress"])

    assert outcome.exit_code == 2, outcome.output
    assert setting in outcome.output
    assert not (out / "L-1001").exists()
    with pytest.raises(ConfigError, match=setting):
        load_settings(config, env={})


def test_a_list_setting_of_the_wrong_shape_is_named_once_and_plainly(tmp_path: Path) -> None:
    # Before: "environment variable HIGHLIGHTS_GIF__SIZES: environment variable HIGHLIGHTS_GIF__SIZES:
    # expected a whole number" (an item's error wrapped twice) and "gif.sizes: 'int' object is not iterable".
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"HIGHLIGHTS_GIF__SIZES": "abc"})
    assert str(raised.value) == "environment variable HIGHLIGHTS_GIF__SIZES: expected a whole number, got 'abc'"
    config = tmp_path / "highlights.toml"
    config.write_text("[gif]\nsizes = 360\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"gif\.sizes: expected a list, got 360$"):
        load_settings(config, env={})


def test_a_config_file_that_is_not_utf8_is_a_bad_option_not_a_traceback(videos, tmp_path: Path, clean_env) -> None:
    # Before: UnicodeDecodeError out of the CLI (exit 1 with a traceback) for a Latin-1 comment.
    config = tmp_path / "highlights.toml"
    config.write_bytes(b"fps = 1.0\n# caf\xe9\n")
    manifest = one_lesson(videos, tmp_path / "rec")

    outcome = clean_env.invoke(main, ["run", str(manifest), "--out", str(tmp_path / "out"), "--config", str(config),
                                      "--no-progress"])

    assert outcome.exit_code == 2, outcome.output
    assert "not UTF-8" in outcome.output and "highlights.toml" in outcome.output
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(config, env={})


def test_a_non_finite_number_is_refused_from_the_environment_too() -> None:
    with pytest.raises(ConfigError, match=r"HIGHLIGHTS_SELECTION__MIN_GAP_S: expected a finite number, got 'inf'"):
        load_settings(env={"HIGHLIGHTS_SELECTION__MIN_GAP_S": "inf"})
    with pytest.raises(ValueError, match="min_gap_s"):
        SelectionOptions(min_gap_s=float("inf"))
