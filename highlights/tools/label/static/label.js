// The labelling page: plain JavaScript over the JSON API of highlights/label/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  lessons: [], lesson: null, view: null, duration: 0,
  viewStart: 0, viewEnd: 0, batch: null, labels: [], touched: [], hovered: null, busy: false,
  names: { age: ["adult", "child"], smile: ["not smiling", "smiling"] },
};

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
}

function status(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.status + " " + response.statusText);
  return data;
}

const task = () => document.querySelector("input[name=task]:checked").value;
const mode = () => document.querySelector("input[name=mode]:checked").value;
const range = () => {
  const a = Number($("start").value), b = Number($("end").value);
  return [Math.min(a, b), Math.max(a, b)];
};

let stateTimer = null;
function rememberState() {
  clearTimeout(stateTimer);
  stateTimer = setTimeout(() => {
    if (!state.lesson) return;
    const [start, end] = range();
    api("/api/state", { lesson_id: state.lesson, start, end, task: task(), mode: mode(),
                        view_start: state.viewStart, view_end: state.viewEnd }).catch(() => {});
  }, 400);
}

// ------------------------------------------------------------------ lessons

function lessonLabel(l) {
  const d = l.labelled;
  return `${l.lesson_id} · ${clock(l.duration_s)} · ${l.faces} faces · labelled ${d.age} child/adult, ` +
         `${d.smile} smile, ${d.adult_present} frames`;
}

async function loadLessons(keepSelection) {
  const data = await api("/api/lessons");
  state.lessons = data.lessons;
  $("who").textContent = "labelling as " + data.by;
  const select = $("lesson");
  const previous = keepSelection ? select.value : (data.state.lesson_id || "");
  select.innerHTML = "";
  for (const l of data.lessons) {
    const option = document.createElement("option");
    option.value = l.lesson_id;
    option.textContent = lessonLabel(l);
    select.appendChild(option);
  }
  if (!data.lessons.length) { status("No processed lessons in this output folder.", true); return null; }
  select.value = data.lessons.some((l) => l.lesson_id === previous) ? previous : data.lessons[0].lesson_id;
  return data.state;
}

function refreshLessonCounts() {
  const l = state.lessons.find((x) => x.lesson_id === state.lesson);
  if (l) $("lesson").selectedOptions[0].textContent = lessonLabel(l);
}

async function openLesson(lessonId, saved) {
  releaseBatch();
  state.lesson = lessonId;
  const view = await api(`/api/lessons/${encodeURIComponent(lessonId)}`);
  state.view = view;
  state.duration = view.duration_s;
  for (const id of ["start", "end"]) $(id).max = String(Math.ceil(view.duration_s));
  const same = saved && saved.lesson_id === lessonId;
  $("start").value = same ? saved.start : 0;
  $("end").value = same ? saved.end : Math.ceil(view.duration_s);
  state.viewStart = same && saved.view_start != null ? saved.view_start : 0;
  state.viewEnd = same && saved.view_end != null ? saved.view_end : view.duration_s;
  if (same && saved.task) document.querySelector(`input[name=task][value=${saved.task}]`).checked = true;
  if (same && saved.mode) document.querySelector(`input[name=mode][value=${saved.mode}]`).checked = true;
  if (!view.recordings) status("This lesson's recordings are not in the manifest given to the labeller: no frames to show.", true);
  updateNames();
  await drawStrip();
  drawBar();
  onRange();
  clearGrid("Press “New batch” (n) for faces of the selected range.");
}

async function drawStrip() {
  const view = await api(`/api/lessons/${encodeURIComponent(state.lesson)}?start=${state.viewStart}&end=${state.viewEnd}`);
  state.view.frame_labels = view.frame_labels;
  const strip = $("strip");
  strip.innerHTML = "";
  for (const item of view.strip) {
    const figure = document.createElement("figure");
    figure.className = "thumb";
    figure.dataset.t = item.t;
    figure.innerHTML = `<img alt="frame at ${clock(item.t)}" src="${item.image}">` +
      `<figcaption><button type="button" class="set-start" title="Range starts here ([)">[</button>` +
      `<span>${clock(item.t)}</span>` +
      `<button type="button" class="set-end" title="Range ends here (])">]</button></figcaption>`;
    figure.addEventListener("mouseenter", () => { state.hovered = item.t; });
    figure.addEventListener("mouseleave", () => { if (state.hovered === item.t) state.hovered = null; });
    figure.querySelector(".set-start").addEventListener("click", () => setEdge("start", item.t));
    figure.querySelector(".set-end").addEventListener("click", () => setEdge("end", item.t));
    strip.appendChild(figure);
  }
  markStrip();
}

