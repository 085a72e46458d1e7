"""The stages of one lesson as a graph: what each one reads, the settings that shape it, the files
it writes, and how an earlier run's files are loaded back::

    recordings ─> timeline ─> scores ─> analytics
                      │          └────> selection ─> gif ─> snippet
                      └──────────────────────┴───────┴─────────┴──> report
                 (info: the lessons file's row; models: the face models' versions)

Each stage is a :class:`Stage`. ``needs`` names the values it reads, in the order its ``run``
takes them: other stages' values, or the lesson's own inputs (:data:`INPUTS`). Its fingerprint
(:func:`stage_keys`) is derived from the same declaration: the stage's name, the code, the
settings it declares and the fingerprints of what it needs. :func:`produce` hands a stage exactly
the values it declares, so the data flow and the fingerprints cannot disagree.

The computations are pure functions of :mod:`highlights.stages`; the files are
:mod:`highlights.lesson.folder`'s. The order the stages run in, and the outcomes that end a
lesson early, are :mod:`highlights.lesson.flow`'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import highlights
from highlights.config import Settings
from highlights.core.faces import FaceTable
from highlights.core.lesson import LessonInput, recording_of_frame
from highlights.core.plain import jsonable
from highlights.core.result import LessonResult
from highlights.lesson import folder as files
from highlights.lesson.resume import StageState, code_fingerprint, digest, input_fingerprint
from highlights.media.decode import frames_at_points, prefetch, read_frame_at
from highlights.stages.analytics import lesson_analytics
from highlights.stages.gif import GifFrame, GifInfo, build_gif, public_gif_name
from highlights.stages.persons import assign_persons
from highlights.stages.report import render_report
from highlights.stages.selection import Pick, Selection, select_highlights
from highlights.stages.snippet import render_snippet
from highlights.stages.timeline import LessonPlan, plan_lesson
from highlights.stages.tracks import assign_tracks
from highlights.storage import objects

log = logging.getLogger(__name__)

KEPT_FRAMES = 64
"""Frames kept from scoring for the GIF stage (the best-smiling child frames; see
:class:`highlights.stages.scores.KeptFrames`): 64 x 0.9 MB at 640x480, whatever the lesson's length."""

INPUTS = ("recordings", "info", "models")
"""The lesson's own inputs a stage may need besides other stages' values: its recordings (the
manifest rows and the files' identities), its lessons-file row (hashed, never stored) and the
face models (their versions)."""


class Progress:
    """Callbacks the job makes while it works; the default does nothing.

    The CLI passes one that draws a progress bar; a caller may pass its own.
    """

    def batch_started(self, total: int) -> None: ...

    def lesson_started(self, lesson_id: str, index: int, total: int) -> None: ...

    def stage(self, lesson_id: str, stage: str) -> None: ...

    def frames(self, lesson_id: str, done: int, total: int | None) -> None: ...

    def lesson_finished(self, result: LessonResult) -> None: ...


class LessonFailed(Exception):
    """A stage failed; ``str()`` names the lesson, the stage and, where known, the file and row."""


class StageError(Exception):
    """An error raised inside a stage, tagged with the stage's name (the error is its cause)."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class StageKeys(dict[str, str]):
    """Each stage's fingerprint by stage name, and ``overall``, the lesson's (``result.json``
    carries it)."""

    @property
    def overall(self) -> str:
        return self["overall"]


@dataclass
class LessonRun:
    """One lesson being run: what every stage may read besides the values it declares."""

    lesson: LessonInput
    settings: Settings
    folder: Path
    keys: StageKeys
    state: StageState
    versions: dict[str, Any]
    progress: Progress
    scorer: Any
    published: bool = False
    """The lesson had an ``ok`` highlight before this run (see :mod:`highlights.lesson.flow`)."""
    sampled_frames: int | None = None
    """Sampled seconds that decoded in this run (set after the scores stage)."""
    kept_frames: Any = None
    """The likely GIF frames, kept from scoring so the GIF stage need not decode them again."""
    result: LessonResult | None = field(default=None)
    """The lesson's outcome, once the flow knows it (the report shows it)."""


