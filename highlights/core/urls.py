"""The URL rules the job shares: what may be a GIF's address in an email, and what may be a link.

One definition for the manifest reader (which checks a lessons file's ``lesson_url``), the email
snippet (which links the GIF and the lesson) and the settings (``public_base_url``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

URL_UNSAFE = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]')
"""Characters RFC 3986 never allows raw in a URL; refusing them keeps every href/src attribute
plain and the URL unambiguous to every email client."""


def check_absolute_url(url: str, *, what: str = "GIF URL") -> str:
    """``url`` unchanged if it is an absolute http(s) or file URL, else a ValueError saying why.

    >>> check_absolute_url("https://cdn.example.com/h/L-1/a.gif")
    'https://cdn.example.com/h/L-1/a.gif'
    >>> check_absolute_url("L-1/a.gif")
    Traceback (most recent call last):
    ...
    ValueError: GIF URL 'L-1/a.gif' is not absolute: email readers fetch it from their own machines, so it needs http://, https:// (or file:// for a local run)
    """
    parts = urlsplit(str(url))
    if URL_UNSAFE.search(str(url)):
        raise ValueError(f"{what} {url!r} contains characters a URL must percent-encode (spaces, quotes, <>)")
    ok = parts.scheme in ("http", "https") and bool(parts.netloc) or (
        parts.scheme == "file" and parts.path.startswith("/")
    )
    if not ok:
        raise ValueError(
            f"{what} {url!r} is not absolute: email readers fetch it from their own machines, "
            "so it needs http://, https:// (or file:// for a local run)"
        )
    return str(url)


def web_link(url: str | None) -> str | None:
    """``url`` (stripped) if it can be an ``href`` in an email: an absolute http(s) URL without
    characters that must be percent-encoded; None otherwise (never ``javascript:`` and co.).

    >>> web_link(" https://school.example/l/1 "), web_link("javascript:alert(1)"), web_link(None)
    ('https://school.example/l/1', None, None)
    """
    if not url:
        return None
    url = url.strip()
    try:
        check_absolute_url(url, what="lesson_url")
    except ValueError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


__all__ = ["URL_UNSAFE", "check_absolute_url", "web_link"]
