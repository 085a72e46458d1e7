"""The labeller (``highlights label``): its folder, its logic, its HTTP guard, its page in a real
browser, and the loop back into training (``highlights train --init`` / ``highlights evaluate``).

The processed lessons are built here from the shipped demo's picture (scikit-image's astronaut
photo, public domain, ``scripts/make_demo_lesson.py``) and run through the real pipeline, so the
tests need nothing from ``../shared``: two 30-second lessons, about 15 s to build on 2 cores.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from highlights.batch.run import run_manifest
from highlights.config import Settings
from highlights.media.decode import read_frame_at
from highlights.media.synthetic import write_lesson_files, write_video
from highlights.models.preprocess import crop_square, face_model_input
from highlights.tools.label.session import Labeller, LabelRequestError
from highlights.tools.label.store import LABEL_COLUMNS, LabelsFolderError, LabelStore
from highlights.tools.training.datasets import LabelledImages, LabelsError, face_crops, load_labelled_folder
from highlights.tools.training.splits import validation_split

from support.chromium import chromium_binary
from support.paths import REPO_ROOT

LESSONS = ("label-a", "label-b")
SECONDS = 30


def _demo_script():
    spec = importlib.util.spec_from_file_location("make_demo_lesson", REPO_ROOT / "scripts" / "make_demo_lesson.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_demo_lesson", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> tuple[Path, list[Path]]:
    """OUT with two processed lessons of the demo's astronaut, and their manifests."""
    pytest.importorskip("skimage", reason="the lessons are drawn from scikit-image's astronaut photo")
    from skimage.data import astronaut

    demo = _demo_script()
    root = tmp_path_factory.mktemp("label")
    out = root / "out"
    picture, background = astronaut(), demo.room_background(np.random.default_rng(7))
    fps = 2.0  # the job samples 1 frame a second: 2 fps keeps encoding cheap
    lines = []
    for n, lesson_id in enumerate(LESSONS):
        folder = root / "in" / lesson_id
        folder.mkdir(parents=True)
        rng = np.random.default_rng(n)
        count = int(SECONDS * fps)
        write_video(folder / "student.webm", (demo.student_frame(picture, background, 40 * n + i / fps, rng) for i in range(count)),
                    fps=fps, codec="vp8")  # fmt: skip
        write_video(folder / "teacher.mp4", (demo.teacher_frame(i / fps) for i in range(count)), fps=fps, codec="h264")
        start = datetime(2026, 11, 20, 16, n, 0, tzinfo=timezone.utc)
        manifest, _ = write_lesson_files(folder, lesson_id, start, [("teacher.mp4", "teacher", 0.0, SECONDS),
                                                                    ("student.webm", "student", 0.0, SECONDS)], {})  # fmt: skip
        rows = manifest.read_text().splitlines()
        lines += [row.replace(",teacher.mp4,", f",{lesson_id}/teacher.mp4,").replace(",student.webm,", f",{lesson_id}/student.webm,")
                  for row in rows[1:]]  # fmt: skip
        header = rows[0]
    manifest = root / "in" / "manifest.csv"
    manifest.write_text("\n".join([header, *lines]) + "\n")
    results = run_manifest(manifest, Settings(out_dir=out))  # models loaded once for both lessons
    assert [r.status in ("ok", "no_highlight") for r in results] == [True, True], [r.reason for r in results]
    manifests = [manifest]
    return out, manifests


@pytest.fixture
def labeller(processed, tmp_path) -> Labeller:
    out, manifests = processed
    return Labeller(out, tmp_path / "labels", manifests, by="tester")