# --------------------------------------------------------------------------- the graph


@dataclass(frozen=True)
class Stage:
    """One stage of :data:`STAGES`."""

    name: str
    """The stage's entry in ``stages.json``, its fingerprint's name and its value's name."""
    needs: tuple[str, ...]
    """The values ``run`` takes after the :class:`LessonRun`, in order: stage names or :data:`INPUTS`."""
    settings: Callable[[Settings], Any]
    """The settings that shape the stage's output (part of its fingerprint), as plain values."""
    files: tuple[str, ...] | Callable[[Any], Sequence[str]]
    """The files it writes in the lesson's folder; for the GIF, whose name is drawn when it is
    first made, a function of the stage's value."""
    run: Callable[..., Any]
    """``run(lesson_run, *needed)``: computes the stage, writes its files atomically, returns its value."""
    load: Callable[[LessonRun, dict[str, Any]], Any] | None = None
    """``load(lesson_run, record)``: the value back from an earlier run's files (or its
    ``stages.json`` record). None for a stage whose value no later stage reads."""
    notes: Callable[[LessonRun, Any], dict[str, Any]] | None = None
    """``notes(lesson_run, value)``: fields of its ``stages.json`` record besides the fingerprint and files."""


def produce(c: LessonRun, stage: Stage, values: Mapping[str, Any]) -> Any:
    """The stage's value: loaded when ``stages.json`` says its files are current, else computed
    from the values it declares (taken from ``values``), written and recorded. An error inside is
    raised as a :class:`StageError` naming the stage."""
    key = c.keys[stage.name]
    with _stage(c, stage.name):
        record = c.state.done(stage.name, key)
        if record is not None:
            return stage.load(c, record) if stage.load is not None else None
        value = stage.run(c, *(values[name] for name in stage.needs))
        names = stage.files(value) if callable(stage.files) else stage.files
        c.state.record(stage.name, key, names, **(stage.notes(c, value) if stage.notes is not None else {}))
        return value


class _stage:
    """``with _stage(lesson_run, "scores"):`` reports the stage (progress, log) and tags an error
    with the stage it happened in."""

    def __init__(self, context: LessonRun, name: str) -> None:
        self.context, self.name = context, name

    def __enter__(self) -> None:
        self.context.progress.stage(self.context.lesson.lesson_id, self.name)
        log.info("lesson %s: %s", self.context.lesson.lesson_id, self.name)

    def __exit__(self, kind, error, traceback) -> bool:
        if error is not None and isinstance(error, Exception) and not isinstance(error, StageError):
            raise StageError(self.name) from error
        return False


def stage_keys(lesson: LessonInput, settings: Settings, versions: Mapping[str, Any]) -> StageKeys:
    """Every stage's fingerprint, derived from :data:`STAGES`: its name, the code, the settings it
    declares and the fingerprints of the values it needs (a later stage's key so includes every
    earlier one it depends on)."""
    code = {"highlights": highlights.__version__, "code": code_fingerprint()}
    models = {k: v for k, v in versions.items() if k not in code}
    # The lessons file's row without where it was read (``source``: its row number, and for a
    # file in a bucket the temporary copy's path): a row moved, or read from a new copy, is
    # the same lesson.
    roots = {"recordings": input_fingerprint(lesson), "info": jsonable(replace(lesson.info, source=None)),
             "models": models}
    keys = StageKeys()
    for stage in STAGES:
        needed = [keys[name] if name in keys else roots[name] for name in stage.needs]
        keys[stage.name] = digest(stage.name, code, jsonable(stage.settings(settings)), needed)
    keys["overall"] = digest([keys[stage.name] for stage in STAGES])
    return keys


# --------------------------------------------------------------------------- timeline


def _plan(c: LessonRun, lesson: LessonInput) -> LessonPlan:
    """The lesson's plan: timeline and sample points. Cheap, so made again on a resume (the same
    plan ``highlights timeline`` prints); ``timeline.json`` is written for people and the records."""
    plan = plan_lesson(lesson, gap_tolerance_s=c.settings.gap_tolerance_s, fps=c.settings.fps)
    if plan.timeline is None:  # failed: a recording cannot be read
        raise LessonFailed(plan.reason or f"lesson {lesson.lesson_id}: a recording cannot be read")
    return plan


