"""Headless Chromium for the tests that render a page in a real browser (the report, the
dashboard, the labeller); those tests skip where no ``chromium`` is installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(binary: str, profile: Path, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
    """Headless Chromium with the flags that keep it off the (closed) network; the whole process
    group is killed if it hangs."""
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {timeout:.0f} s: {' '.join(args)}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def screenshot_rgb(binary: str, page: Path, folder: Path, width: int, height: int) -> np.ndarray:
    """A headless-Chromium screenshot of ``page`` at ``width`` x ``height``, as an RGB array."""
    png = folder / f"{page.stem}.png"
    shot = run_chromium(binary, folder / "profile-shot", f"--screenshot={png}", f"--window-size={width},{height}",
                        page.as_uri())  # fmt: skip
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.shape[:2] == (height, width)
    return rgb