def _rows(labels_dir: Path) -> list[dict[str, str]]:
    with open(labels_dir / "labels.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------ the folder


def test_lessons_are_found_with_their_faces_and_recordings(labeller, processed):
    out, _ = processed
    (out / ".highlights").mkdir(exist_ok=True)  # the job's own files: never a lesson
    labeller.reload()
    lessons = {item["lesson_id"]: item for item in labeller.lessons()}
    assert set(lessons) == set(LESSONS)
    for item in lessons.values():
        assert item["recordings"] and item["frames"] == SECONDS
        assert item["faces"] >= 0.9 * SECONDS  # the astronaut is found in nearly every frame
        assert item["labelled"] == {"age": 0, "smile": 0, "adult_present": 0}


def test_frames_and_faces_hold_the_pipelines_frame_ref(labeller):
    # The labeller had a FrameRef of its own, and a Face repeating the frame's fields.
    from highlights.core.frameref import FRAME_COLUMNS, FrameRef

    lesson = labeller.lesson("label-a")
    assert lesson.frames and all(type(f) is FrameRef for f in lesson.frames)
    rows = lesson.scores.drop_duplicates("frame")[list(FRAME_COLUMNS)].to_dict("records")
    assert [f.to_record() for f in lesson.frames] == rows
    assert lesson.faces and all(face.ref is lesson.frame(face.frame) for face in lesson.faces)
    face = lesson.faces[0]
    assert (face.t, face.offset_s, face.source) == (face.ref.t, face.ref.offset_s, face.ref.source)
    assert lesson.path_of(face) == lesson.path_of(face.ref) and lesson.path_of(face).name == face.source.name


def test_a_saved_batch_is_the_folder_train_reads_with_the_inference_crop(labeller, tmp_path):
    batch = labeller.new_batch("label-a", 0, 12, task="age", mode="model")
    faces = batch["faces"]
    assert 10 <= len(faces) <= 13
    assert all(f["label"] == 0 for f in faces)  # the shipped model calls the astronaut an adult
    p_adult = [1 - f["p"] for f in faces]
    assert p_adult == sorted(p_adult, reverse=True)  # "model": most certain adult first
    labels = [f["label"] for f in faces]
    labels[0] = 1  # one correction
    labels[1] = "skip"
    saved = labeller.save_batch(batch["batch"], labels)
    assert saved == {"saved": len(faces) - 1, "positive": 1, "skipped": 1, "task": "age"}

    rows = _rows(tmp_path / "labels")
    assert tuple(rows[0]) == LABEL_COLUMNS
    assert [r["label"] for r in rows] == ["1"] + ["0"] * (len(faces) - 2)
    assert {r["task"] for r in rows} == {"age"} and {r["by"] for r in rows} == {"tester"}
    assert {r["lesson_id"] for r in rows} == {"label-a"}
    assert all(0 <= float(r["t"]) <= 12 for r in rows)
    assert (tmp_path / "labels" / "skipped.csv").read_text().count("\n") == 2

    # The crop on disk is the recipe's square of the scores.csv box in the recording's frame,
    # and the trainer's input from it is exactly the pipeline's model input.
    lesson = labeller.lesson("label-a")
    first = next(f for f in lesson.faces if f.frame == faces[0]["frame"] and f.face == faces[0]["face"])
    frame = read_frame_at(lesson.path_of(first), first.offset_s)
    on_disk = cv2.cvtColor(cv2.imread(str(tmp_path / "labels" / rows[0]["file"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(on_disk, crop_square(frame, first.box))
    images = load_labelled_folder(tmp_path / "labels", "age")
    assert len(images) == len(faces) - 1 and images.labels.tolist() == [1] + [0] * (len(faces) - 2)
    assert set(images.lesson) == {"label-a"} and images.whole.all()
    crops = face_crops(images.paths[:1], cache_dir=tmp_path / "cache", whole=images.whole[:1])
    assert np.array_equal(crops.crops[0], face_model_input(frame, first.box))
    with pytest.raises(LabelsError, match="no smile labels"):
        load_labelled_folder(tmp_path / "labels", "smile")
    assert labeller.lessons()[0]["labelled"]["age"] == len(faces) - 1


def test_a_face_is_never_offered_twice_unless_asked(labeller):
    first = labeller.new_batch("label-a", 0, SECONDS, task="age", mode="negative")
    second = labeller.new_batch("label-a", 0, SECONDS, task="age", mode="negative")  # another tab
    keys = lambda batch: {f["key"] for f in batch["faces"]}
    assert keys(first) and keys(second) and not keys(first) & keys(second)
    labeller.save_batch(first["batch"], [f["label"] for f in first["faces"]])
    labeller.release_batch(second["batch"])
    again = labeller.new_batch("label-a", 0, SECONDS, task="age", mode="negative")
    assert not keys(again) & keys(first)  # saved: not offered again
    assert keys(again) == keys(second)  # released: offered again, in lesson order
    labeller.release_batch(again["batch"])
    smile = labeller.new_batch("label-a", 0, SECONDS, task="smile", mode="model")
    assert keys(smile) & keys(first)  # another task: still to do
    labeller.release_batch(smile["batch"])
    relabel = labeller.new_batch("label-a", 0, SECONDS, task="age", mode="positive", relabel=True)
    current = {f["key"]: f["current"] for f in relabel["faces"]}
    assert [current[k] for k in sorted(keys(first))] == [0] * len(first["faces"])
    assert all(f["label"] == 0 for f in relabel["faces"] if f["key"] in keys(first))  # shows the current label
    with pytest.raises(LabelRequestError):
        labeller.save_batch(first["batch"], [])  # saved batches are closed


def test_two_tabs_saving_at_once_both_land(labeller, tmp_path):
    batches = [labeller.new_batch("label-b", 0, SECONDS, task="smile", mode="model") for _ in range(2)]
    threads = [threading.Thread(target=labeller.save_batch, args=(b["batch"], [1] * len(b["faces"]))) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = _rows(tmp_path / "labels")
    assert len(rows) == sum(len(b["faces"]) for b in batches)
    assert len({r["file"] for r in rows}) == len(rows)
    # A second process (another `highlights label` on the same folder) appends under the same lock.
    other = Labeller(labeller.out_dir, tmp_path / "labels", labeller.manifests, by="other")
    batch = other.new_batch("label-b", 0, SECONDS, task="age", mode="model")
    other.save_batch(batch["batch"], [0] * len(batch["faces"]))
    assert len(_rows(tmp_path / "labels")) == len(rows) + len(batch["faces"])


def test_frame_range_labels_write_each_sampled_frame(labeller, tmp_path):
    result = labeller.label_frames("label-b", 5, 9.5, 1)
    assert result["saved"] == 5  # t = 5, 6, 7, 8, 9
    labeller.label_frames("label-b", 8, 8, 0)  # a correction: the last row wins
    rows = [r for r in _rows(tmp_path / "labels") if r["task"] == "adult_present"]
    assert [(r["t"], r["label"]) for r in rows] == [("5", "1"), ("6", "1"), ("7", "1"), ("8", "1"), ("9", "1"), ("8", "0")]
    image = cv2.imread(str(tmp_path / "labels" / rows[0]["file"]))
    assert image is not None and image.shape[:2] == (360, 480)
    marks = labeller.lesson_view("label-b")["frame_labels"]
    assert [(m["t"], m["label"]) for m in marks] == [(5.0, 1), (6.0, 1), (7.0, 1), (8.0, 0), (9.0, 1)]
    with pytest.raises(LabelRequestError):
        labeller.label_frames("label-b", 0, 1, 2)


def test_the_labels_folder_is_never_inside_the_repository(tmp_path):
    with pytest.raises(LabelsFolderError, match="inside the repository"):
        LabelStore(REPO_ROOT / "out" / "labels-here")
    store = LabelStore(tmp_path / "private")
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o700  # children's faces: owner only
    assert store.rows() == []


def test_labeller_rows_read_for_one_task_last_row_wins_errors_name_the_row(tmp_path):
    (tmp_path / "faces").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "faces" / name), np.full((40, 40, 3), 128, np.uint8))
    header = ",".join(LABEL_COLUMNS)
    (tmp_path / "labels.csv").write_text(
        f"{header}\nfaces/a.png,1,age,x,2026-01-01,L1,1\nfaces/a.png,1,smile,x,2026-01-01,L1,1\n"
        f"faces/b.png,1,age,x,2026-01-01,L2,2\nfaces/a.png,0,age,y,2026-01-02,L1,1\n"
    )
    images = load_labelled_folder(tmp_path, "age")
    assert [p.name for p in images.paths] == ["b.png", "a.png"] and images.labels.tolist() == [1, 0]
    assert images.lesson == ["L2", "L1"]
    (tmp_path / "labels.csv").write_text(f"{header}\nfaces/a.png,1,age,x,2026,L1,1\nfaces/b.png,yes,age,x,2026,L1,2\n")
    with pytest.raises(LabelsError, match=r"row 3: label 'yes'"):
        load_labelled_folder(tmp_path, "age")


def test_validation_split_never_puts_one_lesson_on_both_sides():
    n_lessons, per_lesson = 7, 40
    lesson = [f"L{i}" for i in range(n_lessons) for _ in range(per_lesson)]
    photos = 50  # rows of a photo set (no lesson) mixed in: split as before
    images = LabelledImages(
        [Path(f"{i}.png") for i in range(len(lesson) + photos)],
        np.arange(len(lesson) + photos) % 2,
        ["x"] * (len(lesson) + photos),
        lesson=lesson + [""] * photos,
    )
    train, val = validation_split(images, seed=3, fraction=0.3)
    assert len(set(train) | set(val)) == len(images) and not set(train) & set(val)
    train_lessons = {images.lesson[i] for i in train if images.lesson[i]}
    val_lessons = {images.lesson[i] for i in val if images.lesson[i]}
    assert not train_lessons & val_lessons and len(val_lessons) == 2  # round(0.3 * 7)
    assert any(not images.lesson[i] for i in val)  # the photo rows are split too
    again_train, again_val = validation_split(images.subset(np.arange(len(images))[::-1]), seed=3, fraction=0.3)
    assert {images.subset(np.arange(len(images))[::-1]).lesson[i] for i in again_val if i < len(lesson) + photos} - {""} == val_lessons
    one = LabelledImages([Path("a"), Path("b")], np.array([0, 1]), ["x", "x"], lesson=["L1", "L1"])
    assert validation_split(one)[1].tolist() == []  # one lesson: everything trains


# ------------------------------------------------------------------------------ the HTTP layer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """uvicorn serving the app in a thread of the test process."""

    def __init__(self, labeller: Labeller, token: str | None = None, allowed_hosts=None) -> None:
        import uvicorn

        from highlights.tools.label.app import LOOPBACK_HOSTS, create_app

        self.port = _free_port()
        app = create_app(labeller, token=token, allowed_hosts=LOOPBACK_HOSTS if allowed_hosts is None else allowed_hosts)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the labeller's server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _request(url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_http_token_json_only_posts_and_loopback_host_check(labeller):
    with _Server(labeller, token="s3cret") as base:
        assert _request(base + "/api/lessons")[0] == 401
        status, _, headers = _request(base + "/?token=s3cret")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
        status, body, headers = _request(base + "/api/lessons", headers={"Cookie": cookie})
        assert status == 200 and b"label-a" in body
        assert headers["cache-control"] == "no-store" and headers["server-timing"].startswith("app;dur=")
        assert _request(base + "/api/lessons", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert _request(base + "/api/lessons", headers={"Authorization": "Bearer wrong"})[0] == 401
        form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        assert _request(base + "/api/frame-labels", b"lesson_id=label-a", form)[0] == 415
        status, body, _ = _request(base + "/api/batch", b'{"lesson_id": "nope", "start": 0, "end": 5}',
                                   {"Cookie": cookie, "Content-Type": "application/json"})  # fmt: skip
        assert status == 404 and b"nope" in body
    with _Server(labeller) as base:  # loopback, no token: only loopback Host names are answered
        assert _request(base + "/api/lessons")[0] == 200
        assert _request(base + "/api/lessons", headers={"Host": "evil.example:80"})[0] == 400


def test_a_labels_folder_that_cannot_be_written_answers_json_and_keeps_the_batch(labeller, tmp_path, monkeypatch):
    """Saving into a labels folder that turned read-only (or a full disk) was a bare 500 page
    and a traceback with the folder's path; now a JSON error the page shows, naming only the
    file, and the batch saves once the folder is fixed."""
    import json

    batch = labeller.new_batch("label-a", 0, 12, task="age", mode="model")
    real_write = labeller.store.write_face

    def refuse(relative, square_rgb):
        raise PermissionError(13, "Permission denied", str(labeller.store.root / relative))

    monkeypatch.setattr(labeller.store, "write_face", refuse)
    body = json.dumps({"labels": [f["label"] for f in batch["faces"]]}).encode()
    headers = {"Content-Type": "application/json"}
    with _Server(labeller) as base:
        status, answer, _ = _request(f"{base}/api/batch/{batch['batch']}/save", body, headers)
        assert status == 507
        error = json.loads(answer)["error"]
        assert error.startswith("the labels folder cannot be written (Permission denied: ") and "save again" in error
        assert str(tmp_path) not in error
        monkeypatch.setattr(labeller.store, "write_face", real_write)
        status, answer, _ = _request(f"{base}/api/batch/{batch['batch']}/save", body, headers)
        assert status == 200 and json.loads(answer)["saved"] == len(batch["faces"])


def test_serve_makes_a_token_when_bound_beyond_loopback(monkeypatch, labeller):
    import uvicorn

    from highlights.tools.label import app as app_module

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    app_module.serve(labeller, host="0.0.0.0", port=9999, on_ready=lambda url: seen.update(url=url))
    assert "?token=" in seen["url"] and len(seen["url"].split("?token=")[1]) >= 24
    assert seen["access_log"] is False  # the token is in a URL once: never in a log
    app_module.serve(labeller, host="127.0.0.1", port=9999, on_ready=lambda url: seen.update(url=url))
    assert seen["url"] == "http://127.0.0.1:9999/"


# ------------------------------------------------------------------------------ the browser


def _chrome():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium drives the page (requirements.txt)")
    from selenium.webdriver.chrome.service import Service

    binary = chromium_binary()
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("needs chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


def test_label_a_lesson_in_headless_chromium(labeller, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    labels = tmp_path / "labels"
    with _Server(labeller) as base:
        browser = _chrome()
        try:
            wait = WebDriverWait(browser, 30)
            browser.get(base + "/")
            wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
            Select(browser.find_element(By.ID, "lesson")).select_by_value("label-b")
            wait.until(lambda b: b.execute_script(
                "const t = [...document.querySelectorAll('.thumb')];"
                "return t.length > 20 && t[0].querySelector('figcaption span').textContent === '0:00' &&"
                " t.every(f => f.querySelector('img').complete && f.querySelector('img').naturalWidth > 0);"))  # fmt: skip
            thumbs = browser.find_elements(By.CSS_SELECTOR, ".thumb")
            start_t, end_t = float(thumbs[3].get_attribute("data-t")), float(thumbs[14].get_attribute("data-t"))
            thumbs[3].find_element(By.CSS_SELECTOR, ".set-start").click()
            thumbs[14].find_element(By.CSS_SELECTOR, ".set-end").click()
            assert browser.find_element(By.ID, "start").get_attribute("value") == str(round(start_t))
            assert len(browser.find_elements(By.CSS_SELECTOR, ".thumb.inside")) == 12

            assert browser.find_element(By.ID, "mode-model").is_selected()
            browser.find_element(By.ID, "new-batch").click()
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".face"))
            tiles = browser.find_elements(By.CSS_SELECTOR, ".face")
            assert len(tiles) == labeller.range_counts("label-b", round(start_t), round(end_t))["faces"] >= 10
            assert {t.find_element(By.CSS_SELECTOR, ".badge").text for t in tiles} == {"adult"}  # the model's pre-labels
            tiles[2].click()  # the one correction
            assert "pos" in tiles[2].get_attribute("class").split()
            assert tiles[2].find_element(By.CSS_SELECTOR, ".badge").text == "child"
            image = tiles[2].find_element(By.TAG_NAME, "img")
            assert browser.execute_script("return arguments[0].naturalWidth", image) == 128
            browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
            wait.until(lambda b: "Saved" in b.find_element(By.ID, "status").text or "Nothing left" in b.find_element(By.ID, "status").text)
            wait.until(lambda b: (labels / "labels.csv").is_file())

            rows = _rows(labels)
            assert len(rows) == len(tiles)
            assert sorted(r["label"] for r in rows) == ["0"] * (len(tiles) - 1) + ["1"]
            assert all(r["task"] == "age" and r["lesson_id"] == "label-b" for r in rows)
            assert all(round(start_t) <= float(r["t"]) <= round(end_t) for r in rows)
            for row in rows:
                crop = cv2.imread(str(labels / row["file"]))
                assert crop is not None and crop.shape[0] == crop.shape[1] >= 60
            assert f"labelled {len(rows)} child/adult" in Select(browser.find_element(By.ID, "lesson")).first_selected_option.text

            browser.find_element(By.ID, "frames-adult").click()
            wait.until(lambda b: "Labelled" in b.find_element(By.ID, "status").text)
            frame_rows = [r for r in _rows(labels) if r["task"] == "adult_present"]
            assert len(frame_rows) == round(end_t) - round(start_t) + 1
            assert {r["label"] for r in frame_rows} == {"1"} and all((labels / r["file"]).is_file() for r in frame_rows)
            wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".tick-adult")) == len(frame_rows))
            body = browser.find_element(By.TAG_NAME, "body")
            body.send_keys("o")  # the key takes a second press
            wait.until(lambda b: "Press o again" in b.find_element(By.ID, "status").text)
            body.send_keys("o")
            wait.until(lambda b: "as no adult" in b.find_element(By.ID, "status").text)
            wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".tick-noadult")) == len(frame_rows))
            assert [r["label"] for r in _rows(labels) if r["task"] == "adult_present"] == ["1"] * len(frame_rows) + ["0"] * len(frame_rows)

            browser.refresh()  # resumes where the user stopped
            wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
            assert Select(browser.find_element(By.ID, "lesson")).first_selected_option.get_attribute("value") == "label-b"
            assert browser.find_element(By.ID, "start").get_attribute("value") == str(round(start_t))
            assert browser.find_element(By.ID, "end").get_attribute("value") == str(round(end_t))
            logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert not logs, logs
        finally:
            browser.quit()