function markStrip() {
  const [start, end] = range();
  for (const figure of document.querySelectorAll(".thumb")) {
    const t = Number(figure.dataset.t);
    figure.classList.toggle("inside", t >= start && t <= end);
  }
}

function drawBar() {
  const marks = $("bar-marks");
  marks.innerHTML = "";
  const d = state.duration || 1;
  const add = (t, cls) => {
    const span = document.createElement("span");
    span.className = "mark " + cls;
    span.style.left = (100 * t / d) + "%";
    marks.appendChild(span);
  };
  for (const t of state.view.face_times) add(t, "tick-face");
  for (const m of state.view.frame_labels || []) add(m.t, m.label ? "tick-adult" : "tick-noadult");
}

function setEdge(which, t) {
  $(which).value = String(Math.round(t));
  onRange();
}

let countsTimer = null;
function onRange() {
  const [start, end] = range();
  $("start-out").textContent = clock(start);
  $("end-out").textContent = clock(end);
  const d = state.duration || 1;
  const bar = $("bar-range");
  bar.style.left = (100 * start / d) + "%";
  bar.style.width = (100 * (end - start) / d) + "%";
  markStrip();
  rememberState();
  clearTimeout(countsTimer);
  countsTimer = setTimeout(updateCounts, 150);
}

async function updateCounts() {
  if (!state.lesson) return;
  const [start, end] = range();
  const c = await api(`/api/lessons/${encodeURIComponent(state.lesson)}/counts?start=${start}&end=${end}`);
  const t = task();
  $("range-info").textContent = `${clock(end - start)} selected: ${c.frames} frames, ${c.faces} faces, ` +
    `${c.faces - c[t + "_done"]} not yet labelled for ${t === "age" ? "child/adult" : "smile"}`;
  $("frames-adult").textContent = `An adult is present (a) · ${c.frames} frames`;
  $("frames-none").textContent = `No adult (o) · ${c.frames} frames`;
}

// ------------------------------------------------------------------ batches

function updateNames() {
  const [neg, pos] = state.names[task()];
  for (const el of document.querySelectorAll(".pos-name")) el.textContent = pos;
  for (const el of document.querySelectorAll(".neg-name")) el.textContent = neg;
}

function clearGrid(message) {
  state.batch = null;
  $("grid").innerHTML = message ? `<p class="muted">${message}</p>` : "";
  $("save").disabled = true;
}

function releaseBatch() {
  if (state.batch) {
    api(`/api/batch/${state.batch.batch}/release`, {}).catch(() => {});
    state.batch = null;
  }
}

function defaultLabel(face) {
  const m = mode();
  if (m === "positive") return 1;
  if (m === "negative") return 0;
  return face.model;
}

async function newBatch() {
  if (!state.lesson || state.busy) return;
  releaseBatch();
  const [start, end] = range();
  state.busy = true;
  status("Cutting faces…");
  try {
    const batch = await api("/api/batch", { lesson_id: state.lesson, start, end, task: task(),
                                             mode: mode(), relabel: $("relabel").checked });
    showBatch(batch);
  } catch (error) {
    status(error.message, true);
  } finally {
    state.busy = false;
  }
}

