// The drawing page: strokes on a canvas, classified as you draw. The canvas goes to the server as
// a PNG, which frames it as MNIST's digits were made (experiments/serving/images.py): the same code
// as for any image file. While a digit is drawn, its predictions are previews (?preview=true:
// shown, not counted by the monitor); once the drawing settles, its prediction counts and can be
// labelled.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const bars = document.getElementById("bars");
const predicted = document.getElementById("predicted");
const status = document.getElementById("status");
let model = null, classNames = [], lastId = null, drawing = false, last = null, inked = false;
let inFlight = false, pending = null;

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  lastId = null;
  predicted.textContent = "";
  bars.innerHTML = "";
  document.getElementById("feedback").hidden = true;
}

function show(prediction) {
  lastId = prediction.id ?? null;
  predicted.textContent = prediction.label + (prediction.low_confidence ? " ?" : "");
  bars.innerHTML = "";
  prediction.probabilities.forEach((p, k) => {
    const row = document.createElement("div");
    row.className = "bar" + (k === prediction.class ? " top" : "");
    row.dataset.class = String(k);
    row.innerHTML = `<span class="name"></span><span class="track"><div class="fill"></div></span><span class="p"></span>`;
    row.querySelector(".name").textContent = classNames[k] ?? String(k);
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".p").textContent = p.toFixed(3);
    bars.appendChild(row);
  });
  document.getElementById("feedback").hidden = lastId === null;
}

async function request(body, contentType, preview = false) {
  const response = await fetch(`/v1/models/${model}:predict${preview ? "?preview=true" : ""}`, {
    method: "POST", headers: { "Content-Type": contentType }, body });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer.predictions[0];
}

const canvasPng = () => new Promise((resolve) => pad.toBlob(resolve, "image/png"));

// One request at a time; a drawing that changes meanwhile is sent when it returns (the latest
// wins, and a settled drawing is never replaced by a preview).
async function classify(preview) {
  if (!model || !inked) return;
  if (inFlight) { pending = pending === false ? false : preview; return; }
  inFlight = true;
  try {
    const prediction = await request(await canvasPng(), "image/png", preview);
    show(prediction);
    status.textContent = prediction.low_confidence ? "unsure: draw it larger or clearer" : "";
  } catch (e) {
    status.textContent = `error: ${e.message}`;
  } finally {
    inFlight = false;
    if (pending !== null) { const next = pending; pending = null; classify(next); }
  }
}

async function classifyFile(file) {
  if (!file) return;
  try {
    show(await request(file, file.type || "image/png"));
    status.textContent = `${file.name}: decoded by the server`;
  } catch (e) {
    status.textContent = `${file.name}: ${e.message}`;
  }
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  if (settle !== null) { clearTimeout(settle); settle = null; }
  drawing = true; inked = true; last = point(event); pad.setPointerCapture(event.pointerId);
  ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(last[0], last[1], 9, 0, 2 * Math.PI); ctx.fill();
  classify(true);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p;
  classify(true);
});
// A drawing is settled when no stroke starts within SETTLE_MS of the last one's end: only then does
// its prediction count (and get an id for feedback); a digit of several strokes counts once.
const SETTLE_MS = 600;
let settle = null;
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    classify(true);
    settle = setTimeout(() => { settle = null; classify(false); }, SETTLE_MS);
  });
}
pad.addEventListener("dragover", (event) => { event.preventDefault(); pad.classList.add("dragging"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dragging"));
pad.addEventListener("drop", (event) => {
  event.preventDefault(); pad.classList.remove("dragging");
  classifyFile(event.dataTransfer.files[0]);
});
document.getElementById("file").addEventListener("change", (event) => classifyFile(event.target.files[0]));
document.getElementById("clear").addEventListener("click", clearPad);

async function start() {
  clearPad();
  const names = await (await fetch("/v1/models")).json();
  model = names.models[0];
  const info = await (await fetch(`/v1/models/${model}`)).json();
  classNames = info.manifest.class_names;
  document.getElementById("model").textContent = `${model}: ${info.manifest.model} on ${info.manifest.dataset}`;
  const labels = document.getElementById("labels");
  classNames.forEach((name, k) => {
    const button = document.createElement("button");
    button.textContent = name;
    button.addEventListener("click", async () => {
      const response = await fetch("/v1/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id: lastId, label: k }) });
      const answer = await response.json();
      status.textContent = response.ok ? `recorded: ${name}` : `error: ${answer.error}`;
    });
    labels.appendChild(button);
  });
  pad.dataset.ready = "true";
}
start().catch((e) => { status.textContent = `error: ${e.message}`; });