def _timeline(c: LessonRun, lesson: LessonInput) -> LessonPlan:
    plan = _plan(c, lesson)
    files.write_timeline(plan.timeline, c.folder)
    return plan


TIMELINE = Stage(
    "timeline", ("recordings",),
    settings=lambda s: {"gap_tolerance_s": s.gap_tolerance_s, "timezone": s.timezone, "fps": s.fps},
    files=(files.TIMELINE_FILE,), run=_timeline, load=lambda c, record: _plan(c, c.lesson),
)  # fmt: skip


# --------------------------------------------------------------------------- scores


def _scores(c: LessonRun, plan: LessonPlan, scorer: Any) -> FaceTable:
    # The plan's points, decoded on a thread of their own while scoring; closed on the way out
    # whatever happens (stops the decoder, restores the GIL switch interval).
    with contextlib.closing(prefetch(frames_at_points(plan.points))) as frames:
        table = _score_stream(c, frames, scorer)
    files.write_scores(table, c.folder / files.SCORES_FILE)
    return files.read_scores(c.folder / files.SCORES_FILE)  # later stages see exactly what a resume sees


def _score_stream(c: LessonRun, frames: Iterator[Any], scorer: Any) -> FaceTable:
    from highlights.stages.scores import score_frames  # torch: only where a lesson is scored

    scored = 0

    def on_frames(count: int) -> None:
        nonlocal scored
        scored += count
        c.progress.frames(c.lesson.lesson_id, scored, None)

    sizes: dict[int, tuple[int, int]] = {}

    def remember_sizes(stream: Iterable[Any]) -> Iterator[Any]:
        for frame in stream:  # the frame's size, for "is the face fully in the picture"
            sizes[int(frame.ref.index)] = tuple(frame.image.shape[:2])
            yield frame

    lookout = scorer.lookout() if callable(getattr(scorer, "lookout", None)) else None
    table = score_frames(remember_sizes(frames), scorer, batch_size=c.settings.score_batch_size,
                         progress=on_frames, keep=c.kept_frames, lookout=lookout)
    # Face tracks, then persons: pure steps after scoring (highlights.stages.tracks, .persons). The
    # face chips and the identity embeddings made of them stay in this function's memory.
    table = assign_tracks(table, sizes, c.settings.selection.tracks)
    if lookout is None:
        return table
    embedder = lookout.people.embedder
    return assign_persons(table, lookout.chips, embedder.embed_chips if embedder is not None else None,
                          c.settings.selection.persons)


SCORES = Stage(
    "scores", ("timeline", "models"),
    settings=lambda s: {"detection": s.detection, "tracks": s.selection.tracks, "persons": s.selection.persons},
    files=(files.SCORES_FILE,), run=_scores, load=lambda c, record: files.read_scores(c.folder / files.SCORES_FILE),
    notes=lambda c, table: {"frames": table.frame_count},
)  # fmt: skip


# --------------------------------------------------------------------------- analytics


def _analytics(c: LessonRun, table: FaceTable, plan: LessonPlan) -> None:
    s = c.settings
    analytics = lesson_analytics(c.lesson.lesson_id, table, plan.timeline, bucket_s=s.analytics_bucket_s,
                                 smile_threshold=s.selection.min_smile, options=s.analytics,
                                 tracks=s.selection.tracks, persons=s.selection.persons,
                                 student_age_group=s.selection.student_age_group)
    files.write_analytics(analytics, c.folder)


ANALYTICS = Stage(
    "analytics", ("scores", "timeline"),
    settings=lambda s: {"bucket_s": s.analytics_bucket_s, "options": s.analytics, "min_smile": s.selection.min_smile,
                        "tracks": s.selection.tracks, "persons": s.selection.persons,
                        "student_age_group": s.selection.student_age_group},
    files=(files.ANALYTICS_FILE, files.ANALYTICS_CSV), run=_analytics,
)  # fmt: skip


