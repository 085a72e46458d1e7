"""Email stage: the HTML snippet (and its plain-text twin) an email campaign drops into the
parents' "how was the lesson" email.

The snippet is an HTML *fragment* (no ``<html>``/``<body>``: the campaign tool supplies those),
laid out as a table with every style inlined (Gmail and Outlook ignore or strip ``<style>``
blocks), the GIF given by its absolute URL with ``width``/``height`` and alt text (Outlook
shows the first frame only, and blocked images show the alt text). A few kilobytes at most,
far under Gmail's ~102 KB clipping limit.

Templates are the package's own (:mod:`highlights.render`, ``highlights/render/templates/``):

* ``snippet.html.j2`` / ``snippet.txt.j2``: one layout for every language;
* ``snippet.css``: the snippet's styles, inlined into the HTML by css-inline.

The words come from :data:`MESSAGES`, one dict per language. Adding a language is adding one
dict there (the layout, the escaping and the tests stay as they are), which is easier to keep
consistent than one copy of the templates per language.

>>> from highlights.core.lesson import LessonInfo
>>> snippet = render_snippet(LessonInfo("L-1", "Anna", "Maths", "ru-RU"),
...                          "https://cdn.example.com/h/L-1/x.gif", None)
>>> snippet.locale
'ru'
>>> "Anna" in snippet.text and "https://cdn.example.com/h/L-1/x.gif" in snippet.html
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from highlights.core.lesson import LessonInfo
from highlights.core.urls import check_absolute_url, web_link
from highlights.render import TEMPLATES_DIR, inline_css, template_environment

if TYPE_CHECKING:
    from highlights.stages.gif import GifInfo

SNIPPET_HTML_TEMPLATE = "snippet.html.j2"
SNIPPET_TEXT_TEMPLATE = "snippet.txt.j2"
SNIPPET_CSS = "snippet.css"

MAX_FIELD_CHARS = 80
"""User-supplied names and subjects longer than this are cut (with an ellipsis): a runaway
value in the lessons file must not break the layout or push the snippet towards Gmail's limit."""

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        # "from the lesson", not "today's": the batch runs at night and the email may go out
        # the next day.
        "title_name_subject": "{name}'s best moments from the {subject} lesson",
        "title_name": "{name}'s best moments from the lesson",
        "title_subject": "Your child's best moments from the {subject} lesson",
        "title": "Your child's best moments from the lesson",
        "alt_name": "{name} smiling during the lesson",
        "alt": "Your child smiling during the lesson",
        "intro": "A few moments when your child smiled, picked from the lesson recording.",
        # An adult student's lesson (student_age_group = adult): the email goes to the student.
        "title_subject_adult": "Your best moments from the {subject} lesson",
        "title_adult": "Your best moments from the lesson",
        "alt_adult": "You smiling during the lesson",
        "intro_adult": "A few moments when you smiled, picked from the lesson recording.",
        "gif_link": "See the moments",
        "lesson_link": "Open the lesson",
        "note": "The moments were chosen automatically from the lesson video.",
    },
    "ru": {
        # Phrased so that neither the name nor the subject needs a grammatical case: the
        # lessons file gives them in the nominative and they cannot be declined reliably.
        "title_name_subject": "{name}: лучшие моменты урока «{subject}»",
        "title_name": "{name}: лучшие моменты урока",
        "title_subject": "Лучшие моменты вашего ребёнка на уроке «{subject}»",
        "title": "Лучшие моменты вашего ребёнка на уроке",
        "alt_name": "{name} улыбается на уроке",
        "alt": "Ваш ребёнок улыбается на уроке",
        "intro": "Несколько моментов, когда ваш ребёнок улыбался, из записи урока.",
        "title_subject_adult": "Ваши лучшие моменты на уроке «{subject}»",
        "title_adult": "Ваши лучшие моменты на уроке",
        "alt_adult": "Вы улыбаетесь на уроке",
        "intro_adult": "Несколько моментов, когда вы улыбались, из записи урока.",
        "gif_link": "Посмотреть моменты",
        "lesson_link": "Открыть урок",
        "note": "Моменты выбраны автоматически из видеозаписи урока.",
    },
}
"""The snippet's words per language (the language part of a locale: ``ru`` for ``ru-RU``).

Every language has the same keys; ``{name}`` and ``{subject}`` are filled in with plain text and
the whole message is escaped on output (:func:`inline_css`), so messages are text, never HTML."""

