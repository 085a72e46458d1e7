"""Where a lesson's CPU goes, per model and per step, measured inside the bench process only.

:func:`install` wraps the methods of the job's models and steps (class attributes and module
functions, so the instances the job builds afterwards, and those it built before, are measured)
with ``time.thread_time()`` accounting: each call's CPU on its own thread, *exclusive* of the
wrapped calls inside it (``FaceFollower.detect`` calls ``FaceDetector.detect`` and ``refine``;
``Lookout.look`` calls ``FaceEmbedder.chips`` and ``PersonSegmenter.mask``: each second of CPU
is counted once, under the innermost wrapped call). Scoring runs on three threads (the decoder,
the main thread with detection and the people models, and the face models' thread), so
per-thread clocks are what add up. Nothing of ``highlights`` is changed on disk; the wrappers
live in this process only.

:class:`ThreadSampler` reads ``/proc/self/task/*/stat`` every 0.2 s, so that the CPU of threads
no wrapper sees (FFmpeg's and OpenCV's worker threads, BLAS) shows too.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

CATEGORIES = (
    # (key, label)
    ("decoder", "decoder (PyAV decode + RGB, decoder thread)"),
    ("mtcnn_full", "MTCNN full detector (whole pyramid)"),
    ("mtcnn_coarse", "MTCNN coarse refresh (levels >= 15% of frame; scene_coarse too)"),
    ("mtcnn_refine", "MTCNN O-net follow (FaceDetector.refine)"),
    ("mtcnn_edge", "MTCNN P-/R-/O-net edge search (FaceDetector.edge_faces)"),
    ("follower", "follower glue (thumbnails, scene-change test)"),
    ("face_cnns", "smile + age CNNs (FaceScorer._probabilities)"),
    ("face_crops", "face crops, CLAHE, quality, hashes (score_detections)"),
    ("embed_chips", "identity: dlib alignment -> chips (FaceEmbedder.chips)"),
    ("embed", "identity: dlib ResNet descriptors (FaceEmbedder.embed_chips)"),
    ("segmentation", "person segmentation (PersonSegmenter.mask[_batch])"),
    ("lookout", "lookout glue (unexplained body, chip choice)"),
    ("blazeface", "BlazeFace (BlazeFaceDetector.detect[_batch])"),
    ("more_faces", "BlazeFace merge glue (Lookout.more_faces)"),
    ("tracks", "face tracks (assign_tracks)"),
    ("persons", "persons grouping (assign_persons, less embedding)"),
    ("gif", "GIF (build_gif)"),
)
LABELS = dict(CATEGORIES)


class Accounts:
    """CPU seconds (exclusive), calls and items per category, from wrapped callables."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.items: dict[str, int] = defaultdict(int)
        self.threads: dict[str, set[int]] = defaultdict(set)
        self._lock = threading.Lock()
        self._local = threading.local()
        self.originals: list[tuple[object, str, object]] = []

    def _stack(self) -> list[float]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _add(self, category: str, cpu: float, items: int) -> None:
        with self._lock:
            self.cpu[category] += cpu
            self.calls[category] += 1
            self.items[category] += items
            self.threads[category].add(threading.get_native_id())

    def timed(self, category, fn, count=None):
        """``fn`` wrapped: ``category`` a key or ``category(args, kwargs)``; ``count(args, kwargs)``
        the items of a call (faces, frames)."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            stack = self._stack()
            stack.append(0.0)
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - start
                inner = stack.pop()
                if stack:
                    stack[-1] += elapsed
                key = category(args, kwargs) if callable(category) else category
                self._add(key, elapsed - inner, int(count(args, kwargs)) if count else 0)

        return wrapper

    def wrap(self, owner, name: str, category, count=None) -> None:
        original = getattr(owner, name)
        self.originals.append((owner, name, original))
        setattr(owner, name, self.timed(category, original, count))

    def wrap_generator(self, owner, name: str, category) -> None:
        """A function returning an iterator: each ``next()`` is timed on the thread that asks
        (the decoder's generator runs on the decoder thread)."""
        original = getattr(owner, name)
        self.originals.append((owner, name, original))
        accounts = self

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            inner = iter(original(*args, **kwargs))
            step = accounts.timed(category, lambda: next(inner))
            try:
                while True:
                    try:
                        item = step()
                    except StopIteration:
                        return
                    yield item
            finally:
                close = getattr(inner, "close", None)
                if close is not None:
                    close()

        setattr(owner, name, wrapper)

    def restore(self) -> None:
        for owner, name, original in reversed(self.originals):
            setattr(owner, name, original)
        self.originals.clear()

    def summary(self) -> dict:
        with self._lock:
            return {k: {"cpu_s": round(self.cpu[k], 3), "calls": self.calls[k], "items": self.items[k],
                        "threads": len(self.threads[k])} for k in sorted(self.cpu)}  # fmt: skip


class FollowerLog:
    """Why the face follower ran the whole pyramid, frame by frame (``FaceFollower._one``
    wrapped): ``first``, ``new stream`` (a disconnect, another file, another size), ``scene
    change`` (the 4x4 test; its largest cell change is kept; with ``scene_coarse``, the coarse
    pass and O-net lost a followed face), ``pyramid due`` (``pyramid_every``
    or nothing coarse to run) or ``face lost`` (O-net lost a followed face)."""

    def __init__(self) -> None:
        self.followers: list = []
        self.full: list[tuple[int, str, float | None]] = []  # (sample index, reason, cell change)
        self.coarse: list[int] = []

    def install(self, accounts: Accounts) -> None:
        from highlights.models import detection

        log = self
        cls = detection.FaceFollower
        original_one, original_changed, original_init = cls._one, cls._changed, cls.__init__

        def init(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            log.followers.append(self)

        def changed(self, thumb, shape):
            value = original_changed(self, thumb, shape)
            self._bench_change = value
            return value

        def one(self, image, key):
            first = self._last is None
            threshold = self._threshold() if self._last is not None else None
            due = self._since_full >= max(self.options.full_every, 1)
            full, coarse = self.full_detections, self.coarse_detections
            self._bench_change = None
            found = original_one(self, image, key)
            index = int(key[1]) if key is not None else -1
            if self.full_detections > full:
                change = self._bench_change
                if first:
                    reason = "first"
                elif change is None:
                    reason = "new stream"
                elif change > threshold:
                    reason = "scene change"
                elif due:
                    reason = "pyramid due"
                else:
                    reason = "face lost"
                log.full.append((index, reason, None if change is None else round(float(change), 2)))
            elif self.coarse_detections > coarse:
                log.coarse.append(index)
            return found

        for name, fn in (("__init__", init), ("_changed", changed), ("_one", one)):
            accounts.originals.append((cls, name, getattr(cls, name)))
            setattr(cls, name, fn)

    def counters(self) -> dict:
        out = {"full": 0, "coarse": 0, "scene_coarse": 0, "followed": 0, "identical": 0, "edge_found": 0}
        for f in self.followers:
            out["full"] += f.full_detections
            out["coarse"] += f.coarse_detections
            out["scene_coarse"] += getattr(f, "scene_coarse_detections", 0)
            out["followed"] += f.followed
            out["identical"] += f.identical
            out["edge_found"] += getattr(f, "edge_found", 0)
        return out


def install(accounts: Accounts | None = None) -> tuple[Accounts, FollowerLog]:
    """Wrap the job's models and steps (see the module's docstring)."""
    from highlights.lesson import graph
    from highlights.models import blazeface, detection, embedding, segmentation
    from highlights.stages import scores

    a = accounts or Accounts()

    def mtcnn_kind(args, kwargs):
        coarse = kwargs.get("min_face_size", args[2] if len(args) > 2 else None)
        return "mtcnn_coarse" if coarse else "mtcnn_full"

    n_images = lambda args, kwargs: len(args[1]) if len(args) > 1 else 0
    a.wrap(detection.FaceDetector, "detect", mtcnn_kind, n_images)
    a.wrap(detection.FaceDetector, "refine", "mtcnn_refine", lambda args, kwargs: len(args[2]) if len(args) > 2 else 0)
    a.wrap(detection.FaceDetector, "edge_faces", "mtcnn_edge", lambda args, kwargs: 1)
    a.wrap(detection.FaceFollower, "detect", "follower", n_images)
    a.wrap(scores.FaceScorer, "_probabilities", "face_cnns", n_images)
    a.wrap(scores.FaceScorer, "score_detections", "face_crops", n_images)
    a.wrap(embedding.FaceEmbedder, "chips", "embed_chips", lambda args, kwargs: len(args[2]) if len(args) > 2 else 0)
    a.wrap(embedding.FaceEmbedder, "embed_chips", "embed", n_images)
    a.wrap(segmentation.PersonSegmenter, "mask", "segmentation")
    a.wrap(segmentation.PersonSegmenter, "mask_batch", "segmentation", n_images)
    a.wrap(blazeface.BlazeFaceDetector, "detect", "blazeface")
    a.wrap(blazeface.BlazeFaceDetector, "detect_batch", "blazeface", n_images)
    a.wrap(scores.Lookout, "look", "lookout")
    a.wrap(scores.Lookout, "more_faces", "more_faces", n_images)
    a.wrap(graph, "assign_tracks", "tracks")
    a.wrap(graph, "assign_persons", "persons")
    a.wrap(graph, "build_gif", "gif", lambda args, kwargs: len(args[0]) if args else 0)
    a.wrap_generator(graph, "frames_at_points", "decoder")
    log = FollowerLog()
    log.install(a)
    return a, log


class ThreadSampler:
    """CPU seconds of every thread of this process, from ``/proc/self/task/*/stat`` read every
    ``interval`` s (a thread that ends between two reads loses at most that much of its time)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[int, tuple[str, float]] = {}
        self.baseline: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self.own_id: int | None = None

    def _read(self) -> None:
        for task in Path("/proc/self/task").iterdir():
            try:
                text = (task / "stat").read_text()
            except OSError:
                continue
            comm = text[text.index("(") + 1 : text.rindex(")")]
            fields = text[text.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime
            self.seen[int(task.name)] = (comm, cpu)

    def _run(self) -> None:
        self.own_id = threading.get_native_id()
        while not self._stop.wait(self.interval):
            self._read()

    def start(self) -> ThreadSampler:
        self._read()
        self.baseline = {tid: cpu for tid, (_, cpu) in self.seen.items()}
        self._thread.start()
        return self

    def stop(self) -> dict[int, tuple[str, float]]:
        """(name, CPU seconds since :meth:`start`) of every thread seen, by thread id."""
        self._stop.set()
        self._thread.join()
        self._read()
        return {tid: (comm, cpu - self.baseline.get(tid, 0.0)) for tid, (comm, cpu) in self.seen.items()}


__all__ = ["CATEGORIES", "LABELS", "Accounts", "FollowerLog", "ThreadSampler", "install"]
