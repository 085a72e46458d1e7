#!/usr/bin/env bash
# The two entry points of the README: `bash scripts/dev.sh demo` and `bash scripts/dev.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
case "${1:-}" in
  demo)
    shift
    python scripts/make_demo_lesson.py fixtures/demo
    highlights run fixtures/demo/manifest.csv --lessons fixtures/demo/lessons.csv \
      --out out/demo --db sqlite:///out/demo/highlights.sqlite "$@"
    ;;
  test)
    shift
    python -m pytest "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test [args...]" >&2
    exit 2
    ;;
esac
