"""Labelled faces for training and evaluating the smile and child/adult models.

Two steps, kept apart so a caller can mix sources freely:

1. **Labels.** :func:`load_labelled_folder` reads a folder's label file into a
   :class:`LabelledImages` (absolute image paths, 0/1 labels, and where known the person's
   identity and age). It understands a generic ``labels.csv`` (``file,label``; 1 = smiling /
   child) and the shared sets' own files (SMILEsmileD ``file,smile``, the LFW expression set
   ``file,emotion,identity``, UTKFace ``file,age,...``), and a parent folder holding several of
   them (``faces/smile`` = SMILEsmileD + expression set). The labeller's folder
   (``highlights label --labels DIR``, :mod:`highlights.tools.label`) is a generic one with more
   columns: ``file,label,task,by,created_at,lesson_id,t``; only the rows of the task asked for
   count, a later row for a file supersedes an earlier one, ``lesson_id`` keeps a lesson's faces
   on one side of the validation split, and its files are face squares already cut by the crop
   recipe (taken whole, never re-detected: the model sees exactly what it saw in the lesson).
2. **Crops.** :func:`face_crops` turns images into the 64x64 model inputs exactly as the pipeline
   does (MTCNN box -> :func:`highlights.models.preprocess.face_model_input`). Tight face crops get
   a plain black border before detection and the box is mapped back (see
   ``docs/platform-notes``: without it MTCNN's box spills off a tight crop and training faces end
   up small inside black borders, unlike faces cut from frames). A small image where no face is
   found is taken whole; a large one is dropped. Crops are cached as ``.npy`` files outside the
   repository, keyed by the file (path, size, mtime) and the crop recipe version.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from highlights.models.preprocess import CLAHE_CLIP_LIMIT, CLAHE_TILES, MODEL_INPUT_SIZE, face_model_input

log = logging.getLogger(__name__)

Task = str  # "smile" | "age"

CHILD_MAX_AGE = 15
"""Ages up to this are children (label 1)."""
ADULT_MIN_AGE = 20
"""Ages from this are adults (label 0). Ages in between are left out of training (see MODEL_CARD)."""

TIGHT_CROP_BORDER = 40
"""Black border (pixels) added around an image before detection, so a tight crop's face is found
with the same framing as a face in a frame."""
WHOLE_IMAGE_MAX_SIDE = 200
"""Images up to this size where no face is found are taken whole (tight face crops)."""

CROP_RECIPE_VERSION = (
    f"v1-border{TIGHT_CROP_BORDER}-whole{WHOLE_IMAGE_MAX_SIDE}-clahe{CLAHE_CLIP_LIMIT}x"
    f"{CLAHE_TILES[0]}-{MODEL_INPUT_SIZE}px-mtcnn20-p0.90-largest"
)

# How a crop was obtained (stored as the first byte of each cached array).
CROP_MISSING, CROP_DETECTED, CROP_WHOLE_IMAGE = 0, 1, 2


LABELLER_FACE_TASKS = ("smile", "age")
"""Tasks of the labeller's face rows (its ``adult_present`` rows label whole frames)."""


class LabelsError(ValueError):
    """A label file is missing, has the wrong columns, or a row that cannot be used."""


