#!/usr/bin/env bash
# The two entry points of the README: `bash scripts/dev.sh demo` and `bash scripts/dev.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The venv bootstrap.sh installs into ($VENV, default .venv): its tools first on PATH (a git
# worktree may name its main checkout's venv instead of building its own).
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
export VENV
bash scripts/bootstrap.sh
export PATH="$VENV/bin:$PATH"
case "${1:-}" in
  demo)
    shift
    # The shipped demo lesson (an adult student, the astronaut: a GIF of her smiles), built once.
    [ -f fixtures/demo/student-2.webm ] && [ -f fixtures/demo/teacher-1.mp4 ] || python scripts/make_demo_lesson.py fixtures/demo
    status=0
    highlights run fixtures/demo/manifest.csv --lessons fixtures/demo/lessons.csv --out out/demo "$@" || status=$?
    # With ../shared/data: a lesson of real children's and parents' faces, which gets a GIF.
    if [ -f out/demo-input/manifest.csv ] || python scripts/make_demo_lesson.py --real-faces out/demo-input; then
      highlights run out/demo-input/manifest.csv --lessons out/demo-input/lessons.csv --out out/demo "$@" || status=$?
    fi
    echo "demo: outputs in out/demo/<lesson_id>/ (report.html, snippet.html, the GIF), database out/demo/.highlights/highlights.sqlite"
    exit $status
    ;;
  test)
    shift
    python -m pytest "$@"
    ;;
  lint)
    # The code's shape: ruff, and the architecture's contracts (pyproject.toml: layers, pure stages, core values).
    ruff check highlights tests bench scripts
    lint-imports
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test|lint [args...]" >&2
    exit 2
    ;;
esac
