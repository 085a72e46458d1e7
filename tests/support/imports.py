"""What a piece of code imports, seen from a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

from support.paths import REPO_ROOT


def imports_torch(code: str) -> bool:
    """Whether running ``code`` in a fresh interpreter (this checkout first on the path) imports torch."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    env = {k: v for k, v in env.items() if not k.startswith("HIGHLIGHTS_")}
    probe = f"{code}\nimport sys\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == "True"