function showBatch(batch) {
  if (!batch.faces.length) {
    clearGrid(`Every face of the selected range is labelled for ${batch.task === "age" ? "child/adult" : "smile"}. ` +
              "Pick another range or lesson, or tick “show labelled faces too”.");
    status("Nothing left to label in this range.");
    return;
  }
  for (const face of batch.faces) face.prelabel = face.label;
  state.batch = batch;
  state.labels = batch.faces.map((f) => f.label);
  state.touched = batch.faces.map(() => false);
  const grid = $("grid");
  grid.innerHTML = "";
  batch.faces.forEach((face, i) => {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = "face";
    tile.dataset.index = i;
    const p = batch.task === "age" ? `P(adult) ${(1 - face.p).toFixed(2)}` : `P(smile) ${face.p.toFixed(2)}`;
    const was = face.current == null ? "" : ` · was ${batch.names[face.current]}`;
    tile.innerHTML = `<img alt="face at ${clock(face.t)}" src="${face.image}">` +
      `<span class="badge"></span><span class="meta">${clock(face.t)} · ${p}${was}</span>` +
      `<span class="skip-button" role="button" title="Not a face / unclear (x)">✕</span>`;
    tile.addEventListener("click", (event) => {
      if (event.target.classList.contains("skip-button")) setLabel(i, state.labels[i] === "skip" ? face.prelabel : "skip");
      else setLabel(i, state.labels[i] === 1 ? 0 : 1);
    });
    grid.appendChild(tile);
    drawTile(i);
  });
  $("save").disabled = false;
  status(`${batch.faces.length} faces (${batch.remaining} more in range). Click the wrong ones, then Save (Enter).`);
}

function drawTile(i) {
  const tile = $("grid").children[i];
  const label = state.labels[i];
  tile.classList.toggle("pos", label === 1);
  tile.classList.toggle("skip", label === "skip");
  tile.classList.toggle("changed", label !== state.batch.faces[i].prelabel);
  tile.querySelector(".badge").textContent = label === "skip" ? "skip" : state.batch.names[label];
  tile.setAttribute("aria-label", `face ${i + 1}: ${tile.querySelector(".badge").textContent}`);
}

function setLabel(i, label) {
  state.labels[i] = label;
  state.touched[i] = true;
  drawTile(i);
}

function applyDefault() {
  if (!state.batch) return;
  state.batch.faces.forEach((face, i) => {
    if (state.touched[i]) return;
    state.labels[i] = defaultLabel(face);
    drawTile(i);
  });
  rememberState();
}

async function save() {
  if (!state.batch || state.busy) return;
  const batch = state.batch;
  state.busy = true;
  $("save").disabled = true;
  try {
    const result = await api(`/api/batch/${batch.batch}/save`, { labels: state.labels });
    state.batch = null;
    const [neg, pos] = batch.names;
    status(`Saved ${result.saved} ${batch.task} labels (${result.positive} ${pos}, ${result.saved - result.positive} ${neg}` +
           (result.skipped ? `, ${result.skipped} skipped` : "") + ").");
    const l = state.lessons.find((x) => x.lesson_id === batch.lesson_id);
    if (l) { l.labelled[batch.task] += result.saved; refreshLessonCounts(); }
    state.busy = false;
    updateCounts();
    await newBatch();
  } catch (error) {
    status(error.message, true);
    $("save").disabled = false;
  } finally {
    state.busy = false;
  }
}

// ------------------------------------------------------------------ frame ranges

async function labelFrames(label) {
  if (!state.lesson || state.busy) return;
  const [start, end] = range();
  state.busy = true;
  status("Saving frame labels…");
  try {
    const result = await api("/api/frame-labels", { lesson_id: state.lesson, start, end, label });
    status(`Labelled ${result.saved} frames ${clock(start)}–${clock(end)} as ${label ? "adult present" : "no adult"}.`);
    const l = state.lessons.find((x) => x.lesson_id === state.lesson);
    if (l) { l.labelled.adult_present += result.saved; refreshLessonCounts(); }
    const view = await api(`/api/lessons/${encodeURIComponent(state.lesson)}?start=${state.viewStart}&end=${state.viewEnd}`);
    state.view.frame_labels = view.frame_labels;
    drawBar();
  } catch (error) {
    status(error.message, true);
  } finally {
    state.busy = false;
  }
}

// A key labels every frame of the range: it takes a second press within 2 s, so a stray key
// cannot label a whole lesson (the buttons label at once; a later label of the range wins).
let armed = null;
function confirmFrames(label, key) {
  if (armed && armed.key === key && Date.now() - armed.at < 2000) { armed = null; labelFrames(label); return; }
  armed = { key, at: Date.now() };
  const [start, end] = range();
  status(`Press ${key} again to label ${clock(start)}–${clock(end)} as ${label ? "adult present" : "no adult"}.`);
}