# ------------------------------------------------------------------------------ the loop


def test_fine_tune_from_the_shipped_weights_and_evaluate_on_held_out_lessons(processed, tmp_path):
    from highlights.cli import main
    from highlights.lesson.scorer import load_scorer
    from highlights.models.face_cnn import load_face_model

    out, manifests = processed
    labels = tmp_path / "labels"
    labeller = Labeller(out, labels, manifests, by="tester", batch_size=100)
    for lesson_id in LESSONS:  # both classes in each lesson, so each side can be scored
        batch = labeller.new_batch(lesson_id, 0, SECONDS, task="age", mode="negative")
        labeller.save_batch(batch["batch"], [f["frame"] % 2 for f in batch["faces"]])
    weights = tmp_path / "age-ft.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "age", "--init", "shipped", "--data", str(labels), "--out", str(weights),
                                  "--epochs", "2", "--batch-size", "16", "--threads", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output + str(result.exception)
    model = load_face_model("age", weights)
    split = model.meta["split"]
    assert split["method"] == "lesson" and len(split["validation_lessons"]) == 1
    assert model.meta["recipe"]["init"] == "age.pt"
    assert model.meta["data"]["whole_image_crops"] == model.meta["data"]["train"]["faces"] + model.meta["data"]["validation"]["faces"]
    held_out = split["validation_lessons"][0]
    held_out_faces = sum(1 for r in _rows(labels) if r["lesson_id"] == held_out)
    assert model.meta["data"]["validation"]["faces"] == held_out_faces

    result = runner.invoke(main, ["evaluate", "age", "--data", str(labels), "--weights", str(weights)])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert f"held-out lessons (none of their faces in training): {held_out}" in result.output
    assert f"faces: {held_out_faces} " in result.output

    # Point the job at the new weights.
    scorer = load_scorer(Settings(age_weights=weights))
    assert scorer.age_model.sha256 == model.sha256 and scorer.age_model.threshold == model.threshold