# --------------------------------------------------------------------------- selection


def _selection(c: LessonRun, table: FaceTable) -> Selection:
    selection = select_highlights(table, c.settings.selection)
    files.write_selection(selection, c.folder)
    return selection


def _whose_face(c: LessonRun, selection: Selection) -> dict[str, Any]:
    """Whose face the selection looked for, and whether the lessons file said so: a later rerun
    without the lesson's row (no ``--lessons``) must not quietly replace a highlight made with it
    (:mod:`highlights.lesson.flow`)."""
    return {"student_age_group": c.settings.selection.student_age_group,
            "lessons_row": c.lesson.info.source is not None,
            "sampled_frames": c.sampled_frames}  # fmt: skip


SELECTION = Stage(
    "selection", ("scores",), settings=lambda s: s.selection,
    files=(files.SELECTION_FILE,), run=_selection, load=lambda c, record: files.read_selection(c.folder),
    notes=_whose_face,
)  # fmt: skip


# --------------------------------------------------------------------------- gif


@dataclass(frozen=True)
class MadeGif:
    """The GIF stage's value, as ``stages.json`` records it: the file's name, what
    :func:`highlights.stages.gif.build_gif` reported (as JSON) and, where it was published, the
    object's URL (``s3://bucket/prefix/<lesson_id>/<name>``)."""

    name: str
    info: dict[str, Any] | None
    published: str | None = None

    def gif_info(self) -> GifInfo | None:
        """The recorded :class:`GifInfo` (fields this version knows), for the snippet's size."""
        if not isinstance(self.info, dict):
            return None
        known = {k: v for k, v in self.info.items() if k in GifInfo.__dataclass_fields__}
        if "path" in known:
            known["path"] = Path(known["path"])
        return GifInfo(**known)


def _gif(c: LessonRun, selection: Selection, plan: LessonPlan) -> MadeGif:
    # The name an earlier run drew, so a rebuilt GIF replaces the file sent emails link to.
    gif_name = c.state.previous_gif or public_gif_name(c.lesson.lesson_id)
    images = [GifFrame(_pick_image(plan.lesson, pick, c.kept_frames), tuple(pick.box)) for pick in selection.picks]
    gif_info = build_gif(images, c.folder / gif_name, c.settings.gif)
    return MadeGif(gif_name, jsonable(gif_info), _publish(c, gif_name))


def published_gif_url(publish: str, lesson_id: str, gif_name: str) -> str:
    """The object a lesson's GIF is published as: ``<publish>/<lesson_id>/<gif_name>``. The name
    holds 128 random bits, so the key cannot be guessed from the lesson id; the public URL
    (:func:`gif_url`) has the same shape under ``public_base_url``."""
    return objects.prefix_url(publish, lesson_id, gif_name)


def _publish(c: LessonRun, gif_name: str) -> str | None:
    """Upload the lesson's GIF where ``settings.publish`` says (None: not published). Before the
    snippet, result.json and the row are written (they come after this stage), so no row ever
    names a GIF that is not there; a failed upload fails the stage, and the lesson, with the
    object's error."""
    if not c.settings.publish:
        return None
    gif_url(c, MadeGif(gif_name, None))  # no public URL to link it with: fail before uploading
    url = published_gif_url(c.settings.publish, c.lesson.lesson_id, gif_name)
    info = objects.upload(url, c.folder / gif_name, content_type=objects.GIF_CONTENT_TYPE,
                          cache_control=objects.GIF_CACHE_CONTROL)
    log.info("lesson %s: GIF published (%d bytes)", c.lesson.lesson_id, info.size)
    return url


def _pick_image(resolved: LessonInput, pick: Pick, kept: Any) -> Any:
    """The full frame of a pick: kept from scoring where it was, else read from its recording."""
    image = kept.get(pick.ref.index) if kept is not None else None
    return image if image is not None else _read_pick(resolved, pick)


