"""Writing files safely: atomically (a crash never leaves half a file), with the permissions the
job's outputs need (private by default, public for the GIF), in folders nobody else may write."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PRIVATE_MODE = 0o640
"""Default permissions (less the umask) of the files written here: lesson folders hold the
student's name and the GIF's secret name (result.json, snippets, report, scores, stages.json),
so they are not world-readable. The group may read them (a deploy group, the campaign's reader)."""
PUBLIC_MODE = 0o644
"""Permissions of files a web server running as another user must read: the GIFs."""


@contextmanager
def atomic_path(path: Path | str, mode: int = PRIVATE_MODE) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    The temporary file keeps ``path``'s suffix, so writers that pick a format by extension
    (imageio, pandas) still work. On error the temporary file is removed and ``path`` untouched.
    The file gets ``mode`` less the umask (default :data:`PRIVATE_MODE`, 0640; the GIF passes
    :data:`PUBLIC_MODE`, 0644, since a web server running as another user serves it), not
    ``mkstemp``'s ``0600``.
    """
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


DIR_MODE = 0o755
"""Folders the job creates: others may read (a web server serves the GIFs), only the job writes."""


def make_dirs(path: Path | str, mode: int = DIR_MODE) -> Path:
    """``path`` and any missing parents, made ``mode`` (``path``) and :data:`DIR_MODE` (the
    parents) less the umask, and never writable by group or others (under a umask of 000 a plain
    ``mkdir`` makes them 0777, and anyone could replace a published GIF). Folders that exist
    already are left as they are."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        try:
            os.chmod(folder, (mode if folder == path else DIR_MODE) & ~_umask() & ~0o022)
        except FileNotFoundError:  # removed meanwhile by someone else: nothing to protect
            pass
    return path


def _umask() -> int:
    """The process's umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path | str, text: str, mode: int = PRIVATE_MODE) -> None:
    with atomic_path(path, mode) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: Path | str, data: bytes, mode: int = PRIVATE_MODE) -> None:
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def json_text(value: Any) -> str:
    """``value`` as the job's JSON files hold it: indented, UTF-8, anything :func:`json.dumps`
    cannot write as its ``str``."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"


def write_json_atomic(path: Path | str, value: Any) -> None:
    """``value`` as indented JSON (:func:`json_text`)."""
    write_text_atomic(path, json_text(value))
