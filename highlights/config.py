"""Settings of a run: the stages' own option dataclasses, composed, plus where results go.

Each stage defines its options beside its code (``DetectionOptions`` in
``highlights/models/detection.py``, ``SelectionOptions`` in ``stages/selection.py``, ``GifOptions`` in
``stages/gif.py``, ``EmailOptions`` in ``stages/snippet.py``, ``AnalyticsOptions`` in
``stages/analytics.py``); :class:`Settings` only gathers them. Values come,
later ones winning, from the defaults, a TOML file (``--config``), environment variables and
the command line::

    # highlights.toml
    out_dir = "/data/highlights"
    db_url = "postgresql+psycopg://highlights@db/highlights"
    timezone = "Europe/London"      # for manifest times written without an offset
    fps = 1.0                       # frames sampled per second of lesson
    gap_tolerance_s = 2.0           # shorter gaps in a recording are not disconnects

    [detection]
    max_side = 0
    [selection]
    # ... any field of SelectionOptions
    [gif]
    # ... any field of GifOptions
    [email]
    public_base_url = "https://cdn.example.com/highlights"
    [analytics]                     # highlights/stages/analytics.py, AnalyticsOptions
    smiles = true                   # smile detection analytics (false: not computed nor stored)
    presence = true                 # child / adult presence analytics

Environment variables: ``HIGHLIGHTS_<FIELD>`` for a top-level field (``HIGHLIGHTS_DB_URL``,
``HIGHLIGHTS_OUT_DIR``, ``HIGHLIGHTS_TIMEZONE``) and ``HIGHLIGHTS_<SECTION>__<FIELD>`` for a
stage's field (``HIGHLIGHTS_GIF__MAX_BYTES``); ``HIGHLIGHTS_PUBLIC_BASE_URL`` is short for
``HIGHLIGHTS_EMAIL__PUBLIC_BASE_URL``. ``HIGHLIGHTS_CONFIG`` names a TOML file.
"""

from __future__ import annotations

import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from highlights.core.lesson import MAX_LESSON_S
from highlights.models.detection import DetectionOptions
from highlights.stages.analytics import AnalyticsOptions
from highlights.stages.gif import GifOptions
from highlights.stages.selection import SelectionOptions
from highlights.stages.snippet import EmailOptions
from highlights.stages.timeline import DEFAULT_GAP_TOLERANCE_S

NOT_CONFIGURABLE = frozenset({"republish_withdrawn"})
"""Settings no config file or environment variable may set: making withdrawn highlights again
is for a rerun that names its lessons (``highlights run MANIFEST --lesson ID --force``), never a
night's configuration."""
ENV_PREFIX = "HIGHLIGHTS_"
ENV_ALIASES = {"HIGHLIGHTS_PUBLIC_BASE_URL": ("email", "public_base_url")}
SECTIONS = ("detection", "selection", "gif", "email", "analytics")

JOB_DIR_NAME = ".highlights"
"""The job's own folder inside ``out_dir`` (the default SQLite database, and other job-level
files: run logs, locks). Lesson folders are ``out_dir/<lesson_id>/`` and a lesson id must start
with a letter or digit (:func:`highlights.core.lesson.is_valid_lesson_id`), so no lesson folder can
be this one or sit among the job's files."""
LEGACY_DB_NAME = "highlights.sqlite"
"""Where the default database lay before it moved into :data:`JOB_DIR_NAME`; still used when the
file exists there (the campaign may read it at that path)."""

MAX_FPS = 30.0
"""Upper bound of ``fps``: webcams record at most 30 frames per second, so sampling more often
only repeats frames (and ``fps = 1e9`` would plan a billion points per second of lesson)."""
MIN_BUCKET_S = 1.0
"""Lower bound of ``analytics_bucket_s``: a lesson is sampled about once a second, and a bucket of
a nanosecond would make a 2-minute lesson 120 billion rows (the run never ends)."""


def job_dir(out_dir: Path | str, *, create: bool = False) -> Path:
    """``out_dir/.highlights``: the folder for the job's own files, never a lesson's.

    With ``create``, it is made (mode 0750: it holds the database and logs, which name lessons
    and students, and the web server that serves the GIFs has no business in it).
    """
    folder = Path(out_dir) / JOB_DIR_NAME
    if create:
        from highlights.files import make_dirs

        make_dirs(folder, mode=0o750)
    return folder


