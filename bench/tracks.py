"""How well the job finds the child's smiling moments on lessons of real faces, plain and webcam-like.

    nice -n 10 python bench/tracks.py [--set report|tune|both] [--cache DIR] [--json FILE]
                                      [--age-weights FILE.pt] [--adult-tracks]

Builds the lessons of ``tests/support/real_face_lesson.py`` from the labelled photos in ``../shared/data``
(never committed): the plain variant and the webcam-like one (dim and backlit rooms, colour
casts, faces cut by the frame edge, small faces, motion blur, squeezed faces, heavy
compression; a smiling parent beside a neutral child, leaning in alone, half in the frame), one
lesson per seed. The recordings (VP8 WebM at 2 fps, as a browser writes them) and their scores
tables (decoded and scored exactly as the pipeline's scores stage does it) are cached under
``--cache`` (default ``~/.cache/highlights/bench-tracks``, never the repository), keyed by seed,
variant and model versions; a rerun only reselects, in seconds.

Two disjoint sets of seeds: ``tune`` (what thresholds and windows were tuned on) and ``report``
(what the README and the issue quote). Never tune on the report seeds.

Prints per variant (pooled over the set's lessons):

- in seconds where the child is alone in the picture (smiling or neutral; the first second of a
  segment is left out, its frame may be the previous segment's): a face found, judged a child;
  **child recall** = judged a child;
- in seconds where the child smiles alone: a face found, judged a child, smile passing
  ``min_smile``, both (**smile recall** = smile passes);
- **GIF fill** = GIF frames / min(9, distinct smiling-alone moments), averaged over lessons;
- **precision** = picks inside a smiling-child segment (1 s allowance at its edges) / picks;
- **frames with an adult**: picks within 1 s of a second with a parent beside the child, alone,
  or half in frame (must be 0);
- **adult faces called child** (per frame) and **adult tracks called child** (per track, where
  the job has tracks): the parent's faces are known from the segment and the position (beside
  the child the parent is on the right).

Each lesson: 300-340 sampled frames; building one takes 1-2 min, scoring 30-60 s on the 2-core
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from highlights.stages.selection import SelectionOptions, select_highlights

from support.real_face_lesson import (
    ADULT_KINDS,
    SIZE,
    RealFaceLesson,
    build_real_face_lesson,
    plan_segments,
)

SHARED_DATA = Path(os.environ.get("HIGHLIGHTS_SHARED_DATA", ROOT.parent / "shared" / "data"))
SEEDS = {"tune": (10, 11), "report": (0, 1, 2)}
VARIANTS = ("plain", "webcam")
BUILD_FPS = 2.0
EDGE_S = 1.0


def cache_root(given: str | None) -> Path:
    if given:
        return Path(given)
    return Path(os.environ.get("HIGHLIGHTS_CACHE") or Path.home() / ".cache" / "highlights") / "bench-tracks"


def lesson_for(cache: Path, variant: str, seed: int) -> RealFaceLesson:
    """The cached lesson (built once: the recordings are what the pipeline would read)."""
    folder = cache / "lessons" / f"{variant}-{seed}"
    done = folder / ".built"
    if done.is_file():
        segments = plan_segments(seed, variant)  # type: ignore[arg-type]
        info = json.loads(done.read_text())
        return RealFaceLesson(
            folder, folder / "manifest.csv", folder / "lessons.csv", info["lesson_id"], pd.Timestamp(info["start"]).to_pydatetime(),
            segments[-1].end_s, segments, tuple(tuple(r) for r in info["recordings"]), variant, BUILD_FPS,  # type: ignore[arg-type]
        )
    started = time.perf_counter()
    lesson = build_real_face_lesson(SHARED_DATA, folder, seed=seed, variant=variant, fps=BUILD_FPS)  # type: ignore[arg-type]
    done.write_text(json.dumps({"lesson_id": lesson.lesson_id, "start": lesson.start.isoformat(),
                                "recordings": [list(r) for r in lesson.recordings]}))  # fmt: skip
    print(f"  built {variant} seed {seed} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return lesson


_SCORER = None
AGE_WEIGHTS: Path | None = None


def _scorer():
    """The job's scorer, once per run: the shipped models, or ``--age-weights`` (a candidate)."""
    global _SCORER
    if _SCORER is None:
        from highlights.config import Settings
        from highlights.lesson.scorer import load_scorer

        _SCORER = load_scorer(Settings(age_weights=AGE_WEIGHTS))
    return _SCORER