def test_cli_label_refuses_a_labels_folder_in_the_repository_and_serves_over_the_api(processed, tmp_path, monkeypatch):
    from highlights.cli import main
    from highlights.tools.label import app as app_module

    out, manifests = processed
    runner = CliRunner()
    result = runner.invoke(main, ["label", str(out), "--manifest", str(manifests[0]), "--labels", str(REPO_ROOT / "labels")])
    assert result.exit_code == 2 and "inside the repository" in result.output
    seen = {}
    monkeypatch.setattr(app_module, "serve", lambda labeller, **kw: seen.update(labeller=labeller, **kw))
    result = runner.invoke(main, ["label", str(out), "--manifest", str(manifests[0]), "--labels", str(tmp_path / "l"),
                                  "--port", "9123", "--by", "ann"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 processed lesson(s)" in result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 9123 and seen["token"] is None
    assert seen["labeller"].by == "ann"


def test_a_lesson_with_unreadable_scores_is_left_out_and_unchanged_lessons_are_not_reread(processed, tmp_path):
    out, manifests = processed
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.sqlite", ".lock"))
    (copy / "label-b" / "scores.csv").write_text("frame,t\nnot,a number\n")
    labeller = Labeller(copy, tmp_path / "labels", manifests, smile_threshold=0.5)
    assert [item["lesson_id"] for item in labeller.lessons()] == ["label-a"]
    before = labeller.lesson("label-a")
    labeller.reload()
    assert labeller.lesson("label-a") is before


def test_frame_labels_and_the_page_state_in_a_folder_that_cannot_be_written_answer_json(labeller, tmp_path, monkeypatch):
    """The two other writes of the page: a bare 500 and a traceback with the folder's path before."""
    import json

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(labeller.store.root / "frames" / "x.jpg"))

    monkeypatch.setattr(labeller.store, "write_frame", refuse)
    monkeypatch.setattr(labeller.store, "save_state", refuse)
    headers = {"Content-Type": "application/json"}
    with _Server(labeller) as base:
        body = json.dumps({"lesson_id": "label-a", "start": 0, "end": 3, "label": 1}).encode()
        status, answer, _ = _request(f"{base}/api/frame-labels", body, headers)
        assert status == 507, answer
        error = json.loads(answer)["error"]
        assert error.startswith("the labels folder cannot be written (Permission denied: x.jpg)") and "no frame" in error
        status, answer, _ = _request(f"{base}/api/state", b'{"lesson": "label-a"}', headers)
        assert status == 507 and str(tmp_path) not in json.loads(answer)["error"]
