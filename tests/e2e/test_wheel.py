"""The package as a Ray cluster's workers would install it: the built wheel, in a clean virtual
environment outside the checkout, runs the demo lesson to a GIF, a snippet and a report.

The wheel is installed for real (``pip install --no-deps``); its dependencies (torch, PyAV,
OpenCV ... 1.5 GB) are made visible from the test's own environment by a path file, since
installing them again would take minutes and gigabytes and test pip rather than the package.
The checkout is never on the path: the command runs from an empty folder, and a path file adds
no ``.pth`` hooks (the checkout's own editable install is not active there).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from support.paths import REPO_ROOT

pytestmark = pytest.mark.slow

PACKAGE_DATA = (
    "highlights/py.typed",
    "highlights/render/templates/snippet.html.j2",
    "highlights/render/templates/snippet.txt.j2",
    "highlights/render/templates/snippet.css",
    "highlights/render/templates/report.html.j2",
    "highlights/render/templates/dashboard.html.j2",
    "highlights/models/weights/smile.pt",
    "highlights/models/weights/age.pt",
    "highlights/models/weights/checksums.json",
    "highlights/persist/migrations/script.py.mako",
    "highlights/tools/label/templates/index.html",
    "highlights/tools/label/static/label.js",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO_ROOT)], check=True, cwd=out)
    [built] = out.glob("highlights-*.whl")
    return built


def test_the_wheel_carries_its_templates_weights_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not any(name.startswith(("tests/", "bench/", "scripts/", "fixtures/")) for name in names)


def test_the_installed_wheel_runs_the_demo_lesson_to_a_gif(wheel: Path, tmp_path: Path) -> None:
    pytest.importorskip("skimage", reason="the demo lesson is drawn from scikit-image's astronaut photo")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "highlights-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True)

    # The demo lesson, drawn here (the script imports the checkout's package: this process's).
    spec = importlib.util.spec_from_file_location("make_demo_lesson", REPO_ROOT / "scripts" / "make_demo_lesson.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    demo = tmp_path / "demo"
    module.write_demo(demo)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIGHLIGHTS_", "PYTHON"))}
    where = subprocess.run([str(python), "-c", "import highlights; print(highlights.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(venv), f"imported {where}, not the installed wheel"

    out = tmp_path / "out"
    run = subprocess.run([str(venv / "bin" / "highlights"), "run", str(demo / "manifest.csv"), "--lessons",
                          str(demo / "lessons.csv"), "--out", str(out), "--workers", "0", "--no-progress"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((out / "demo-0001" / "result.json").read_text())
    assert result["status"] == "ok" and len(result["frames"]) >= 3
    assert (out / "demo-0001" / result["gif"]).read_bytes()[:6] == b"GIF89a"
    snippet = (out / "demo-0001" / "snippet.html").read_text()
    assert result["gif"] in snippet and "style=" in snippet  # rendered from the packaged templates, CSS inlined
    assert "<svg" in (out / "demo-0001" / "report.html").read_text()
