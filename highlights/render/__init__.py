"""Rendering for people: the Jinja environment and its templates, shipped as package data.

``highlights/render/templates/`` holds every template the job renders:

* ``snippet.html.j2`` / ``snippet.txt.j2`` / ``snippet.css``: the email snippet
  (:mod:`highlights.stages.snippet`);
* ``report.html.j2``: the per-lesson report (:mod:`highlights.stages.report`);
* ``dashboard.html.j2``: the night's overview (:mod:`highlights.tools.dashboard`).

They are package data (``pyproject.toml``), so an installed wheel renders exactly as a checkout
does. A deployment may point ``[email] templates_dir`` at a copy of this folder to restyle the
snippet and the report without touching the code.
"""

from highlights.render.environment import TEMPLATES_DIR, inline_css, template_environment

__all__ = ["TEMPLATES_DIR", "inline_css", "template_environment"]