@dataclass
class LabelledImages:
    """Images with binary labels. ``identity`` is "" where unknown; ``age`` is -1 where unknown;
    ``lesson`` is the lesson a face was cut from ("" where none: photo sets); ``whole`` marks
    images that are already the face square of the crop recipe (no detection)."""

    paths: list[Path]
    labels: np.ndarray  # (N,) int64, 1 = smiling / child
    source: list[str]
    identity: list[str] = field(default_factory=list)
    age: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lesson: list[str] = field(default_factory=list)
    whole: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        n = len(self.paths)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.identity:
            self.identity = [""] * n
        if len(self.age) == 0 and n:
            self.age = np.full(n, -1, np.int64)
        self.age = np.asarray(self.age, dtype=np.int64)
        if not self.lesson:
            self.lesson = [""] * n
        if len(self.whole) == 0 and n:
            self.whole = np.zeros(n, bool)
        self.whole = np.asarray(self.whole, dtype=bool)
        lengths = {len(self.labels), len(self.source), len(self.identity), len(self.age), len(self.lesson), len(self.whole)}
        if lengths != {n}:
            raise ValueError("LabelledImages fields differ in length")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: np.ndarray | Sequence[int]) -> LabelledImages:
        index = np.asarray(index, dtype=np.int64)
        return LabelledImages(
            [self.paths[i] for i in index],
            self.labels[index],
            [self.source[i] for i in index],
            [self.identity[i] for i in index],
            self.age[index],
            [self.lesson[i] for i in index],
            self.whole[index],
        )

    @staticmethod
    def concat(parts: Sequence[LabelledImages]) -> LabelledImages:
        return LabelledImages(
            [p for part in parts for p in part.paths],
            np.concatenate([part.labels for part in parts]) if parts else np.zeros(0, np.int64),
            [s for part in parts for s in part.source],
            [s for part in parts for s in part.identity],
            np.concatenate([part.age for part in parts]) if parts else np.zeros(0, np.int64),
            [s for part in parts for s in part.lesson],
            np.concatenate([part.whole for part in parts]) if parts else np.zeros(0, bool),
        )


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise LabelsError(f"no labels.csv in {path.parent}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as error:
        raise LabelsError(f"{path}: cannot be read as CSV: {error}") from error


def _check_files(frame: pd.DataFrame, folder: Path, csv_path: Path) -> list[Path]:
    paths = []
    for row, name in zip(frame.index + 2, frame["file"]):  # row 1 is the header
        name = name.strip()
        if not name:
            raise LabelsError(f"{csv_path} row {row}: empty file name")
        path = (folder / name).resolve()
        if not path.is_file():
            raise LabelsError(f"{csv_path} row {row}: file {name!r} not found")
        paths.append(path)
    return paths


def load_labels_csv(folder: Path | str, task: Task | None = None) -> LabelledImages:
    """A generic folder: ``labels.csv`` with columns ``file,label`` (label 1 or 0).

    With a ``task`` column (the labeller's folder) only the rows of ``task`` are read, the last
    row for a file wins, ``lesson_id`` fills :attr:`LabelledImages.lesson` and the face rows'
    images are taken whole. Raises :class:`LabelsError` naming the file and row of the first bad
    row (rows counted as in the file, header = row 1).
    """
    folder = Path(folder)
    csv_path = folder / "labels.csv"
    frame = _read_csv(csv_path)
    if not {"file", "label"} <= set(frame.columns):
        raise LabelsError(f"{csv_path}: needs columns file,label (has {','.join(frame.columns)})")
    labeller = "task" in frame.columns
    if labeller:
        if task is None:
            raise LabelsError(f"{csv_path}: has a task column: name the task to read (smile or age)")
        frame = frame[frame["task"].str.strip() == task]
        # The labeller appends: a face labelled again ("show labelled faces too") supersedes.
        frame = frame.iloc[::-1].drop_duplicates("file").iloc[::-1]
        if frame.empty:
            raise LabelsError(f"{csv_path}: no {task} labels")
    labels = []
    for row, name, value in zip(frame.index + 2, frame["file"], frame["label"]):
        value = value.strip()
        if value not in {"0", "1", "0.0", "1.0"}:
            raise LabelsError(
                f"{csv_path} row {row}: label {value!r} for file {name!r} is not 0 or 1"
            )
        labels.append(int(float(value)))
    paths = _check_files(frame, folder, csv_path)
    identity = list(frame["identity"]) if "identity" in frame.columns else []
    lesson = [s.strip() for s in frame["lesson_id"]] if labeller and "lesson_id" in frame.columns else []
    whole = np.full(len(paths), labeller and task in LABELLER_FACE_TASKS, bool)
    return LabelledImages(
        paths, np.array(labels), [folder.name] * len(paths), identity, lesson=lesson, whole=whole
    )


def load_smilesmiled(folder: Path | str) -> LabelledImages:
    """SMILEsmileD: ``file,smile``; no identities."""
    folder = Path(folder)
    frame = _read_csv(folder / "labels.csv")
    paths = [(folder / f).resolve() for f in frame["file"]]
    return LabelledImages(paths, frame["smile"].astype(int).to_numpy(), ["smilesmiled"] * len(paths))


def load_lfw_expressions(folder: Path | str) -> LabelledImages:
    """The LFW facial-expression set: happiness = 1, any other emotion = 0; duplicates dropped."""
    folder = Path(folder)
    frame = _read_csv(folder / "labels.csv").drop_duplicates("file")
    paths = [(folder / f).resolve() for f in frame["file"]]
    labels = (frame["emotion"].str.strip().str.lower() == "happiness").astype(int).to_numpy()
    identity = [s.strip() for s in frame["identity"]]
    return LabelledImages(paths, labels, ["lfw_expressions"] * len(paths), identity)


def load_utkface(folder: Path | str, keep_teens: bool = False) -> LabelledImages:
    """UTKFace: child (age <= 15) = 1, adult (age >= 20) = 0.

    Ages 16-19 are dropped unless ``keep_teens`` (then they carry label -1: evaluation only).
    """
    folder = Path(folder)
    frame = _read_csv(folder / "labels.csv")
    age = frame["age"].astype(int).to_numpy()
    labels = np.where(age <= CHILD_MAX_AGE, 1, np.where(age >= ADULT_MIN_AGE, 0, -1))
    keep = labels >= 0 if not keep_teens else np.ones(len(age), bool)
    paths = [(folder / f).resolve() for f, k in zip(frame["file"], keep) if k]
    return LabelledImages(paths, labels[keep], ["utkface"] * len(paths), [], age[keep])


_SHARED_LOADERS = {
    ("smile", frozenset({"file", "smile"})): load_smilesmiled,
    ("smile", frozenset({"file", "emotion", "identity"})): load_lfw_expressions,
    ("age", frozenset({"file", "age"})): load_utkface,
}


def load_labelled_folder(folder: Path | str, task: Task, keep_teens: bool = False) -> LabelledImages:
    """Labels for ``task`` from ``folder``: a generic ``labels.csv`` (``file,label``), one of the
    shared sets, or a folder whose sub-folders are such folders (all of them are combined)."""
    folder = Path(folder)
    csv_path = folder / "labels.csv"
    if csv_path.is_file():
        columns = set(_read_csv(csv_path).columns)
        if {"file", "label"} <= columns:
            return load_labels_csv(folder, task)
        for (loader_task, needed), loader in _SHARED_LOADERS.items():
            if loader_task == task and needed <= columns:
                if loader is load_utkface:
                    return load_utkface(folder, keep_teens)
                return loader(folder)
        raise LabelsError(
            f"{csv_path}: columns {','.join(sorted(columns))} are not a {task} label file "
            "(expected file,label)"
        )
    parts = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        if (child / "labels.csv").is_file():
            try:
                parts.append(load_labelled_folder(child, task, keep_teens))
            except LabelsError as error:
                log.info("skipping %s: %s", child, error)
    if not parts:
        raise LabelsError(f"no labels.csv for {task} in {folder} or its sub-folders")
    return LabelledImages.concat(parts)


# --------------------------------------------------------------------------------------------
# Face crops


def default_cache_dir() -> Path:
    """``$HIGHLIGHTS_CACHE/face-crops`` or ``~/.cache/highlights/face-crops`` (never the repo)."""
    root = os.environ.get("HIGHLIGHTS_CACHE") or Path.home() / ".cache" / "highlights"
    return Path(root) / "face-crops" / CROP_RECIPE_VERSION


def _cache_key(path: Path) -> str:
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{CROP_RECIPE_VERSION}"
    return hashlib.sha1(text.encode()).hexdigest()


def read_rgb(path: Path) -> np.ndarray | None:
    """An image file as RGB uint8 (gray images are expanded), or None when unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crop_face(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The model input for the largest detected face (boxes in ``image`` pixels, largest first),
    or the whole image when none was found and the image is a small tight crop."""
    if len(boxes):
        return face_model_input(image, tuple(boxes[0])), CROP_DETECTED
    height, width = image.shape[:2]
    if max(height, width) <= WHOLE_IMAGE_MAX_SIDE:
        return face_model_input(image, (0.0, 0.0, float(width), float(height))), CROP_WHOLE_IMAGE
    return None, CROP_MISSING


def detect_with_border(detector, images: Sequence[np.ndarray], border: int = TIGHT_CROP_BORDER):
    """Detect faces in images padded with a black ``border``; boxes come back in image pixels."""
    padded = [
        cv2.copyMakeBorder(im, border, border, border, border, cv2.BORDER_CONSTANT, value=0)
        for im in images
    ]
    results = detector.detect(padded)
    return [r.boxes - border for r in results]


@dataclass
class FaceCrops:
    """64x64 uint8 crops for the images that gave one; ``index`` maps rows to the input list,
    ``how`` says whether each was detected (1) or the whole image (2)."""

    crops: np.ndarray
    index: np.ndarray
    how: np.ndarray


def face_crops(
    paths: Sequence[Path],
    cache_dir: Path | None = None,
    detector=None,
    chunk: int = 256,
    progress: bool = False,
    whole: np.ndarray | Sequence[bool] | None = None,
) -> FaceCrops:
    """Model-input crops for ``paths`` (cached). Images with no usable face are left out.

    ``whole`` marks images that are face squares already (the labeller's crops): those are
    normalised as they are, exactly as :func:`face_model_input` treats a box in a frame, with
    no detection and no cache (reading one costs well under a millisecond).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    n = len(paths)
    crops = np.zeros((n, MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), np.uint8)
    how = np.zeros(n, np.uint8)
    todo: list[int] = []
    is_whole = np.zeros(n, bool) if whole is None else np.asarray(whole, dtype=bool)
    keys = ["" if is_whole[i] else _cache_key(Path(p)) for i, p in enumerate(paths)]
    for i, key in enumerate(keys):
        if is_whole[i]:
            image = read_rgb(Path(paths[i]))
            if image is not None:
                height, width = image.shape[:2]
                crops[i] = face_model_input(image, (0.0, 0.0, float(width), float(height)))
                how[i] = CROP_WHOLE_IMAGE
            continue
        cached = cache_dir / key[:2] / f"{key}.npy"
        if cached.is_file():
            flat = np.load(cached)
            how[i] = flat[0]
            if flat[0] != CROP_MISSING:
                crops[i] = flat[1:].reshape(MODEL_INPUT_SIZE, MODEL_INPUT_SIZE)
        else:
            todo.append(i)
    if todo:
        if detector is None:
            from highlights.models.detection import FaceDetector

            detector = FaceDetector()
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            images = [read_rgb(Path(paths[i])) for i in part]
            readable = [(i, im) for i, im in zip(part, images) if im is not None]
            boxes = detect_with_border(detector, [im for _, im in readable]) if readable else []
            results = {i: crop_face(im, b) for (i, im), b in zip(readable, boxes)}
            for i in part:
                crop, method = results.get(i, (None, CROP_MISSING))
                flat = np.zeros(1 + MODEL_INPUT_SIZE * MODEL_INPUT_SIZE, np.uint8)
                flat[0] = method
                if crop is not None:
                    flat[1:] = crop.ravel()
                    crops[i] = crop
                how[i] = method
                target = cache_dir / keys[i][:2] / f"{keys[i]}.npy"
                target.parent.mkdir(exist_ok=True)
                tmp = target.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, flat)
                os.replace(tmp, target)
            if progress:
                log.warning("face crops: %d / %d detected", min(start + chunk, len(todo)), len(todo))
    keep = np.flatnonzero(how != CROP_MISSING)
    return FaceCrops(crops[keep], keep, how[keep])