def _read_pick(resolved: LessonInput, pick: Pick) -> Any:
    """The full frame a pick was taken from, read again from its recording: the one of that file
    name that started ``offset_s`` before the frame's instant (two segments of a lesson may share
    a name in different folders; the artifacts keep only the name)."""
    ref = pick.ref
    recording = recording_of_frame(ref.source, ref.at, ref.offset_s, resolved.recordings)
    if recording is None:
        raise LessonFailed(f"the frame at {ref.t:g} s of a chosen moment cannot be placed in a student "
                           f"recording named {ref.source.name} (was the manifest changed?)")
    return read_frame_at(recording.path, ref.offset_s)


GIF = Stage(
    "gif", ("selection", "timeline"),
    # Publishing is part of the stage: a new target uploads again (a lesson published nowhere
    # keeps the key it always had).
    settings=lambda s: {"gif": s.gif, "publish": s.publish} if s.publish else s.gif,
    files=lambda gif: (gif.name,), run=_gif,
    load=lambda c, record: MadeGif(record["gif"], record.get("info"), record.get("published")),
    notes=lambda c, gif: {"gif": gif.name, "info": gif.info, "published": gif.published},
)  # fmt: skip


# --------------------------------------------------------------------------- snippet


def gif_url(c: LessonRun, gif: MadeGif) -> str:
    """Where the email's readers fetch the lesson's GIF: under ``public_base_url`` (where the
    output folder, or the publish prefix, is served), else its local file's URL."""
    if c.settings.publish and not c.settings.email.public_base_url:
        raise LessonFailed(f"the GIF is published to {c.settings.publish} but no public_base_url says where the "
                           "emails find it (--public-base-url)")
    return files.public_url(c.settings.email.public_base_url, c.lesson.lesson_id, gif.name, c.folder)


def _snippet(c: LessonRun, gif: MadeGif, info: Any) -> None:
    snippet = render_snippet(info, gif_url(c, gif), gif.gif_info(), c.settings.email,
                             student_age_group=c.settings.selection.student_age_group)
    files.write_snippet(snippet.html, snippet.text, c.folder)


SNIPPET = Stage(
    "snippet", ("gif", "info"),
    settings=lambda s: {"email": s.email, "student_age_group": s.selection.student_age_group},
    files=(files.SNIPPET_HTML, files.SNIPPET_TEXT), run=_snippet,
)  # fmt: skip


# --------------------------------------------------------------------------- report


def _report(c: LessonRun, plan: LessonPlan, table: FaceTable, selection: Selection, gif: MadeGif | None,
            info: Any) -> None:
    assert c.result is not None, "the flow sets the lesson's result before its report"
    s = c.settings
    html = render_report(c.result, plan.timeline, table, selection, info, smile_threshold=s.selection.min_smile,
                         templates_dir=s.email.templates_dir, analytics=s.analytics, track_options=s.selection.tracks,
                         person_options=s.selection.persons, student_age_group=s.selection.student_age_group)
    files.write_report(html, c.folder)


REPORT = Stage(
    "report", ("timeline", "scores", "selection", "gif", "info"),
    settings=lambda s: {"min_smile": s.selection.min_smile, "analytics": s.analytics, "tracks": s.selection.tracks,
                        "persons": s.selection.persons, "student_age_group": s.selection.student_age_group,
                        "templates": s.email.templates_dir, "public_base_url": s.email.public_base_url},
    files=(files.REPORT_FILE,), run=_report,
)  # fmt: skip


STAGES: tuple[Stage, ...] = (TIMELINE, SCORES, ANALYTICS, SELECTION, GIF, SNIPPET, REPORT)
"""Every stage, in the order :func:`highlights.lesson.flow.run_stages` runs them (the GIF and the
snippet only for a lesson with a highlight; after no lesson, only the report). A stage needs
only :data:`INPUTS` and stages before it."""


__all__ = [
    "INPUTS",
    "KEPT_FRAMES",
    "STAGES",
    "LessonFailed",
    "LessonRun",
    "MadeGif",
    "Progress",
    "Stage",
    "StageError",
    "StageKeys",
    "gif_url",
    "produce",
    "published_gif_url",
    "stage_keys",
]
