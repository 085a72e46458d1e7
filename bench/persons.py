"""Who is in the lesson: the whole job on lessons with a known cast, per-second truth, and the figures.

    nice -n 10 python bench/persons.py \\
        [--set report|tune|both] [--variants persons,webcam,plain] [--seeds 0,1] [--cache DIR]
        [--json FILE] [--recogniser child-face|column:NAME[=VALUE]|module:function] [--force]

The code under test is the ``highlights`` package that this interpreter imports (``PYTHONPATH``):
the job is run from it in a subprocess (``python -m highlights.cli run MANIFEST --lessons ...
--out DIR --workers 0``, the same interpreter and ``PYTHONPATH``), and its track judging is what
the figures use to call a face a child. Nothing here writes to a repository.

Lessons (built once, cached under ``--cache``, default ``~/.cache/highlights/bench-persons``):

- ``persons``: :mod:`person_lesson` (one FG-NET child all lesson, an LFW parent beside / alone /
  half in frame / by a shoulder only, a framed smiling face on the wall, a sibling, webcam
  conditions, a disconnect); truth from its ``truth.csv``.
- ``plain`` / ``webcam``: ``tests/real_face_lesson.py`` (UTKFace children, a different photo per
  segment, smiling parents; no poster, no sibling), to see that plain lessons get no worse. Taken
  from ``bench/tracks.py``'s cache (``~/.cache/highlights/bench-tracks/lessons``) when it has them
  (the same builder and seeds), otherwise built here.

Seeds: ``tune`` and ``report`` are disjoint (``persons``: :data:`person_lesson.SEEDS`; ``plain`` /
``webcam``: ``bench/tracks.py``'s). Never tune on the report seeds.

The job's outputs go to ``CACHE/runs/<code>/<variant>-<seed>`` (``<code>``: the checkout's folder
name and a hash of its path); the job skips a lesson whose code, models and inputs did not change,
so a rerun only re-reads. Figures, per variant, pooled over the set's lessons (seconds are the
job's sampled seconds, i.e. rows of ``scores.csv``; truth is the lesson's second ``round(t)``):

- **child recall**: of the seconds with the student in view (face or body), the share where the
  job recognised the student. Pluggable (``--recogniser``): ``child-face`` (today) = a face
  judged a child by its track (as the job's analytics and selection judge it) whose box centre
  lies in the student's face box (widened by a quarter; so neither the poster, a sibling nor the
  parent counts, and a student without a face in view is never recognised); ``column:NAME``
  (a future ``person``-style column: any row of the frame with NAME true, or NAME == VALUE);
  ``module:function`` (``function(frame_rows, truth_row) -> bool``). Also per kind of second and
  per webcam condition, each with **the student's face found** (a detected face, child or not,
  on the student's face box: what the detector alone gets; the rest of the loss is the age call).
- **child presence / adult presence error**: per lesson, |analytics.json ``child_presence`` -
  truth|, truth = share of sampled seconds with the student in view; the same for
  ``adult_presence``, truth = any adult in view by face, half face or shoulder. Mean and max.
- **parent chart error**: per minute bucket of analytics.csv, |``adult_share`` - true share of
  sampled seconds with an adult|; max over minutes (per lesson; mean and max over lessons); and
  minutes where ``adult_frames > 0`` disagrees with "an adult was in view that minute".
  **Overview parent chart error**: the dashboard's chart as the issue judges it
  (:func:`highlights.tools.dashboard.parent_presence_by_minute`: per minute of lesson, the share
  of the variant's lessons with ``adult_frames > 0``) against the share of lessons with an adult
  in view that minute; the largest difference over the minutes (0.05 is the issue's bound).
- **adult seen**: of the seconds with the parent by face / half face / shoulder, the share in
  which the job has a face judged adult (by its track) that is not on the poster (a diagnostic
  of today's faces-only job); **adult reported, none in view**: of the seconds with no adult in
  view, the share in which the job's frame counts an adult as its analytics do (the poster, a
  sibling or the student judged adult).
- **GIF fill** = GIF frames / min(9, smiling-alone moments), averaged over lessons;
  **precision** = picks within 1 s of a second with the student's face smiling / picks;
  **precision (student's face)** = of those, the pick's face is the student's (box centre in the
  student's box at that second).
- **picks with an adult** (face / half / shoulder within 1 s), **picks on the poster** (the
  chosen face's box centre inside the framed picture), **picks on a sibling** (its centre in the
  sibling's face box within 1 s): all must be 0. **Of them, GIF frame shows the adult**: the
  pick's crop (the square ``build_gif`` cuts, :func:`highlights.stages.gif.gif_square`) overlaps,
  in the pick's own second, the box of every pixel the parent is drawn on (face, hair, shoulder or
  arm; the truth's ``adult_drawn_box``; on webcam and plain lessons, whose truth this bench
  derives from their plan, the face box): whether an adult reached the GIF itself, not only its second.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))

import highlights

import support.person_lesson as pl

CODE = Path(highlights.__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE_ROOT = Path(os.environ.get("HIGHLIGHTS_CACHE") or Path.home() / ".cache" / "highlights")
REAL_SEEDS = {"tune": (10, 11), "report": (0, 1, 2)}  # bench/tracks.py's
VARIANTS = ("persons", "webcam", "plain")
BUILD_FPS = 2.0
EDGE_S = 1.0
MAX_FRAMES = 9
ADULT_VIEWS = ("face", "half", "shoulder")


# --------------------------------------------------------------------------- lessons and truth


@dataclass
class Lesson:
    """What the bench needs of a lesson of any variant: its files and per-second truth
    (rows as :data:`person_lesson.TRUTH_COLUMNS`, boxes as tuples or None)."""

    variant: str
    seed: int
    folder: Path
    manifest: Path
    lessons: Path
    lesson_id: str
    truth: dict[int, dict]
    moments: int  # smiling-alone moments of the student

    def near(self, t: float, test: Callable[[dict], bool], slack_s: float = EDGE_S) -> list[dict]:
        """Truth rows of the seconds within ``slack_s`` of ``t`` for which ``test`` holds, nearest first."""
        rows = [(abs(k - t), self.truth[k]) for k in range(int(np.floor(t - slack_s)), int(np.ceil(t + slack_s)) + 1)
                if k in self.truth and abs(k - t) <= slack_s + 1e-9]  # fmt: skip
        return [row for _, row in sorted(rows, key=lambda r: r[0]) if test(row)]


def persons_lesson(cache: Path, seed: int, force: bool = False) -> Lesson:
    folder = cache / "lessons" / f"persons-{seed}"
    truth = folder / "truth.csv"
    # A lesson cached by an older builder lacks truth columns added since: built again (the
    # builder is deterministic: the same frames, the new columns filled in).
    outdated = truth.is_file() and not set(pl.TRUTH_COLUMNS) <= set(truth.read_text(encoding="utf-8").partition("\n")[0].split(","))
    if force or outdated or not (folder / ".built").is_file():
        started = time.perf_counter()
        pl.build_person_lesson(SHARED_DATA, folder, seed=seed, fps=BUILD_FPS)
        (folder / ".built").write_text("ok")
        print(f"  built persons seed {seed} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    lesson = pl.read_person_lesson(folder)
    return Lesson("persons", seed, folder, lesson.manifest, lesson.lessons, lesson.lesson_id, lesson.truth,
                  len(lesson.smiling_alone_moments()))  # fmt: skip


def _box(cx: float, cy: float, face_px: float) -> tuple[float, float, float, float]:
    half = face_px / 2
    return (cx - half, cy - 1.15 * half, cx + half, cy + 1.25 * half)


def real_face_truth(segments, variant: str) -> dict[int, dict]:
    """Per-second truth of a ``real_face_lesson`` plan, in the persons lessons' terms (no poster,
    no sibling; the faces' positions from its ``_people`` layout at the whole second)."""
    from support.real_face_lesson import _people

    truth: dict[int, dict] = {}
    for index, segment in enumerate(segments):
        for t in segment.seconds():
            placed = list(_people(segment, [None, None], float(t), phase=index * 1.3)) if segment.kind not in ("offline", "nobody") else []
            boxes = [_box(cx, cy, px) for _, cx, cy, px, _ in placed]
            child = segment.kind in ("child_smiling", "child_neutral", "adult_beside")
            adult = {"adult_beside": "face", "adult_only": "face", "adult_half": "half"}.get(segment.kind, "")
            child_box = boxes[0] if child and boxes else None
            adult_box = boxes[-1] if adult and boxes else None
            smiling = segment.kind == "child_smiling" or (segment.kind == "adult_beside" and segment.faces[0].label == "smiling")
            truth[t] = {
                "segment": index, "kind": segment.kind, "condition": segment.condition,
                "offline": segment.kind == "offline", "student": child, "student_face": child,
                "student_smiling": bool(child and smiling), "student_box": child_box, "adult": adult,
                "adult_box": adult_box, "adult_drawn_box": adult_box, "sibling": False, "sibling_box": None, "poster": False,
                "poster_box": None, "poster_frame_box": None, "poster_visible": 0.0,
                "nobody": segment.kind in ("nobody", "offline"),
            }  # fmt: skip
    return truth


