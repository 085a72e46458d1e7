#!/usr/bin/env python
"""Labelling 100+ faces of a lesson through the page, driven by headless Chromium: the tool's share
of the time (everything but a person's looking and clicking), and the server's response times.

    python bench/labelling.py                          # builds and runs the demo lesson first (~1 min)
    python bench/labelling.py --out OUT --manifest M   # a lesson already processed
    python bench/labelling.py --screenshot docs/label.png   # also the README's screenshot (demo only)

Four batches of 27 faces over the whole lesson (108 faces), the model's pre-labels, two
corrections a batch, saved with Enter; each batch is timed from the key press to the next batch
shown with all its images loaded. Server times are the ``Server-Timing`` the app adds to each
response, read from the browser's resource timing. Needs chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_demo(folder: Path) -> tuple[Path, Path]:
    from highlights.batch.run import run_manifest
    from highlights.config import Settings

    spec = importlib.util.spec_from_file_location("make_demo_lesson", ROOT / "scripts" / "make_demo_lesson.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_demo(folder / "in")
    run_manifest(folder / "in" / "manifest.csv", Settings(out_dir=folder / "out"))
    return folder / "out", folder / "in" / "manifest.csv"


def shrink_png(path: Path, width: int = 1000, colours: int = 96) -> None:
    """A small PNG for the README: scaled down, a shared palette (about 150 KB from 800)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--lesson", default="demo-0001")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--screenshot", type=Path, help="PNG of the main view (take it of the demo lesson only)")
    args = parser.parse_args()

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from highlights.tools.label.app import LOOPBACK_HOSTS, create_app
    from highlights.tools.label.session import Labeller

    work = Path(tempfile.mkdtemp(prefix="bench-label-"))
    try:
        if args.out is None:
            started = time.perf_counter()
            out, manifest = build_demo(work)
            print(f"built and ran the demo lesson in {time.perf_counter() - started:.0f} s")
        else:
            out, manifest = args.out, args.manifest
        labeller = Labeller(out, work / "labels", [manifest], by="bench")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        app = create_app(labeller, allowed_hosts=LOOPBACK_HOSTS)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
        try:
            wait = WebDriverWait(browser, 60)
            opened = time.perf_counter()
            browser.get(f"http://127.0.0.1:{port}/")
            wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
            Select(browser.find_element(By.ID, "lesson")).select_by_value(args.lesson)
            all_loaded = ("const i = [...document.querySelectorAll(arguments[0] + ' img')];"
                          "return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0);")  # fmt: skip
            wait.until(lambda b: b.execute_script(all_loaded, ".thumb"))
            strip_s = time.perf_counter() - opened
            faces, batch_times = 0, []
            browser.find_element(By.ID, "new-batch").click()
            wait.until(lambda b: b.execute_script(all_loaded, ".face"))
            first_batch_s = time.perf_counter() - opened - strip_s
            if args.screenshot:
                tiles = browser.find_elements(By.CSS_SELECTOR, ".face")
                tiles[-1].click()
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                browser.set_window_size(1400, 1300)
                time.sleep(0.3)
                browser.save_screenshot(str(args.screenshot))
                shrink_png(args.screenshot)
                tiles[-1].click()
            started = time.perf_counter()
            for _ in range(args.batches):
                tiles = browser.find_elements(By.CSS_SELECTOR, ".face")
                if not tiles:
                    break
                for tile in tiles[-2:]:  # two corrections
                    tile.click()
                faces += len(tiles)
                batch_started = time.perf_counter()
                ids = browser.execute_script("return state.batch.batch")
                browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
                wait.until(lambda b, ids=ids: b.execute_script("return !state.busy && (!state.batch || state.batch.batch !== arguments[0])", ids))
                wait.until(lambda b: not b.find_elements(By.CSS_SELECTOR, ".face") or b.execute_script(all_loaded, ".face"))
                batch_times.append(time.perf_counter() - batch_started)
            total = time.perf_counter() - started
            entries = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => ({name: new URL(e.name).pathname,"
                " total: e.duration, server: (e.serverTiming.find(s => s.name === 'app') || {}).duration}))")
        finally:
            browser.quit()
            server.should_exit = True
            thread.join(10)

        rows = (work / "labels" / "labels.csv").read_text().count("\n") - 1
        print(f"page open to strip loaded: {strip_s:.2f} s; first batch shown: {first_batch_s:.2f} s")
        print(f"{faces} faces in {len(batch_times)} batches saved through the page in {total:.2f} s "
              f"({rows} rows in labels.csv); per save + next batch: "
              + ", ".join(f"{t:.2f}" for t in batch_times) + " s")
        groups: dict[str, list[tuple[float, float]]] = {}
        for e in entries:
            name = e["name"]
            kind = ("thumbnail" if "/frames/" in name else "face image" if name.endswith(".jpg")
                    else "save" if name.endswith("/save") else "new batch" if name == "/api/batch"
                    else "lesson view" if name.startswith("/api/lessons/") and name.count("/") == 3
                    else name)  # fmt: skip
            if e["server"] is not None:
                groups.setdefault(kind, []).append((e["server"], e["total"]))
        print(f"{'request':<22} {'n':>4} {'server median ms':>17} {'server max ms':>14} {'browser median ms':>18}")
        for kind, values in sorted(groups.items()):
            server_ms = [v[0] for v in values]
            print(f"{kind:<22} {len(values):>4} {statistics.median(server_ms):>17.1f} {max(server_ms):>14.1f} "
                  f"{statistics.median(v[1] for v in values):>18.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
