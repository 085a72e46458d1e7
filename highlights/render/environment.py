"""The Jinja2 environment every page and snippet is rendered with, and CSS inlining for email."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
import jinja2
import markupsafe

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
"""The shipped templates (package data: present in an installed wheel as in a checkout)."""


@lru_cache(maxsize=8)
def template_environment(templates_dir: Path = TEMPLATES_DIR) -> jinja2.Environment:
    """The Jinja2 environment for ``templates_dir``: HTML templates autoescaped (``*.txt.j2``
    are plain text and are not), undefined variables an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=jinja2.select_autoescape(disabled_extensions=("txt", "txt.j2"), default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_SLOT = re.compile(r"hlslot(\d+)x")


def inline_css(template: jinja2.Template, context: dict[str, Any], css: str) -> str:
    """``template`` rendered with ``context`` and ``css`` inlined into style attributes.

    css-inline parses and re-serialises the HTML, and HTML serialisation leaves ``<`` and ``>``
    raw inside attribute values (valid HTML, but a name like ``<script>`` would then appear
    verbatim in the ``alt`` text, which naive filters downstream flag). So the messages
    (``context["msg"]``) go through the inliner as inert tokens and are put in afterwards,
    escaped, in one pass (an inserted value is never scanned again).
    """
    values: list[str] = []

    def slot(value: str) -> str:
        values.append(value)
        return f"hlslot{len(values) - 1}x"

    slotted = {**context, "msg": {key: slot(value) for key, value in context["msg"].items()}}
    html = css_inline.inline_fragment(template.render(slotted), css, load_remote_stylesheets=False)
    html = _SLOT.sub(lambda m: str(markupsafe.escape(values[int(m.group(1))])), html)
    return html.strip() + "\n"


__all__ = ["TEMPLATES_DIR", "inline_css", "template_environment"]