def real_lesson(cache: Path, variant: str, seed: int, force: bool = False) -> Lesson:
    from support.real_face_lesson import build_real_face_lesson, plan_segments

    segments = plan_segments(seed, variant)  # type: ignore[arg-type]
    folder = cache / "lessons" / f"{variant}-{seed}"
    shared = CACHE_ROOT / "bench-tracks" / "lessons" / f"{variant}-{seed}"
    if not force and not (folder / ".built").is_file() and (shared / ".built").is_file():
        folder = shared  # the same builder, seed and fps: bench/tracks.py built it already
    elif force or not (folder / ".built").is_file():
        started = time.perf_counter()
        lesson = build_real_face_lesson(SHARED_DATA, folder, seed=seed, variant=variant, fps=BUILD_FPS)  # type: ignore[arg-type]
        (folder / ".built").write_text(json.dumps({"lesson_id": lesson.lesson_id, "start": lesson.start.isoformat(),
                                                   "recordings": [list(r) for r in lesson.recordings]}))  # fmt: skip
        print(f"  built {variant} seed {seed} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    info = json.loads((folder / ".built").read_text())
    moments = sum(1 for s in segments if s.kind == "child_smiling")
    return Lesson(variant, seed, folder, folder / "manifest.csv", folder / "lessons.csv", info["lesson_id"],
                  real_face_truth(segments, variant), moments)  # fmt: skip


def lesson_for(cache: Path, variant: str, seed: int, force: bool = False) -> Lesson:
    return persons_lesson(cache, seed, force) if variant == "persons" else real_lesson(cache, variant, seed, force)


# --------------------------------------------------------------------------- running the job


def code_tag() -> str:
    return f"{CODE.name}-{hashlib.sha256(str(CODE).encode()).hexdigest()[:8]}"


def run_job(cache: Path, lesson: Lesson, force: bool = False) -> Path:
    """The job's output folder of the lesson (the whole job, run here unless it is up to date)."""
    out = cache / "runs" / code_tag() / f"{lesson.variant}-{lesson.seed}"
    command = [sys.executable, "-m", "highlights.cli", "run", str(lesson.manifest), "--lessons", str(lesson.lessons),
               "--out", str(out), "--workers", "0", "--no-progress"]  # fmt: skip
    if force:
        command.append("--force")
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode not in (0,):
        print(done.stdout[-3000:], file=sys.stderr)
        print(f"  the job exited {done.returncode} on {lesson.variant} seed {lesson.seed}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    if elapsed > 5:
        print(f"  ran the job on {lesson.variant} seed {lesson.seed} in {elapsed:.0f} s", file=sys.stderr)
    return out / lesson.lesson_id


# --------------------------------------------------------------------------- what the job says


def judge(out: Path):
    """The job's own decisions on its scores (:func:`highlights.stages.persons.judge_lesson`, the
    default settings): the judged table, with ``track_child`` read as "is the GIF's subject" (the
    student judged a child, or every child where no child dominates), and the per-frame table
    the analytics count."""
    from highlights.config import Settings
    from highlights.lesson.folder import read_scores
    from highlights.stages.analytics import frame_table
    from highlights.stages.persons import judge_lesson

    settings = Settings()
    judged = judge_lesson(read_scores(out / "scores.csv"), settings.selection.persons, settings.selection.tracks)
    table = judged.table.copy()
    table["track_child"] = table["subject"]
    return table, frame_table(table, settings.selection.min_smile, judged)


def _centre(row) -> tuple[float, float]:
    return (float(row["x1"]) + float(row["x2"])) / 2, (float(row["y1"]) + float(row["y2"])) / 2


def _inside(point: tuple[float, float], box, widen: float = 0.0) -> bool:
    if box is None:
        return False
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * widen / 2, (y2 - y1) * widen / 2
    return x1 - dx <= point[0] <= x2 + dx and y1 - dy <= point[1] <= y2 + dy


def child_face_recogniser(rows: pd.DataFrame, truth: dict) -> bool:
    """The job recognises the student: the GIF's subject (the student judged a child) on the
    student's face, or, with the student's face out of view, the student's body alone."""
    if rows.empty:
        return False
    if not truth["student_face"]:
        return bool(rows["student_body"].any()) if "student_body" in rows.columns else False
    children = rows[(rows["face"] >= 0) & rows["track_child"].astype(bool)]
    return any(_inside(_centre(r), truth["student_box"], widen=0.25) for _, r in children.iterrows())


def recogniser_from(spec: str) -> Callable[[pd.DataFrame, dict], bool]:
    if spec == "child-face":
        return child_face_recogniser
    if spec.startswith("column:"):
        name, _, value = spec[len("column:"):].partition("=")

        def by_column(rows: pd.DataFrame, truth: dict) -> bool:
            if name not in rows.columns or rows.empty:
                return False
            column = rows[name]
            if value:
                return bool((column.astype(str) == value).any())
            return bool(column.astype(str).str.lower().isin(["true", "1", "1.0"]).any())

        return by_column
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


# --------------------------------------------------------------------------- figures


@dataclass
class Figures:
    lessons: int = 0
    statuses: dict = field(default_factory=dict)
    student_s: int = 0
    student_hit: int = 0
    face_s: int = 0  # seconds with the student's face in view
    face_found: int = 0  # of them, a detected face on the student's face
    by_kind: dict = field(default_factory=dict)  # kind -> [seconds with the student, recognised]
    by_condition: dict = field(default_factory=dict)
    child_presence_err: list = field(default_factory=list)
    adult_presence_err: list = field(default_factory=list)
    chart_err: list = field(default_factory=list)
    chart_minutes_wrong: int = 0
    chart_minutes: int = 0
    overview: dict = field(default_factory=dict)  # minute -> [lessons reported, lessons true, lessons]
    adult_seen: dict = field(default_factory=dict)  # view -> [seconds, seen]
    no_adult_s: int = 0
    no_adult_reported: int = 0
    fills: list = field(default_factory=list)
    picks: int = 0
    picks_smiling: int = 0
    picks_student: int = 0
    picks_adult: dict = field(default_factory=dict)
    picks_adult_shown: dict = field(default_factory=dict)  # view -> GIF frames whose crop shows the adult
    picks_poster: int = 0
    picks_sibling: int = 0
    per_lesson: list = field(default_factory=list)

    def row(self) -> dict:
        div = lambda a, b: round(a / b, 3) if b else None
        mean = lambda v: round(float(np.mean(v)), 3) if v else None
        biggest = lambda v: round(float(np.max(v)), 3) if v else None
        seen = {k: self.adult_seen.get(k, [0, 0]) for k in ADULT_VIEWS}
        return {
            "lessons": self.lessons,
            "status": " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items())),
            "child recall": div(self.student_hit, self.student_s),
            "student seconds": self.student_s,
            "student's face found (detector)": div(self.face_found, self.face_s),
            "child presence |err| mean": mean(self.child_presence_err),
            "child presence |err| max": biggest(self.child_presence_err),
            "adult presence |err| mean": mean(self.adult_presence_err),
            "adult presence |err| max": biggest(self.adult_presence_err),
            "parent chart max |err| (mean over lessons)": mean(self.chart_err),
            "parent chart max |err| (worst lesson)": biggest(self.chart_err),
            "parent chart minutes wrong": f"{self.chart_minutes_wrong}/{self.chart_minutes}",
            "overview parent chart max |err| (share of lessons)": biggest(
                [abs(r - t) / n for r, t, n in self.overview.values()]
            ),
            "adult seen: face/half/shoulder": "/".join(
                "-" if n == 0 else f"{k / n:.2f}" for n, k in seen.values()
            ),
            "adult reported, none in view": div(self.no_adult_reported, self.no_adult_s),
            "GIF fill": mean(self.fills),
            "GIF frames": f"{self.picks} in {self.lessons}",
            "precision": div(self.picks_smiling, self.picks),
            "precision (student's face)": div(self.picks_student, self.picks),
            "picks with an adult: face/half/shoulder": "/".join(str(self.picks_adult.get(k, 0)) for k in ADULT_VIEWS),
            "  of them, GIF frame shows the adult": "/".join(str(self.picks_adult_shown.get(k, 0)) for k in ADULT_VIEWS),
            "picks on the poster": self.picks_poster,
            "picks on a sibling": self.picks_sibling,
        }

    def breakdown(self) -> dict:
        table = lambda d: {
            k: {"seconds": n, "recall": round(h / n, 3) if n else None, "face found": round(f / n, 3) if n else None}
            for k, (n, h, f) in sorted(d.items())
        }
        return {"by kind": table(self.by_kind), "by condition": table(self.by_condition)}


def evaluate(lesson: Lesson, out: Path, figures: Figures, recognise: Callable) -> None:
    result = json.loads((out / "result.json").read_text())
    figures.lessons += 1
    figures.statuses[result["status"]] = figures.statuses.get(result["status"], 0) + 1
    table, frames = judge(out)
    frames = frames.set_index("t")
    by_frame = {t: g for t, g in table.groupby("t")}
    sampled = sorted(float(t) for t in table["t"].unique())
    empty = table.iloc[0:0]

    # Per second: the student recognised, adults seen.
    truth_child, truth_adult, seconds = [], [], []
    for t in sampled:
        k = int(round(t))
        truth = lesson.truth.get(k)
        if truth is None or truth["offline"]:
            continue
        seconds.append(t)
        truth_child.append(truth["student"])
        truth_adult.append(bool(truth["adult"]))
        reported_adult = bool(frames.loc[t, "adult"]) if t in frames.index else False
        rows = by_frame.get(t, empty)
        adult_face = any(r["face"] >= 0 and r["adult_else"] and not _inside(_centre(r), truth["poster_frame_box"])
                         for _, r in rows.iterrows())  # fmt: skip
        if truth["student"]:
            hit = bool(recognise(rows, truth))
            found = bool(truth["student_face"]) and any(
                _inside(_centre(r), truth["student_box"], widen=0.25) for _, r in rows.iterrows() if r["face"] >= 0
            )
            figures.student_s += 1
            figures.student_hit += hit
            figures.face_s += bool(truth["student_face"])
            figures.face_found += found
            for table, key in ((figures.by_kind, truth["kind"]), (figures.by_condition, truth["condition"])):
                tally = table.setdefault(key, [0, 0, 0])
                tally[0] += 1
                tally[1] += hit
                tally[2] += found
        if truth["adult"]:
            tally = figures.adult_seen.setdefault(truth["adult"], [0, 0])
            tally[0] += 1
            tally[1] += adult_face
        else:
            figures.no_adult_s += 1
            figures.no_adult_reported += reported_adult

    # Presence, lesson-wide and per minute.
    analytics = json.loads((out / "analytics.json").read_text())
    summary = analytics.get("summary", {})
    true_child = float(np.mean(truth_child)) if truth_child else 0.0
    true_adult = float(np.mean(truth_adult)) if truth_adult else 0.0
    lesson_row = {"variant": lesson.variant, "seed": lesson.seed, "status": result["status"],
                  "child_presence": summary.get("child_presence"), "child_presence_truth": round(true_child, 3),
                  "adult_presence": summary.get("adult_presence"), "adult_presence_truth": round(true_adult, 3)}  # fmt: skip
    if summary.get("child_presence") is not None:
        figures.child_presence_err.append(abs(summary["child_presence"] - true_child))
    if summary.get("adult_presence") is not None:
        figures.adult_presence_err.append(abs(summary["adult_presence"] - true_adult))
    series = pd.read_csv(out / "analytics.csv")
    worst = 0.0
    truth_by_t = dict(zip(seconds, truth_adult))
    for _, bucket in series.iterrows():
        inside = [a for t, a in truth_by_t.items() if bucket["start_s"] <= t < bucket["end_s"]]
        if not inside or "adult_frames" not in series.columns:
            continue
        frames_n = float(bucket["frames"]) or 1.0
        reported = float(bucket["adult_share"]) if not pd.isna(bucket.get("adult_share")) else float(bucket["adult_frames"]) / frames_n
        worst = max(worst, abs(reported - float(np.mean(inside))))
        figures.chart_minutes += 1
        figures.chart_minutes_wrong += (float(bucket["adult_frames"]) > 0) != any(inside)
        minute = figures.overview.setdefault(int(bucket["bucket"]), [0, 0, 0])
        minute[0] += float(bucket["adult_frames"]) > 0
        minute[1] += any(inside)
        minute[2] += 1
    figures.chart_err.append(worst)
    lesson_row["chart_max_err"] = round(worst, 3)

    # The GIF.
    selection = json.loads((out / "selection.json").read_text())
    picks = selection.get("picks", [])
    figures.fills.append(len(picks) / min(MAX_FRAMES, lesson.moments))
    figures.picks += len(picks)
    from highlights.core.boxes import box_cover
    from highlights.stages.gif import GifOptions, crop_side, gif_square

    # The GIF's frames as build_gif cuts them: one square side for all, each centred on its face.
    side = crop_side([SimpleNamespace(box=p["box"]) for p in picks], GifOptions().margin) if picks else 0
    for pick in picks:
        t = float(pick["t"])
        box = pick["box"]
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        smiling = lesson.near(t, lambda r: r["student_smiling"])
        figures.picks_smiling += bool(smiling)
        figures.picks_student += any(_inside(centre, r["student_box"], widen=0.25) for r in smiling)
        for view in ADULT_VIEWS:
            if lesson.near(t, lambda r, v=view: r["adult"] == v):
                figures.picks_adult[view] = figures.picks_adult.get(view, 0) + 1
        at = lesson.truth.get(int(round(t)))  # the pick's own frame: does its crop show the adult?
        if at and at["adult"] and at["adult_drawn_box"] is not None:
            square = gif_square(box, side, *pl.SIZE)  # the lessons' camera: width, height
            if box_cover(np.array([square], float), np.array([at["adult_drawn_box"]], float))[0, 0] > 0:
                figures.picks_adult_shown[at["adult"]] = figures.picks_adult_shown.get(at["adult"], 0) + 1
        figures.picks_poster += bool(at and _inside(centre, at["poster_frame_box"]))
        figures.picks_sibling += any(_inside(centre, r["sibling_box"], widen=0.25) for r in lesson.near(t, lambda r: r["sibling"]))
    lesson_row["picks"] = len(picks)
    figures.per_lesson.append(lesson_row)


# --------------------------------------------------------------------------- main


def seeds_of(variant: str, name: str) -> tuple[int, ...]:
    return pl.SEEDS[name] if variant == "persons" else REAL_SEEDS[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("report", "tune", "both"), default="report")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default=None, help="comma-separated seeds instead of the set's")
    parser.add_argument("--cache", default=None, help="lessons and job outputs (never a repository)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--recogniser", default="child-face",
                        help="child-face (today), column:NAME[=VALUE], or module:function")
    parser.add_argument("--force", action="store_true", help="rerun the job (--force) on every lesson")
    parser.add_argument("--rebuild", action="store_true", help="build the lessons again")
    args = parser.parse_args()
    if not (SHARED_DATA / "README.md").is_file():
        sys.exit(f"needs the shared data at {SHARED_DATA}")
    cache = Path(args.cache) if args.cache else CACHE_ROOT / "bench-persons"
    recognise = recogniser_from(args.recogniser)
    sets = ("tune", "report") if args.set == "both" else (args.set,)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    out: dict = {}
    details: dict = {}
    for name in sets:
        for variant in variants:
            figures = Figures()
            seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else seeds_of(variant, name)
            for seed in seeds:
                lesson = lesson_for(cache, variant, seed, force=args.rebuild)
                folder = run_job(cache, lesson, force=args.force)
                evaluate(lesson, folder, figures, recognise)
            key = f"{name}/{variant}"
            out[key] = {"seeds": ",".join(map(str, seeds)), **figures.row()}
            details[key] = {**figures.breakdown(), "lessons": figures.per_lesson}
    columns = list(out)
    width = 44
    cell = max([17] + [len(str(v)) + 2 for c in columns for v in out[c].values()])
    print(f"code: {CODE}   recogniser: {args.recogniser}")
    print(f"{'':{width}s}" + "".join(f"{c:>{cell}s}" for c in columns))
    for key in out[columns[0]]:
        cells = []
        for c in columns:
            value = out[c][key]
            text = f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)
            cells.append(f"{text:>{cell}s}")
        print(f"{key:{width}s}" + "".join(cells))
    for key, detail in details.items():
        print(f"\n{key}: child recall [student's face found] (seconds) by kind of second / by condition")
        for part in ("by kind", "by condition"):
            cells = "  ".join(f"{k} {v['recall']:.2f} [{v['face found']:.2f}] ({v['seconds']})"
                              for k, v in detail[part].items() if v["seconds"])  # fmt: skip
            print(f"  {part}: {cells}")
        for row in detail["lessons"]:
            print(f"  seed {row['seed']}: {row['status']}, child presence {row['child_presence']} (true {row['child_presence_truth']}),"
                  f" adult presence {row['adult_presence']} (true {row['adult_presence_truth']}),"
                  f" chart max err {row['chart_max_err']}, {row['picks']} picks")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"code": str(CODE), "recogniser": args.recogniser, "figures": out,
                                               "details": details}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
