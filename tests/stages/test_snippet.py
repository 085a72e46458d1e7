"""The email snippet: languages, fallbacks, escaping, inlined CSS, the image tag, URLs, size."""

from __future__ import annotations

import doctest
from html.parser import HTMLParser
from pathlib import Path

import pytest

import highlights.stages.snippet
from highlights.core.lesson import LessonInfo
from highlights.core.urls import check_absolute_url
from highlights.render import TEMPLATES_DIR
from highlights.stages.gif import GifInfo
from highlights.stages.snippet import MESSAGES, EmailOptions, Snippet, choose_locale, render_snippet

GIF_URL = "https://cdn.example.com/highlights/L-1001/Zx3k9Qe2.gif"
LESSON_URL = "https://school.example.com/lessons/L-1001?tab=summary&src=email"
GMAIL_CLIP_BYTES = 102 * 1024


class _Tags(HTMLParser):
    """Every start tag with its attributes, and whether a <style> or <script> element occurs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def gif_info(width: int = 360, height: int = 360) -> GifInfo:
    return GifInfo(Path("x.gif"), width, height, 9, 600_000, 11_600, (2000,) + (1200,) * 8, 128, 400, 0.5)


def info(**values) -> LessonInfo:
    defaults = dict(student_name="Anna", subject="Maths", locale="en", lesson_url=LESSON_URL)
    return LessonInfo("L-1001", **{**defaults, **values})


def test_english_snippet_with_name_subject_and_link():
    snippet = render_snippet(info(), GIF_URL, gif_info())
    assert isinstance(snippet, Snippet) and snippet.locale == "en"
    assert "Anna&#39;s best moments from the Maths lesson" in snippet.html
    tags = parse(snippet.html)
    assert tags.tags[0][0] == "table" and tags.tags[0][1]["lang"] == "en"
    assert tags.tags[0][1]["role"] == "presentation"
    hrefs = [a["href"] for a in tags.named("a")]
    assert LESSON_URL in hrefs and GIF_URL in hrefs
    assert MESSAGES["en"]["lesson_link"] in snippet.html


@pytest.mark.parametrize("locale", ["ru", "ru-RU", "RU", "ru_RU"])
def test_russian_snippet_is_chosen_by_the_language_part(locale):
    snippet = render_snippet(info(locale=locale), GIF_URL, gif_info())
    assert snippet.locale == "ru"
    assert "Anna: лучшие моменты урока «Maths»" in snippet.html
    assert "Открыть урок" in snippet.html
    assert parse(snippet.html).tags[0][1]["lang"] == "ru"
    assert "best moments" not in snippet.html and "best moments" not in snippet.text
    assert "Anna: лучшие моменты урока «Maths»" in snippet.text


@pytest.mark.parametrize("locale", ["en", "en-GB", "de-DE", "pt-BR", "", "zz"])
def test_other_locales_get_english(locale):
    assert render_snippet(info(locale=locale), GIF_URL, None).locale == "en"


def test_default_locale_is_configurable():
    assert choose_locale("de", default="ru") == "ru"
    snippet = render_snippet(info(locale="de"), GIF_URL, None, EmailOptions(default_locale="ru"))
    assert snippet.locale == "ru"


@pytest.mark.parametrize(
    "locale, expected",
    [
        ("en", "Your child&#39;s best moments from the lesson"),
        ("ru", "Лучшие моменты вашего ребёнка на уроке"),
    ],
)
def test_missing_metadata_falls_back_to_neutral_wording(locale, expected):
    snippet = render_snippet(LessonInfo("L-1001", locale=locale), GIF_URL, None)
    assert expected in snippet.html
    assert expected.replace("&#39;", "'") in snippet.text
    for output in (snippet.html, snippet.text):
        assert "None" not in output and "{name}" not in output and "{subject}" not in output
    # No lesson link: no button, only the GIF's own link.
    assert [a["href"] for a in parse(snippet.html).tags if a[0] == "a" for a in [a[1]]] == [GIF_URL]
    assert MESSAGES[locale]["lesson_link"] not in snippet.text


def test_blank_name_counts_as_missing_and_subject_alone_is_used():
    snippet = render_snippet(info(student_name="   ", subject="Chess"), GIF_URL, None)
    assert "Your child&#39;s best moments from the Chess lesson" in snippet.html
    alt = parse(snippet.html).named("img")[0]["alt"]
    assert alt == MESSAGES["en"]["alt"]


@pytest.mark.parametrize(
    ("locale", "age_group", "words", "not_words"),
    [
        ("en", "adult", ["Your best moments from the Chess lesson", "when you smiled", "You smiling during"],
         ["child"]),
        ("ru", "adult", ["Ваши лучшие моменты на уроке «Chess»", "когда вы улыбались", "Вы улыбаетесь на уроке"],
         ["ребён"]),
        ("en", "child", ["Your child&#39;s best moments from the Chess lesson", "when your child smiled"], ["when you smiled"]),
    ],
)
def test_an_adult_students_snippet_speaks_to_the_student_not_about_a_child(locale, age_group, words, not_words):
    # Before: an adult student's email (the demo's Ada) read "A few moments when your child
    # smiled", "Your child smiling during the lesson": the adult rule made her GIF, the words
    # were still a parent's.
    for snippet in (render_snippet(info(student_name=None, subject="Chess", locale=locale, student_age_group=age_group),
                                   GIF_URL, None),
                    render_snippet(info(student_name=None, subject="Chess", locale=locale), GIF_URL, None,
                                   student_age_group=age_group)):
        for word in words:
            assert word in snippet.html
            assert word.replace("&#39;", "'") in snippet.text or word.startswith(("You smiling", "Вы улыб"))
        for word in not_words:
            assert word not in snippet.html and word not in snippet.text
    named = render_snippet(info(subject="Chess", student_age_group="adult"), GIF_URL, None)
    assert parse(named.html).named("img")[0]["alt"].endswith(" smiling during the lesson")
    assert "child" not in named.html


@pytest.mark.parametrize(
    "base", ["https://cdn.example.com/h?sig=s3cret", "https://cdn.example.com/h#top", "https://u:s3cret@cdn.example.com/h",
             "https://cdn.example.com/h?"],
)
def test_a_public_base_url_with_a_query_fragment_or_password_is_refused_without_its_value(base):
    # Before: accepted, and every GIF's URL became https://cdn.example.com/h?sig=s3cret/L-1/x.gif
    # (no such path: a broken image in every email), or carried user:password into every email.
    with pytest.raises(ValueError, match="without a query") as raised:
        EmailOptions(public_base_url=base)
    assert "s3cret" not in str(raised.value)
    assert EmailOptions(public_base_url="https://cdn.example.com/h/").public_base_url


def test_user_data_is_escaped():
    name = '"><script>alert(1)</script>'
    subject = "<b onmouseover=alert(2)>Maths</b> & 'more'"
    snippet = render_snippet(info(student_name=name, subject=subject), GIF_URL, None)
    lowered = snippet.html.lower()
    assert "<script" not in lowered and "<b " not in lowered
    assert "&lt;script&gt;" in snippet.html and "&amp;" in snippet.html
    tags = parse(snippet.html)
    assert {tag for tag, _ in tags.tags} <= {"table", "tbody", "tr", "td", "a", "img"}
    img = tags.named("img")[0]
    assert img["alt"].startswith(name)  # the parsed attribute holds the name as text
    # The plain-text version is text: the name appears as given, not as entities.
    assert name in snippet.text and "&lt;" not in snippet.text


def test_control_characters_and_newlines_in_names_do_not_break_lines():
    snippet = render_snippet(info(student_name="Anna\nFake line\x07"), GIF_URL, None)
    assert snippet.text.splitlines()[0] == "Anna Fake line's best moments from the Maths lesson"


def test_css_is_inlined():
    snippet = render_snippet(info(), GIF_URL, gif_info())
    assert "<style" not in snippet.html.lower() and "<link" not in snippet.html.lower()
    tags = parse(snippet.html)
    for tag, attrs in tags.tags:
        if tag in ("table", "td", "img", "a"):
            assert attrs.get("style"), f"<{tag}> has no inline style"
    assert "font-family" in tags.tags[0][1]["style"]
    assert "max-width: 100%" in tags.named("img")[0]["style"]


def test_img_has_absolute_src_size_and_alt():
    img = parse(render_snippet(info(), GIF_URL, gif_info()).html).named("img")
    assert len(img) == 1
    assert img[0]["src"] == GIF_URL
    assert (img[0]["width"], img[0]["height"]) == ("300", "300")
    assert img[0]["alt"] == "Anna smiling during the lesson"
    ru = parse(render_snippet(info(locale="ru"), GIF_URL, gif_info()).html).named("img")[0]
    assert ru["alt"] == "Anna улыбается на уроке"


def test_img_size_follows_the_gif_and_options():
    def size(gif, **options):
        img = parse(render_snippet(info(), GIF_URL, gif, EmailOptions(**options)).html).named("img")[0]
        return int(img["width"]), int(img["height"])

    assert size(None) == (300, 300)
    assert size(gif_info(160, 160)) == (160, 160)  # a small GIF is not blown up ...
    assert size(gif_info(160, 160), upscale=True) == (300, 300)  # ... unless asked
    assert size(gif_info(360, 240)) == (300, 200)
    assert size(gif_info(), display_width=240) == (240, 240)


@pytest.mark.parametrize(
    "url",
    [
        "L-1001/x.gif",
        "/highlights/L-1001/x.gif",
        "//cdn.example.com/x.gif",
        "cdn.example.com/x.gif",
        "https://",
        "ftp://cdn.example.com/x.gif",
        "javascript:alert(1)",
        "data:image/gif;base64,R0lGOD",
        "file:x.gif",
        "https://cdn.example.com/a b.gif",
        'https://cdn.example.com/x.gif"onerror="alert(1)',
        "",
    ],
)
def test_non_absolute_or_unsafe_gif_urls_are_refused(url):
    with pytest.raises(ValueError, match="GIF URL"):
        render_snippet(info(), url, None)


@pytest.mark.parametrize(
    "url", [GIF_URL, "http://localhost:8000/L-1/x.gif", "file:///data/out/L-1001/x.gif"]
)
def test_absolute_urls_are_accepted(url):
    assert check_absolute_url(url) == url
    assert parse(render_snippet(info(), url, None).html).named("img")[0]["src"] == url


def test_lesson_url_that_is_not_a_web_link_is_left_out():
    snippet = render_snippet(info(lesson_url="javascript:alert(1)"), GIF_URL, None)
    assert "javascript" not in snippet.html and "javascript" not in snippet.text
    assert MESSAGES["en"]["lesson_link"] not in snippet.html


def test_snippet_stays_far_under_gmails_clipping_limit():
    worst = info(student_name="Ж" * 5000, subject="<&>" * 2000, lesson_url=LESSON_URL + "x" * 500)
    for locale in ("en", "ru"):
        snippet = render_snippet(worst.__class__(**{**worst.__dict__, "locale": locale}), GIF_URL, gif_info())
        assert len(snippet.html.encode("utf-8")) < 12_000 < GMAIL_CLIP_BYTES
        assert "…" in snippet.html  # the runaway name was cut


def test_plain_text_version():
    snippet = render_snippet(info(), GIF_URL, gif_info())
    lines = snippet.text.splitlines()
    assert lines[0] == "Anna's best moments from the Maths lesson"
    assert f"See the moments: {GIF_URL}" in lines
    assert f"Open the lesson: {LESSON_URL}" in lines  # & stays &, it is text
    assert MESSAGES["en"]["note"] in lines
    assert "<" not in snippet.text and "&amp;" not in snippet.text
    ru = render_snippet(info(locale="ru-RU", lesson_url=None), GIF_URL, None).text
    assert f"Посмотреть моменты: {GIF_URL}" in ru and "Открыть урок" not in ru


def test_every_language_has_the_same_messages():
    keys = set(MESSAGES["en"])
    for language, messages in MESSAGES.items():
        assert set(messages) == keys, language
        assert all("<" not in text for text in messages.values()), "messages are plain text"


def test_options_defaults_and_validation(tmp_path):
    options = EmailOptions()
    assert options.display_width == 300 and options.default_locale == "en"
    assert options.templates == TEMPLATES_DIR and (TEMPLATES_DIR / "snippet.html.j2").is_file()
    for bad in (dict(display_width=0), dict(default_locale="xx"), dict(public_base_url="cdn.example.com/h")):
        with pytest.raises(ValueError):
            EmailOptions(**bad)
    # Another templates folder restyles the snippet without code changes.
    for name in ("snippet.html.j2", "snippet.txt.j2"):
        (tmp_path / name).write_text((TEMPLATES_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "snippet.css").write_text(".hl-title { color: #ff0000; }", encoding="utf-8")
    html = render_snippet(info(), GIF_URL, None, EmailOptions(templates_dir=tmp_path)).html
    assert "color: #ff0000" in html


def test_options_load_from_config_values():
    from highlights.config import settings_from_env

    settings = settings_from_env(
        {
            "HIGHLIGHTS_PUBLIC_BASE_URL": "https://cdn.example.com/h/",
            "HIGHLIGHTS_EMAIL__DISPLAY_WIDTH": "240",
            "HIGHLIGHTS_EMAIL__UPSCALE": "yes",
            "HIGHLIGHTS_EMAIL__TEMPLATES_DIR": str(TEMPLATES_DIR),
        }
    )
    assert settings.email == EmailOptions("https://cdn.example.com/h/", 240, True, TEMPLATES_DIR)


def test_module_examples():
    failures, _ = doctest.testmod(highlights.stages.snippet)
    assert failures == 0