@dataclass(frozen=True)
class EmailOptions:
    """How the snippet is rendered (the ``[email]`` section of the config).

    public_base_url: None — where ``OUT/`` is served; the GIF's URL is
        ``<public_base_url>/<lesson_id>/<gif>`` (:func:`highlights.lesson.folder.public_url`). Without
        one (a local run) the snippet points at the GIF's ``file://`` URL, which only works on
        the machine that made it.
    display_width: 300 px — the GIF's width in the email: fits a phone's screen beside the
        email's margins (320 px wide phones) and matches the GIF's 360 px, which stays crisp on
        screens up to 1.2x. The height follows the GIF's aspect ratio (square).
    upscale: False — a GIF that had to shrink below ``display_width`` to fit its byte budget
        (down to 160 px) is shown at its own size rather than blown up and blurred.
    templates_dir: None — the shipped templates (:data:`highlights.render.TEMPLATES_DIR`); point it
        elsewhere to restyle the snippet without touching the code.
    default_locale: "en" — the language for a lesson whose locale has no messages in
        :data:`MESSAGES` (English is the campaign's lingua franca).
    """

    public_base_url: str | None = None
    display_width: int = 300
    upscale: bool = False
    templates_dir: Path | None = None
    default_locale: str = "en"

    def __post_init__(self) -> None:
        if not 16 <= self.display_width <= 1200:
            raise ValueError(f"display_width must be between 16 and 1200 px, not {self.display_width}")
        if self.default_locale not in MESSAGES:
            raise ValueError(f"default_locale {self.default_locale!r} has no messages (known: {', '.join(MESSAGES)})")
        if self.public_base_url:
            parts = urlsplit(self.public_base_url)
            if parts.query or parts.fragment or "?" in self.public_base_url or "#" in self.public_base_url \
                    or "@" in parts.netloc:
                # The GIF's URL is <public_base_url>/<lesson_id>/<gif>: after a query or fragment
                # that is no path at all (every email's image broken), and a user:password@ would
                # go out in every email. The value is not echoed: it may hold a token.
                raise ValueError("public_base_url must be a plain http(s) folder URL, without a query (?...), "
                                 "fragment (#...) or user:password@: the GIF's URL is "
                                 "<public_base_url>/<lesson_id>/<gif>")
            check_absolute_url(self.public_base_url.rstrip("/") + "/x.gif", what="public_base_url")

    @property
    def templates(self) -> Path:
        return Path(self.templates_dir) if self.templates_dir is not None else TEMPLATES_DIR


@dataclass(frozen=True)
class Snippet:
    """The rendered snippet: inlined HTML fragment, plain-text alternative, language used."""

    html: str
    text: str
    locale: str


# --------------------------------------------------------------------------- helpers


def choose_locale(locale: str | None, default: str = "en") -> str:
    """The :data:`MESSAGES` language for a locale: its language part if known, else ``default``.

    >>> choose_locale("ru-RU"), choose_locale("RU"), choose_locale("ru_RU"), choose_locale("de"), choose_locale(None)
    ('ru', 'ru', 'ru', 'en', 'en')
    """
    language = re.split(r"[-_]", (locale or "").strip(), maxsplit=1)[0].lower()
    return language if language in MESSAGES else default


def clean_text(value: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
    """User text as one tidy line: control characters dropped, whitespace collapsed, cut to
    ``limit`` characters; None when nothing is left. (Escaping is the templates' job.)

    >>> clean_text("  Anna\\n  Maria "), clean_text("   "), clean_text("x" * 90, 5)
    ('Anna Maria', None, 'xxxx…')
    """
    if value is None:
        return None
    text = "".join(c if c.isprintable() else " " for c in str(value))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def image_size(gif: GifInfo | None, options: EmailOptions) -> tuple[int, int]:
    """The GIF's ``width``/``height`` attributes: ``display_width`` wide (or the GIF's own width
    when it is smaller and ``upscale`` is off), height by the GIF's aspect ratio."""
    if gif is None or not gif.width or not gif.height:
        return options.display_width, options.display_width  # the GIF stage makes squares
    width = options.display_width if options.upscale else min(options.display_width, int(gif.width))
    return width, max(1, round(width * int(gif.height) / int(gif.width)))


def messages_for(info: LessonInfo, language: str, student_age_group: str | None = None) -> dict[str, str]:
    """The language's messages with the lesson's name and subject filled in.

    ``student_age_group`` (default: the lessons file's, else ``child``): an ``adult`` student's
    snippet speaks to the student ("Your best moments", "when you smiled"), not to a parent
    about "your child"."""
    adult = (student_age_group or info.student_age_group or "child") == "adult"
    catalogue = {key: value for key, value in MESSAGES[language].items() if not key.endswith("_adult")}
    if adult:
        catalogue.update({key[: -len("_adult")]: value for key, value in MESSAGES[language].items()
                          if key.endswith("_adult")})
    name, subject = clean_text(info.student_name), clean_text(info.subject)
    key = "title" + ("_name" if name else "") + ("_subject" if subject else "")
    filled = dict(catalogue)
    filled["title"] = catalogue[key].format(name=name, subject=subject)
    filled["alt"] = catalogue["alt_name"].format(name=name) if name else catalogue["alt"]
    return filled


# --------------------------------------------------------------------------- the stage


def render_snippet(
    info: LessonInfo,
    gif_url: str,
    gif: GifInfo | None,
    options: EmailOptions | None = None,
    *,
    student_age_group: str | None = None,
) -> Snippet:
    """The email snippet for one lesson, in the lesson's language (English or Russian).

    ``gif_url`` must be absolute (http, https, or file for a local run): a ValueError otherwise.
    ``gif`` gives the image's size (None: a ``display_width`` square). Missing name, subject or
    lesson URL fall back to neutral wording; a ``lesson_url`` that is not an http(s) link is
    left out. ``student_age_group``: the lesson's (``adult``: words for the student, not a parent);
    default the lessons file's, else ``child``.
    """
    options = options or EmailOptions()
    check_absolute_url(gif_url)
    language = choose_locale(info.locale, options.default_locale)
    width, height = image_size(gif, options)
    context = {
        "lang": language,
        "msg": messages_for(info, language, student_age_group),
        "gif_url": gif_url,
        "lesson_url": web_link(info.lesson_url),
        "width": width,
        "height": height,
    }
    environment = template_environment(options.templates.resolve())
    css = (options.templates / SNIPPET_CSS).read_text(encoding="utf-8")
    html = inline_css(environment.get_template(SNIPPET_HTML_TEMPLATE), context, css)
    text = environment.get_template(SNIPPET_TEXT_TEMPLATE).render(context)
    return Snippet(html=html, text=text, locale=language)


__all__ = [
    "MESSAGES",
    "EmailOptions",
    "Snippet",
    "choose_locale",
    "render_snippet",
]