def scores_for(cache: Path, lesson: RealFaceLesson, variant: str, seed: int) -> pd.DataFrame:
    """The lesson's scores table as the pipeline's scores stage makes it (cached per model version)."""
    from highlights.config import Settings
    from highlights.lesson.folder import read_scores, write_scores
    from highlights.lesson.resume import digest

    settings = Settings()
    scorer = _scorer()
    key = digest(scorer.versions, settings.fps)[:12]
    path = cache / "scores" / f"{variant}-{seed}-{key}.csv"
    if not path.is_file():
        from highlights.inputs.manifest import read_manifest
        from highlights.stages.scores import score_frames
        from highlights.stages.timeline import plan_lesson, sample_frames

        started = time.perf_counter()
        entry = read_manifest(lesson.manifest, lessons_path=lesson.lessons).lessons[lesson.lesson_id]
        plan = plan_lesson(entry, gap_tolerance_s=settings.gap_tolerance_s, fps=settings.fps)
        assert plan.timeline is not None and plan.lesson is not None, plan.reason
        scores = score_frames(sample_frames(plan.lesson, plan.timeline, fps=settings.fps), scorer)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scores(scores, path)
        print(f"  scored {variant} seed {seed} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return read_scores(path).data


# --------------------------------------------------------------------------- truth and figures


def face_truth(lesson: RealFaceLesson, faces: pd.DataFrame) -> pd.Series:
    """'child', 'adult' or 'none' (a face where nobody is) for each face row."""
    out = []
    for t, x1, x2 in zip(faces["t"], faces["x1"], faces["x2"]):
        kind = lesson.kind_at(t)
        if kind in ("adult_only", "adult_half"):
            out.append("adult")
        elif kind == "adult_beside":
            out.append("adult" if (x1 + x2) / 2 > SIZE[0] / 2 else "child")
        elif kind in ("child_smiling", "child_neutral"):
            out.append("child")
        else:
            out.append("none")
    return pd.Series(out, index=faces.index)


def decisions(scores: pd.DataFrame, options: SelectionOptions) -> tuple[pd.DataFrame, list]:
    """Per face row: the job's child decision and smile value, and its tracks (if it has any).

    Uses ``highlights.stages.tracks`` where it exists (the track's decision and the smoothed smile),
    otherwise each frame's own ``is_child`` and ``smile_prob`` (the job before tracks)."""
    faces = scores[scores["face"] >= 0].copy()
    try:
        from highlights.stages import tracks as tracking
    except ImportError:
        faces["child"] = faces["is_child"].astype(bool)
        faces["smile"] = faces["smile_prob"]
        faces["track"] = -1
        return faces, []
    judged = tracking.judge_faces(scores, tracking.TrackOptions.from_selection(options))
    judged = judged[judged["face"] >= 0]
    faces["child"] = judged["track_child"].astype(bool).to_numpy()
    faces["smile"] = judged["track_smile"].to_numpy()
    faces["track"] = judged["track"].to_numpy()
    return faces, tracking.tracks_of(judged)


@dataclass
class Figures:
    lessons: int = 0
    alone_s: int = 0
    alone_found: int = 0
    alone_child: int = 0
    smiling_s: int = 0
    smiling_found: int = 0
    smiling_child: int = 0
    smiling_smile: int = 0
    smiling_both: int = 0
    fills: tuple = ()
    picks: int = 0
    picks_right: int = 0
    picks_adult: dict | None = None
    adult_faces: int = 0
    adult_faces_child: int = 0
    adult_tracks: int = 0
    adult_tracks_child: int = 0
    tracks: int = 0
    by_condition: dict = field(default_factory=dict)
    """Child-alone seconds per webcam condition: ``condition -> [seconds, face found, judged child]``."""

    def conditions(self) -> dict:
        """Where child recall is lost, per webcam condition of the segment: the share of the
        child-alone seconds with a face found, and judged a child."""
        return {
            condition: {"seconds": n, "face found": round(found / n, 3), "judged child": round(child / n, 3)}
            for condition, (n, found, child) in sorted(self.by_condition.items())
        }

    def row(self) -> dict:
        div = lambda a, b: a / b if b else float("nan")
        return {
            "lessons": self.lessons,
            "child alone: face found": div(self.alone_found, self.alone_s),
            "child alone: judged child (child recall)": div(self.alone_child, self.alone_s),
            "smiling alone: face found": div(self.smiling_found, self.smiling_s),
            "smiling alone: judged child": div(self.smiling_child, self.smiling_s),
            "smiling alone: smile passes (smile recall)": div(self.smiling_smile, self.smiling_s),
            "smiling alone: both": div(self.smiling_both, self.smiling_s),
            "GIF fill": float(np.mean(self.fills)) if self.fills else float("nan"),
            "GIF frames": f"{self.picks} in {self.lessons} lessons",
            "precision": div(self.picks_right, self.picks),
            "frames with an adult (beside/alone/half)": "/".join(str((self.picks_adult or {}).get(k, 0)) for k in ADULT_KINDS),
            "adult faces called child": div(self.adult_faces_child, self.adult_faces),
            "adult tracks called child": f"{self.adult_tracks_child}/{self.adult_tracks}" if self.tracks else "n/a (no tracks)",
        }


def evaluate(lesson: RealFaceLesson, scores: pd.DataFrame, figures: Figures, options: SelectionOptions) -> None:
    selection = select_highlights(scores, options)
    faces, tracks = decisions(scores, options)
    faces["truth"] = face_truth(lesson, faces)
    figures.lessons += 1

    def inner(t: float) -> bool:
        return lesson.kind_at(t - 1) == lesson.kind_at(t)

    seconds = sorted(scores["t"].unique())
    by_t = {t: g for t, g in faces.groupby("t")}
    for t in seconds:
        kind = lesson.kind_at(t)
        if kind not in ("child_smiling", "child_neutral") or not inner(t):
            continue
        group = by_t.get(t)
        found = group is not None and len(group) > 0
        child_rows = group[group["child"]] if found else None
        is_child = found and len(child_rows) > 0
        figures.alone_s += 1
        figures.alone_found += found
        figures.alone_child += is_child
        tally = figures.by_condition.setdefault(str(lesson.condition_at(t)), [0, 0, 0])
        tally[0], tally[1], tally[2] = tally[0] + 1, tally[1] + found, tally[2] + is_child
        if kind == "child_smiling":
            smile = found and bool((group["smile"] >= options.min_smile).any())
            both = is_child and bool((child_rows["smile"] >= options.min_smile).any())
            figures.smiling_s += 1
            figures.smiling_found += found
            figures.smiling_child += is_child
            figures.smiling_smile += smile
            figures.smiling_both += both

    picks = [p.ref.t for p in selection.picks]
    figures.fills = (*figures.fills, len(picks) / min(options.max_frames, len(lesson.moments())))
    figures.picks += len(picks)
    figures.picks_right += sum(lesson.near(t, "child_smiling", EDGE_S) for t in picks)
    adult = dict(figures.picks_adult or {})
    for kind in ADULT_KINDS:
        adult[kind] = adult.get(kind, 0) + sum(lesson.near(t, kind, EDGE_S) for t in picks)
    figures.picks_adult = adult

    adults = faces[faces["truth"] == "adult"]
    figures.adult_faces += len(adults)
    figures.adult_faces_child += int(adults["child"].sum())
    if tracks:
        figures.tracks += len(tracks)
        truth = faces.groupby("track")["truth"].agg(lambda v: v.value_counts().idxmax())
        child_of = faces.groupby("track")["child"].first()
        adult_ids = [k for k, v in truth.items() if v == "adult"]
        figures.adult_tracks += len(adult_ids)
        figures.adult_tracks_child += int(sum(bool(child_of[k]) for k in adult_ids))


# --------------------------------------------------------------------------- adult tracks


ADULT_TRACK_FRAMES = 5
PARENT_NAMES = ("Afton_Smith", "Alicia_Witt", "Alistair_MacDonald", "Andre_Smith")  # in the lessons


def adult_track_faces(cache: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Webcam-like tracks of adults the age model never trained on: the LFW expression set's
    people with 4 photos or more (the parents of the lessons left out), one track each of
    ``ADULT_TRACK_FRAMES`` seconds, each second a photo of that person (cycling), all under one
    condition drawn per track (:data:`CONDITIONS`, plain included), rendered like the lesson's
    frames, and the person (the largest face) found by the job's detector. ``track`` = the
    person; ``half`` = ``tune`` or ``report`` (a seeded hash of the name).

    What costs time here (rendering 2,900 frames and MTCNN on them: ~15 min on the 2-core
    machine) does not depend on the face models, so it is cached apart from them: the face rows
    and each face's 64x64 model input (the recipe's crop, exactly what the scorer feeds the
    models); :func:`adult_track_scores` then applies whichever models are loaded in seconds.
    The cache is keyed by the detector's version and holds crops of LFW photos: it lives under
    ``--cache``, never in the repository."""
    import hashlib

    from highlights.lesson.resume import digest
    from highlights.models.preprocess import crop_square, normalise_face, to_gray

    from support.real_face_lesson import CONDITIONS, FaceImage, Segment, render_student

    scorer = _scorer()
    key = digest(scorer.versions["detector"], ADULT_TRACK_FRAMES, "v2")[:12]
    path = cache / "adult-tracks" / f"lfw-faces-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            table = pd.DataFrame({name[4:]: saved[name] for name in saved.files if name.startswith("col_")})
            return table, saved["inputs"]
    labels = pd.read_csv(SHARED_DATA / "faces" / "smile" / "lfw_expressions" / "labels.csv")
    labels = labels.dropna(subset=["identity"]).drop_duplicates("file")
    counts = labels["identity"].value_counts()
    people = sorted(p for p in counts.index[counts >= 4] if p not in PARENT_NAMES)
    rng = np.random.default_rng(7)
    rows: list[dict] = []
    inputs: list[np.ndarray] = []
    started = time.perf_counter()
    for number, person in enumerate(people):
        files = labels.loc[labels["identity"] == person, "file"].tolist()
        chosen = [files[i] for i in rng.permutation(len(files))[:ADULT_TRACK_FRAMES]]
        condition = CONDITIONS[int(rng.integers(0, len(CONDITIONS)))]
        segments = tuple(
            Segment("child_neutral", k, k + 1, (FaceImage("smile/lfw_expressions", chosen[k % len(chosen)], "adult"),), condition)
            for k in range(ADULT_TRACK_FRAMES)
        )
        images = list(render_student(segments, SHARED_DATA, 0, ADULT_TRACK_FRAMES, seed=number, fps=1))
        found = scorer.score_images(images)
        half = "tune" if int(hashlib.sha256(person.encode()).hexdigest(), 16) % 2 == 0 else "report"
        for k, faces in enumerate(found):
            for face in faces[:1]:  # the person (the largest face)
                x1, y1, x2, y2 = face.box
                inputs.append(normalise_face(to_gray(crop_square(images[k], face.box))))
                rows.append({
                    "frame": number * 100 + k, "t": float(number * 100 + k), "face": 0,
                    "x1": x1, "y1": y1, "x2": x2, "y2": y2, "det_prob": face.det_prob,
                    "sharpness": face.sharpness, "brightness": face.brightness, "crop_hash": face.crop_hash,
                    "track": number, "in_frame": np.nan, "half": half, "condition": condition,
                })  # fmt: skip
        if number % 50 == 49:
            print(f"  adult tracks: {number + 1}/{len(people)} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    stacked = np.stack(inputs) if inputs else np.zeros((0, 64, 64), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    columns = {  # text columns as fixed-width strings: the cache loads without pickle
        f"col_{c}": table[c].to_numpy() if pd.api.types.is_numeric_dtype(table[c]) else table[c].astype(str).to_numpy(dtype=str)
        for c in table.columns
    }
    np.savez_compressed(tmp, inputs=stacked, **columns)
    os.replace(tmp, path)
    return table, stacked


def adult_track_scores(cache: Path) -> pd.DataFrame:
    """The adult tracks (:func:`adult_track_faces`) scored by the loaded models, as the scorer
    does it: ``child_prob``, ``smile_prob``, and ``is_child`` at the age model's threshold."""
    import torch

    from highlights.models.preprocess import to_tensor_batch

    scorer = _scorer()
    table, inputs = adult_track_faces(cache)
    table = table.copy()
    child, smile = [], []
    with torch.inference_mode():
        for start in range(0, len(inputs), 256):
            batch = to_tensor_batch(list(inputs[start : start + 256]))
            child.append(scorer.age_model.probabilities(batch).numpy())
            smile.append(scorer.smile_model.probabilities(batch).numpy())
    table["child_prob"] = np.concatenate(child) if child else np.zeros(0)
    table["smile_prob"] = np.concatenate(smile) if smile else np.zeros(0)
    table["is_child"] = table["child_prob"] >= scorer.age_model.threshold
    return table


def adult_track_figures(cache: Path, options: SelectionOptions) -> dict:
    """Share of adult tracks called child, per half, at the configured threshold, and the lowest
    threshold that keeps the tune half at or under 1% (the one to configure)."""
    from dataclasses import replace

    from highlights.stages import tracks as tracking

    table = adult_track_scores(cache)
    out: dict = {"people": int(table["track"].nunique()), "frames": int(len(table))}

    def called_child(threshold: float, half: str) -> tuple[int, int]:
        part = table[table["half"] == half]
        judged = tracking.judge_faces(part, replace(options.tracks, child_threshold=threshold))
        per_track = judged.groupby("track")["track_child"].first()
        return int(per_track.sum()), int(len(per_track))

    grid = np.round(np.arange(0.30, 0.99, 0.01), 2)
    chosen = next((float(t) for t in grid if called_child(float(t), "tune")[0] <= 0.01 * called_child(float(t), "tune")[1]), 0.99)
    out["lowest threshold with <= 1% (tune half)"] = chosen
    for half in ("tune", "report"):
        k, n = called_child(options.tracks.child_threshold, half)
        out[f"{half} half at {options.tracks.child_threshold:g}: adult tracks called child"] = f"{k}/{n} = {k / max(n, 1):.2%}"
        k, n = called_child(chosen, half)
        out[f"{half} half at {chosen:g}: adult tracks called child"] = f"{k}/{n} = {k / max(n, 1):.2%}"
    frames = table[table["half"] == "report"]
    out["report half: adult frames called child per frame (is_child)"] = f"{frames['is_child'].mean():.2%}"
    out["age model"] = f"{_scorer().age_model.path.name} {_scorer().age_model.version}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("report", "tune", "both"), default="report")
    parser.add_argument("--cache", default=None, help="where lessons and scores are cached (not the repo)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds instead of the set's")
    parser.add_argument("--age-weights", default=None, metavar="FILE.pt",
                        help="score with this child/adult model instead of the shipped one (a candidate)")
    parser.add_argument("--adult-tracks", action="store_true",
                        help="only the adult-track figures (LFW people, webcam-like) and the threshold they give")
    args = parser.parse_args()
    if not (SHARED_DATA / "README.md").is_file():
        sys.exit(f"needs the shared data at {SHARED_DATA}")
    cache = cache_root(args.cache)
    global AGE_WEIGHTS
    AGE_WEIGHTS = Path(args.age_weights) if args.age_weights else None
    if args.adult_tracks:
        figures = adult_track_figures(cache, SelectionOptions())
        for key, value in figures.items():
            print(f"{key:64s} {value}")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))
        return
    sets = ("tune", "report") if args.set == "both" else (args.set,)
    options = SelectionOptions()
    out: dict = {}
    by_condition: dict = {}
    for name in sets:
        seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else SEEDS[name]
        for variant in VARIANTS:
            figures = Figures()
            for seed in seeds:
                lesson = lesson_for(cache, variant, seed)
                evaluate(lesson, scores_for(cache, lesson, variant, seed), figures, options)
            out[f"{name}/{variant}"] = {"seeds": list(seeds), **figures.row()}
            if variant == "webcam":
                by_condition[name] = figures.conditions()
    columns = list(out)
    print(f"{'':44s}" + "".join(f"{c:>18s}" for c in columns))
    for key in out[columns[0]]:
        cells = []
        for c in columns:
            value = out[c][key]
            cells.append(f"{value:18.3f}" if isinstance(value, float) else f"{str(value):>18s}")
        print(f"{key:44s}" + "".join(cells))
    for name, table in by_condition.items():
        print(f"\n{name}/webcam, child alone, by the segment's condition:  seconds  face found  judged child")
        for condition, row in table.items():
            print(f"  {condition:44s} {row['seconds']:7d} {row['face found']:11.3f} {row['judged child']:13.3f}")
    age = _scorer().age_model
    print(f"age model: {age.path.name} {age.version}")
    if args.json:  # scripts/train_models.py --track-figures puts these in the model card
        Path(args.json).write_text(json.dumps({**out, "webcam by condition": by_condition,
                                               "age model": f"{age.path.name} {age.version}"}, indent=2))


if __name__ == "__main__":
    main()
