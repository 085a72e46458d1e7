"""A lesson's folder kept in a bucket (``Settings.out_url``): brought into a local working folder
before the lesson runs, put back once it has, then deleted here.

The lesson's stages, its resume (``stages.json``) and its skip test (``result.json``) work on a
local folder as they always do; this module only moves the folder's files::

    with Checkout(prefix, folder) as checkout:   # every object under <prefix>/, into folder/
        ...                                      # the lesson runs in folder/
        checkout.push()                          # what changed goes up, result.json last; then the
                                                 # objects of files that went (an old GIF) are deleted
                                                 # (leaving the block empties folder/)

The order of :func:`push` keeps the bucket whole whatever fails half way: ``result.json`` is
the lesson's "done" there as on disk, and is put only after every file it names; an earlier
GIF is deleted only after the ``result.json`` that no longer names it. A run that dies before
its push leaves the bucket as the run before left it, and the next run redoes the lesson.

Only plain files directly in the lesson's folder whose names do not start with a dot are the
lesson's outputs: the lock, the downloaded recordings and temporary files stay on the machine.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import shutil
from pathlib import Path

from highlights.core.result import LessonResult
from highlights.files import json_text, make_dirs
from highlights.lesson.folder import LOCK_FILE, RESULT_FILE
from highlights.lesson.resume import STAGES_FILE
from highlights.storage import objects

log = logging.getLogger(__name__)

PRIVATE_CACHE_CONTROL = "private, no-store"
"""Cache headers of a lesson's private files (a CDN in front of the bucket must not keep them)."""

Stamp = tuple[int, int]
"""A local file's (size, mtime in ns): changed when a stage rewrote it (atomic writes replace it)."""


def lesson_prefix(out_url: str, lesson_id: str) -> str:
    """``s3://bucket/prefix/<lesson_id>``: where the lesson's folder is kept."""
    return objects.prefix_url(out_url, lesson_id)


def working_folder(root: Path, lesson_id: str) -> Path:
    """``root/<lesson_id>``, made private (0700) with ``root`` where they are new: the working
    folder is nobody else's business, the lesson ids in it included."""
    make_dirs(root, mode=0o700)
    return make_dirs(Path(root) / lesson_id, mode=0o700)


def pull(prefix: str, folder: Path) -> dict[str, Stamp]:
    """Every object of the lesson's folder in the bucket into ``folder`` (emptied first, but for
    its lock: whatever a killed run left here is not the lesson's state, the bucket is). Returns
    the stamp of each file brought in, for :func:`push` to tell what changed."""
    clear(folder)
    listed = f"{prefix}/"
    pulled: dict[str, Stamp] = {}
    for info in objects.list_objects(listed):
        name = info.url.removeprefix(listed)
        if "/" in name or not _is_output(name):
            continue  # deeper keys are nobody's outputs (a hand-made copy): left alone
        objects.download(info.url, folder / name, known=info)
        pulled[name] = _stamp(folder / name)
    return pulled


def push(folder: Path, prefix: str, pulled: dict[str, Stamp]) -> None:
    """Put the lesson's folder back into the bucket: the files new or changed since
    :func:`pull`, ``stages.json`` and then ``result.json`` last; then delete the objects of the
    files the run removed (a stale GIF). Raises :class:`~highlights.storage.objects.ObjectStoreError`."""
    present = {path.name: path for path in folder.iterdir() if _is_output(path.name) and path.is_file()
               and not path.is_symlink()}
    changed = [name for name, path in present.items() if pulled.get(name) != _stamp(path)]
    gone = sorted(set(pulled) - set(present))
    last = {STAGES_FILE: 1, RESULT_FILE: 2}
    for name in sorted(changed, key=lambda n: (last.get(n, 0), n)):
        objects.upload(objects.prefix_url(prefix, name), present[name], content_type=_content_type(name),
                       cache_control=objects.GIF_CACHE_CONTROL if name.endswith(".gif") else PRIVATE_CACHE_CONTROL)
    for name in gone:
        objects.delete(objects.prefix_url(prefix, name))
    if changed or gone:
        log.info("lesson folder %s: %d file(s) put in the bucket, %d deleted there", folder.name, len(changed),
                 len(gone))


class Checkout:
    """The lesson's folder brought from the bucket into ``folder`` when made (:func:`pull`; a
    pull that fails leaves nothing behind and raises its ObjectStoreError), put back by
    :meth:`push`, and emptied from ``folder`` (:func:`clear`) when the ``with`` block ends,
    whatever happened in it. Take the lesson's lock first."""

    def __init__(self, prefix: str, folder: Path) -> None:
        self.prefix, self.folder = prefix, folder
        try:
            self.pulled = pull(prefix, folder)
        except BaseException:
            clear(folder)
            raise

    def push(self) -> None:
        push(self.folder, self.prefix, self.pulled)

    def __enter__(self) -> Checkout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        clear(self.folder)


def read_result(prefix: str) -> LessonResult | None:
    """The lesson's ``result.json`` in the bucket (None: none, or unreadable as a result)."""
    try:
        data = json.loads(objects.read_bytes(objects.prefix_url(prefix, RESULT_FILE)))
        return LessonResult.from_dict(data)
    except objects.ObjectStoreError as error:
        if error.kind == "missing":
            return None
        raise
    except (ValueError, TypeError, KeyError):
        return None


def write_result(result: LessonResult, prefix: str) -> None:
    """Put ``result`` as the lesson's ``result.json`` in the bucket (one PUT: whole or not at all)."""
    body = json_text(result.to_dict()).encode("utf-8")  # as files.write_result writes it on disk
    objects.upload(objects.prefix_url(prefix, RESULT_FILE), body, content_type=_content_type(RESULT_FILE),
                   cache_control=PRIVATE_CACHE_CONTROL)


def clear(folder: Path) -> None:
    """Delete the lesson's files from the working folder (all but its lock, which another run on
    this machine may be waiting on)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name == LOCK_FILE:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _is_output(name: str) -> bool:
    return bool(name) and not name.startswith(".")


def _stamp(path: Path) -> Stamp:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _content_type(name: str) -> str:
    if name.endswith(".gif"):
        return objects.GIF_CONTENT_TYPE
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed == "application/json" else guessed


__all__ = ["PRIVATE_CACHE_CONTROL", "Checkout", "clear", "working_folder", "lesson_prefix", "pull", "push", "read_result", "write_result"]
