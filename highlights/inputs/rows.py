"""Rows of the job's input files, CSV or JSON Lines, each with its row number and its error.

Both the manifest and the lessons file are read here. A nightly batch must not lose every
lesson to one bad row: :func:`read_rows` yields every data row as ``(row number, values, error)``
where a broken row carries its error instead of its values, and raises :class:`InputError` only
for a file that is unusable as a whole (missing, empty, no header, required columns absent).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

from highlights.core.lesson import is_valid_lesson_id

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
"""Suffixes of JSON Lines files (any file whose first character is ``{`` is read as one too)."""
_JSON_LESSON_ID = re.compile(r'"lesson_id"\s*:\s*"([^"\\]{1,64})"')


class InputError(ValueError):
    """The manifest (or lessons) file as a whole is unusable: missing, empty, no header,
    required columns absent, or an unknown time zone was named."""



def read_rows(path: Path, *, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(row number, values as stripped strings or None, error or None) for every data row."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    if path.suffix.lower() in JSONL_SUFFIXES or _starts_like_json(path):
        yield from _jsonl_rows(path, required)
    else:
        yield from _csv_rows(path, required)


def _starts_like_json(path: Path) -> bool:
    """Whether the file's first non-blank character is ``{``: JSON Lines under another name
    (``manifest.json``, ``.txt``). No CSV header starts with a brace."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{")


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    try:
        # surrogateescape: a stray non-UTF-8 byte spoils its row (found below), not the file.
        handle = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read: {exc}") from exc
    with handle:
        lines = _LineLog(handle)
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path.name}: cannot read the header: {exc}") from exc
        if header and any(_undecodable(name) for name in header):
            raise InputError(f"{path.name}: the header is not UTF-8 text")
        columns = [name.strip().lower() for name in header or []]
        missing = [name for name in required if name not in columns]
        if not columns or missing:
            raise InputError(
                f"{path.name}: the header must name the columns {', '.join(required)}"
                + (f" (missing: {', '.join(missing)})" if columns else " (no header)")
            )
        duplicated = sorted({name for name in columns if columns.count(name) > 1 and name})
        if duplicated:
            raise InputError(f"{path.name}: column(s) named twice in the header: {', '.join(duplicated)}")
        last_line = reader.line_num
        while True:
            first_line = last_line + 1
            lines.taken.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                last_line = reader.line_num
                # The row still names its lesson (a name past the field size limit, a stray
                # quote): the problem then spoils that lesson instead of vanishing among rows
                # that belong to none.
                yield from _unreadable(first_line, last_line, lines.taken, columns, str(exc))
                continue
            last_line = reader.line_num
            if last_line > first_line and any(_lesson_id_of_line(line, columns) for line in lines.taken[1:]):
                # A quoted value ran over line breaks that start rows of their own (each names a
                # lesson): a stray quote swallowed them, and each of those lessons would otherwise
                # run without its row, or vanish. A value that merely spans lines (a notes cell
                # exported from a spreadsheet) is read as it is.
                yield from _unreadable(first_line, last_line, lines.taken, columns, None)
                continue
            if not fields or all(not value.strip() for value in fields):
                continue  # blank lines are layout, not rows
            if any(_undecodable(value) for value in fields):
                values = {k: v.strip() for k, v in zip(columns, fields) if not _undecodable(v)}
                yield first_line, values, "not UTF-8 text (save the file as UTF-8)"
                continue
            if len(fields) != len(columns):
                values = dict(zip(columns, (v.strip() for v in fields)))
                yield first_line, values, f"{len(fields)} fields where the header has {len(columns)}"
                continue
            yield first_line, {name: value.strip() for name, value in zip(columns, fields) if name}, None


class _LineLog:
    """The lines a ``csv.reader`` takes from ``handle`` since ``taken`` was last cleared."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.taken: list[str] = []

    def __iter__(self) -> _LineLog:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.taken.append(line)
        return line


def _unreadable(
    first_line: int, last_line: int, lines: list[str], columns: list[str], error: str | None
) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """The rows of a CSV record that cannot be read (``error``) or that swallowed line breaks
    (lines ``first_line`` to ``last_line``): one entry for each lesson id found at the start of
    one of its physical lines, with that line's number, so that every lesson whose row was
    swallowed fails instead of running without it; one without an id if none is found."""
    if last_line > first_line:
        message = (f"unreadable row: lines {first_line}-{last_line} read as one row (a quote opened on line "
                   f"{first_line} is not closed on it: a stray quote?)" + (f"; {error}" if error else ""))
    else:
        message = f"unreadable row: {error}"
    found = False
    for offset, line in enumerate(lines):
        lesson_id = _lesson_id_of_line(line, columns)
        if lesson_id is not None:
            found = True
            yield first_line + offset, {"lesson_id": lesson_id}, message
    if not found:
        yield first_line, None, message


def _lesson_id_of_line(line: str, columns: list[str]) -> str | None:
    """The valid lesson id in the ``lesson_id`` column of one physical line read alone, or None.
    Only the id is taken: the rest of a line of a broken row is not trusted."""
    if "lesson_id" not in columns:
        return None
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(max(limit, len(line) + 1))
        fields = next(csv.reader([line]), [])
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)
    index = columns.index("lesson_id")
    lesson_id = fields[index].strip() if index < len(fields) else ""
    return lesson_id if is_valid_lesson_id(lesson_id) else None


def _jsonl_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read: {exc}") from exc
    with handle:
        line_no = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                raise InputError(f"{path.name}: not UTF-8 text: {exc}") from exc
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                # A broken line that still shows its lesson id spoils that lesson (as _unreadable does for CSV).
                # RecursionError: arrays or objects nested thousands deep, which Python's parser refuses.
                found = _JSON_LESSON_ID.search(line)
                values = {"lesson_id": found.group(1).strip()} if found else None
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield line_no, values, "not UTF-8 text" if _undecodable(line) else f"not valid JSON: {why}"
                continue
            if not isinstance(record, dict):
                yield line_no, None, "not a JSON object"
                continue
            values = {str(k).strip().lower(): _text(v) for k, v in record.items()}
            if _undecodable(line):
                values = {k: v for k, v in values.items() if not _undecodable(k + v)}
                yield line_no, values, "not UTF-8 text (save the file as UTF-8)"
                continue
            missing = [name for name in required if not values.get(name)]
            if missing:
                yield line_no, values, f"missing {', '.join(missing)}"
                continue
            yield line_no, values, None


def _undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (kept as lone surrogates by
    ``errors="surrogateescape"``)."""
    return any("\udc80" <= char <= "\udcff" for char in text)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


__all__ = ["JSONL_SUFFIXES", "InputError", "read_rows"]