def default_work_dir(out_url: str) -> Path:
    """The working folder of outputs in a bucket on this machine:
    ``<temp>/highlights-<uid>/<hash of the URL>`` (one per bucket prefix, so that the lesson lock
    taken there keeps two runs on this machine off the same lesson)."""
    import hashlib
    import tempfile

    digest = hashlib.sha256(out_url.rstrip("/").encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"highlights-{os.getuid()}" / digest


def default_database_path(out_dir: Path | str) -> Path:
    """The default SQLite file: ``out_dir/.highlights/highlights.sqlite``, or
    ``out_dir/highlights.sqlite`` where an older deployment already has that file."""
    legacy = Path(out_dir) / LEGACY_DB_NAME
    return legacy if legacy.is_file() else job_dir(out_dir) / LEGACY_DB_NAME


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides the manifest.

    >>> settings = Settings(out_dir=Path("out"))
    >>> settings.database_url
    'sqlite:///out/.highlights/highlights.sqlite'
    """

    out_dir: Path = Path("out")
    """Results go to ``out_dir/<lesson_id>/`` (unless ``out_url`` puts them in a bucket)."""
    out_url: str | None = None
    """``s3://bucket/prefix``: the lesson folders live in the bucket, as ``<prefix>/<lesson_id>/``
    (result.json, stages.json, scores, analytics, report, snippets, the GIF). Each lesson's run
    brings its folder's objects into a private working folder (:attr:`lessons_root`), runs there
    and puts back what changed, ``result.json`` last (:mod:`highlights.lesson.bucket`); so a
    rerun resumes, or skips the lesson, on any machine. ``out_dir`` is then not used, and the
    database must be named (``db_url``): a bucket holds no SQLite file."""
    work_dir: Path | None = None
    """With ``out_url``: the local working folder the lessons run in (default: a private folder
    under the system's temporary folder, :func:`default_work_dir`). A lesson's files there are
    deleted once they are in the bucket."""
    db_url: str | None = None
    """SQLAlchemy URL of the results database (default: ``sqlite:///<out_dir>/.highlights/highlights.sqlite``,
    or ``<out_dir>/highlights.sqlite`` where that file already exists: see :func:`default_database_path`)."""
    timezone: str | None = None
    """IANA zone for manifest times without an offset (default: such times are an error)."""
    force: bool = False
    """Redo lessons already done with the same inputs, code and models."""
    republish_withdrawn: bool = False
    """With ``force``, make lessons withdrawn by hand (``highlights withdraw``) again, under a new
    GIF name. :func:`~highlights.lesson.run.run_manifest` sets it for lessons named one by one
    (``highlights run MANIFEST --lesson ID --force``): a whole night's ``--force`` (a new model)
    leaves withdrawn lessons withdrawn."""
    fps: float = 1.0
    """Frames sampled per second of lesson (more than 0, at most :data:`MAX_FPS`)."""
    gap_tolerance_s: float = DEFAULT_GAP_TOLERANCE_S
    """Gaps between a person's recordings up to this long are not counted as disconnects."""
    score_batch_size: int = 16
    """Frames scored per detector call."""
    analytics_bucket_s: float = 60.0
    """Width of the analytics buckets (a minute)."""
    smile_weights: Path | None = None
    """Smile model weights (default: the shipped ones); e.g. a model fine-tuned on your own
    labelled lessons (``highlights train smile --init shipped``). Not checksummed like the
    shipped files; a change of file redoes the scoring stage (its version is in the key)."""
    age_weights: Path | None = None
    """Child/adult model weights (default: the shipped ones), as ``smile_weights``."""
    detection: DetectionOptions = field(default_factory=DetectionOptions)
    selection: SelectionOptions = field(default_factory=SelectionOptions)
    gif: GifOptions = field(default_factory=GifOptions)
    email: EmailOptions = field(default_factory=EmailOptions)
    analytics: AnalyticsOptions = field(default_factory=AnalyticsOptions)
    publish: str | None = None
    """``s3://bucket/prefix``: each lesson's GIF is uploaded to ``<prefix>/<lesson_id>/<random>.gif``
    (content type, year-long immutable cache headers) before its row is written, and
    ``email.public_base_url`` must then say where the prefix is served (a CDN in front of the
    bucket): the GIF's URL is ``<public_base_url>/<lesson_id>/<random>.gif``. None: the GIF
    stays in ``out_dir`` only, served from there."""

    def __post_init__(self) -> None:
        # Ranges are checked here, so a bad value stops the run before any lesson (exit 2 naming
        # the setting) instead of failing every lesson, or planning a billion frames.
        if not 0 < self.fps <= MAX_FPS:
            raise ValueError(f"fps must be more than 0 and at most {MAX_FPS:g}, not {self.fps:g}")
        if not 0 <= self.gap_tolerance_s <= MAX_LESSON_S:
            # Past a day (a lesson's longest) it means nothing, and 1e300 overflows a timedelta:
            # every lesson failed in its timeline stage and `highlights timeline` crashed.
            raise ValueError(f"gap_tolerance_s must be 0 or more and at most {MAX_LESSON_S}, not {self.gap_tolerance_s:g}")
        if self.score_batch_size < 1:
            raise ValueError(f"score_batch_size must be 1 or more, not {self.score_batch_size}")
        if not MIN_BUCKET_S <= self.analytics_bucket_s <= MAX_LESSON_S:
            raise ValueError(f"analytics_bucket_s must be at least {MIN_BUCKET_S:g} and at most {MAX_LESSON_S}, "
                             f"not {self.analytics_bucket_s:g}")

        for name in ("publish", "out_url"):
            _check_bucket_prefix(name, getattr(self, name))
        if "://" in str(self.out_dir) or str(self.out_dir).startswith("s3:/"):
            raise ValueError(f"out_dir {str(self.out_dir)!r} is a URL, not a folder: set out_url for a bucket")

    def check(self) -> None:
        """ValueError unless the settings that go together are all there (checked once all are
        in: they are set one at a time): :meth:`check_publishing`, :meth:`check_outputs`."""
        self.check_publishing()
        self.check_outputs()

    def check_publishing(self) -> None:
        """Publishing needs a public base URL to link the GIFs with."""
        if self.publish and not self.email.public_base_url:
            raise ValueError(f"publish {self.publish} needs public_base_url (--public-base-url): the URL at "
                             "which the bucket prefix is served, which the emails link")

    def check_outputs(self, *, linked: bool = True) -> None:
        """Outputs in a bucket need a named database, and (``linked``: a run that makes GIFs) a
        public base URL: the GIF's own place is no URL an email's reader can fetch (the working
        folder's files are deleted, an ``s3://`` URL is not the web)."""
        if self.out_url and not self.db_url:
            raise ValueError(f"out_url {self.out_url} needs a database URL (--db / db_url): the default SQLite "
                             "file cannot live in a bucket")
        if linked and self.out_url and not self.email.public_base_url:
            raise ValueError(f"out_url {self.out_url} needs public_base_url (--public-base-url): the URL at which "
                             "the bucket prefix (or the --publish prefix) is served, which the emails link")

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{default_database_path(self.out_dir)}"

    @property
    def lessons_root(self) -> Path:
        """The local folder of the lesson folders: ``out_dir``, or with ``out_url`` the working
        folder (``work_dir``, or :func:`default_work_dir`)."""
        if self.out_url is None:
            return Path(self.out_dir)
        return Path(self.work_dir) if self.work_dir is not None else default_work_dir(self.out_url)

    @property
    def job_dir(self) -> Path:
        """``out_dir/.highlights``, the job's own folder (see :func:`job_dir`)."""
        return job_dir(self.out_dir)

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with top-level fields (``out_dir=...``) or ``section__field=...`` changed;
        ``None`` values are ignored, so CLI options left unset keep the configured value."""
        settings = self
        for key, value in values.items():
            if value is None:
                continue
            settings = _set(settings, key.split("__"), value, f"option {key}")
        return settings


def _check_bucket_prefix(name: str, value: str | None) -> None:
    """ValueError unless ``value`` (setting ``name``) is None or an ``s3://bucket/prefix``."""
    if value is None:
        return
    from highlights.storage.objects import ObjectStoreError, parse_url

    try:
        parse_url(value)
    except ObjectStoreError as error:
        raise ValueError(f"{name} {value!r} is not a bucket prefix: {error.detail}") from None


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - fall back to the annotations as written
        return {f.name: f.type for f in fields(cls)}


def _coerce(value: Any, annotation: Any, current: Any, where: str) -> Any:
    """Convert a TOML or environment value to the field's type."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        annotation = args[0] if args else Any
        origin = typing.get_origin(annotation)
    target = origin or annotation
    try:
        if target is bool or isinstance(current, bool):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(f"not a boolean: {value!r}")
            if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
                return bool(value)
            raise ValueError(f"not a boolean: {value!r}")
        if target in (int, float) and isinstance(value, (bool, list, tuple, dict)):
            raise ValueError(f"expected a number, got {value!r}")
        if target is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"expected a whole number, got {value!r}")
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"expected a whole number, got {value!r}") from None
        if target is float:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
            if not math.isfinite(number):
                # No setting means nan or infinity, and range checks written `x < 0` let nan
                # through: min_gap_s = inf looped for ever in the selection, gif margin = inf and
                # gap_tolerance_s = inf failed every lesson of the night.
                raise ValueError(f"expected a finite number, got {value!r}")
            return number
        if target is Path:
            if not isinstance(value, (str, Path)) or not str(value).strip():
                raise ValueError(f"expected a path, got {value!r}")
            return Path(value)
        if target in (tuple, list):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"expected a list, got {value!r}")  # not "'int' object is not iterable"
            item_types = typing.get_args(annotation)
            items = list(value)
            if item_types and item_types[-1] is not Ellipsis and len(item_types) == len(items):
                items = [_coerce(v, t, None, where) for v, t in zip(items, item_types)]
            elif item_types:
                items = [_coerce(v, item_types[0], None, where) for v in items]
            return tuple(items) if target is tuple else items
        if target is str:
            return str(value)
    except ConfigError:
        raise  # an item of a list, already named ("X: X: ..." otherwise)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error
    return value


def _set(obj: Any, path: list[str], value: Any, where: str) -> Any:
    """``obj`` with the (nested) field at ``path`` set to ``value`` converted to its type."""
    name = path[0]
    known = {f.name for f in fields(obj)} - NOT_CONFIGURABLE
    if name not in known:
        raise ConfigError(f"{where}: unknown setting {name!r} (known: {', '.join(sorted(known))})")
    current = getattr(obj, name)
    if len(path) > 1:
        if not is_dataclass(current):
            raise ConfigError(f"{where}: {name!r} has no fields")
        return replace(obj, **{name: _set(current, path[1:], value, where)})
    if is_dataclass(current):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: {name!r} is a section, not a value: set its fields "
                f"([{name}] in TOML, HIGHLIGHTS_{name.upper()}__<FIELD> in the environment)"
            )
        for key, item in value.items():
            current = _set(current, [key], item, f"{where}.{key}")
        return replace(obj, **{name: current})
    converted = _coerce(value, _field_types(type(obj)).get(name, Any), current, f"{where}")
    try:
        return replace(obj, **{name: converted})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def settings_from_toml(path: Path | str, base: Settings | None = None) -> Settings:
    """Settings from a TOML file, over ``base`` (default: the defaults)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
    except UnicodeDecodeError as error:  # TOML is UTF-8; a Latin-1 comment stopped the CLI with a traceback
        raise ConfigError(f"config file {path}: not UTF-8 text (byte {error.start}): save it as UTF-8") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: {error}") from error
    settings = base or Settings()
    for key, value in data.items():
        settings = _set(settings, [key], value, f"{path}: {key}")
    return settings


def settings_from_env(env: Mapping[str, str], base: Settings | None = None) -> Settings:
    """Settings from ``HIGHLIGHTS_*`` environment variables, over ``base``."""
    settings = base or Settings()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name == "HIGHLIGHTS_CONFIG":
            continue
        if name in ENV_ALIASES:
            path = list(ENV_ALIASES[name])
        else:
            path = name[len(ENV_PREFIX) :].lower().split("__")
            if path[0] not in {f.name for f in fields(Settings)}:
                continue  # other HIGHLIGHTS_* variables (test switches, data paths) are not settings
        settings = _set(settings, path, env[name], f"environment variable {name}")
    return settings


def load_settings(
    config: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then the TOML file (``config`` or ``$HIGHLIGHTS_CONFIG``), then the
    environment, then ``overrides`` (top-level names or ``section__field``; None ignored)."""
    env = os.environ if env is None else env
    settings = Settings()
    config = config or env.get("HIGHLIGHTS_CONFIG")
    if config:
        settings = settings_from_toml(config, settings)
    settings = settings_from_env(env, settings)
    return settings.with_overrides(**overrides)


__all__ = [
    "JOB_DIR_NAME",
    "MAX_FPS",
    "ConfigError",
    "Settings",
    "default_database_path",
    "default_work_dir",
    "job_dir",
    "load_settings",
    "settings_from_env",
    "settings_from_toml",
]