// ------------------------------------------------------------------ keyboard

function focusedFace() {
  const el = document.activeElement;
  return el && el.classList && el.classList.contains("face") ? Number(el.dataset.index) : null;
}

function moveFocus(delta) {
  const tiles = $("grid").querySelectorAll(".face");
  if (!tiles.length) return;
  const current = focusedFace();
  const next = current == null ? 0 : Math.min(Math.max(current + delta, 0), tiles.length - 1);
  tiles[next].focus();
}

function perRow() {
  const tiles = $("grid").querySelectorAll(".face");
  if (tiles.length < 2) return 1;
  const top = tiles[0].offsetTop;
  let n = 0;
  for (const t of tiles) { if (t.offsetTop !== top) break; n += 1; }
  return n;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const tag = (event.target.tagName || "").toLowerCase();
  if (tag === "select" || (tag === "input" && event.target.type !== "radio" && event.target.type !== "checkbox" && event.target.type !== "range")) return;
  const face = focusedFace();
  const key = event.key;
  const handled = () => event.preventDefault();
  if (key === "n") { handled(); newBatch(); }
  else if (key === "Enter" || key === "s") { handled(); save(); }
  else if (key === " " && face != null) { handled(); setLabel(face, state.labels[face] === 1 ? 0 : 1); }
  else if (key === "x" && face != null) { handled(); setLabel(face, state.labels[face] === "skip" ? state.batch.faces[face].prelabel : "skip"); }
  else if (key === "ArrowRight" && face != null) { handled(); moveFocus(1); }
  else if (key === "ArrowLeft" && face != null) { handled(); moveFocus(-1); }
  else if (key === "ArrowDown" && face != null) { handled(); moveFocus(perRow()); }
  else if (key === "ArrowUp" && face != null) { handled(); moveFocus(-perRow()); }
  else if (key === "m" || key === "1" || key === "0") {
    handled();
    $({ m: "mode-model", 1: "mode-positive", 0: "mode-negative" }[key]).checked = true;
    applyDefault();
  }
  else if (key === "t") {
    handled();
    (task() === "age" ? $("task-smile") : $("task-age")).checked = true;
    onTask();
  }
  else if ((key === "[" || key === "]") && state.hovered != null) { handled(); setEdge(key === "[" ? "start" : "end", state.hovered); }
  else if (key === "z") { handled(); zoom(true); }
  else if (key === "w") { handled(); zoom(false); }
  else if (key === "a" || key === "o") { handled(); confirmFrames(key === "a" ? 1 : 0, key); }
});

function onTask() {
  updateNames();
  releaseBatch();
  clearGrid("Press “New batch” (n) for faces of the selected range.");
  updateCounts();
  rememberState();
}

async function zoom(toRange) {
  if (!state.lesson) return;
  const [start, end] = range();
  state.viewStart = toRange ? start : 0;
  state.viewEnd = toRange ? Math.max(end, start + 1) : state.duration;
  rememberState();
  await drawStrip();
}

// ------------------------------------------------------------------ start

window.addEventListener("pagehide", releaseBatch);
$("start").addEventListener("input", onRange);
$("end").addEventListener("input", onRange);
$("lesson").addEventListener("change", (event) => openLesson(event.target.value, null).catch((e) => status(e.message, true)));
$("new-batch").addEventListener("click", newBatch);
$("save").addEventListener("click", save);
$("frames-adult").addEventListener("click", () => labelFrames(1));
$("frames-none").addEventListener("click", () => labelFrames(0));
$("zoom").addEventListener("click", () => zoom(true));
$("unzoom").addEventListener("click", () => zoom(false));
for (const input of document.querySelectorAll("input[name=task]")) input.addEventListener("change", onTask);
for (const input of document.querySelectorAll("input[name=mode]")) input.addEventListener("change", applyDefault);
$("relabel").addEventListener("change", () => { releaseBatch(); clearGrid("Press “New batch” (n)."); });

(async () => {
  try {
    const saved = await loadLessons(false);
    if ($("lesson").value) await openLesson($("lesson").value, saved);
    document.body.dataset.ready = "1";
  } catch (error) {
    status(error.message, true);
  }
})();
