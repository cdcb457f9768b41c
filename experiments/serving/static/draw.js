// The drawing page: strokes on a canvas, preprocessed as MNIST's digits, classified as you draw.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const bars = document.getElementById("bars");
const predicted = document.getElementById("predicted");
const status = document.getElementById("status");
let model = null, classNames = [], lastId = null, drawing = false, last = null;
let inFlight = false, pending = false;

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  predicted.textContent = "";
  bars.innerHTML = "";
  document.getElementById("feedback").hidden = true;
}

// The ink's bounding box scaled (area averaging) into a 20x20 box, placed in 28x28 so that its
// centre of mass is at the centre: how the MNIST digits were made. Returns 28 rows of 28 values.
function mnistPixels() {
  const { data, width, height } = ctx.getImageData(0, 0, pad.width, pad.height);
  let top = height, left = width, bottom = -1, right = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (data[(y * width + x) * 4] > 0) {
      top = Math.min(top, y); bottom = Math.max(bottom, y);
      left = Math.min(left, x); right = Math.max(right, x);
    }
  }
  if (bottom < 0) return null;
  const h = bottom - top + 1, w = right - left + 1, scale = 20 / Math.max(h, w);
  const th = Math.max(1, Math.round(h * scale)), tw = Math.max(1, Math.round(w * scale));
  const small = new Float64Array(th * tw);
  for (let ty = 0; ty < th; ty++) for (let tx = 0; tx < tw; tx++) {
    const y0 = top + ty / scale, y1 = top + (ty + 1) / scale;
    const x0 = left + tx / scale, x1 = left + (tx + 1) / scale;
    let sum = 0, area = 0;
    for (let y = Math.floor(y0); y < Math.min(Math.ceil(y1), top + h); y++) {
      const wy = Math.min(y + 1, y1) - Math.max(y, y0);
      for (let x = Math.floor(x0); x < Math.min(Math.ceil(x1), left + w); x++) {
        const wx = Math.min(x + 1, x1) - Math.max(x, x0);
        sum += data[(y * width + x) * 4] * wx * wy; area += wx * wy;
      }
    }
    small[ty * tw + tx] = area > 0 ? sum / area : 0;
  }
  let mass = 0, cy = 0, cx = 0;
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) {
    const v = small[y * tw + x]; mass += v; cy += v * y; cx += v * x;
  }
  const oy = Math.round(14 - (mass ? cy / mass : th / 2)), ox = Math.round(14 - (mass ? cx / mass : tw / 2));
  const rows = Array.from({ length: 28 }, () => new Array(28).fill(0));
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) {
    const Y = y + oy, X = x + ox;
    if (Y >= 0 && Y < 28 && X >= 0 && X < 28) rows[Y][X] = Math.min(255, Math.round(small[y * tw + x]));
  }
  return rows;
}

function show(prediction) {
  lastId = prediction.id;
  predicted.textContent = prediction.label;
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
  document.getElementById("feedback").hidden = false;
}

async function request(body, contentType) {
  const response = await fetch(`/v1/models/${model}:predict`, {
    method: "POST", headers: { "Content-Type": contentType }, body });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer.predictions[0];
}

async function classify() {
  if (!model) return;
  if (inFlight) { pending = true; return; }  // one request at a time; the latest drawing wins
  const pixels = mnistPixels();
  if (!pixels) return;
  inFlight = true;
  try {
    show(await request(JSON.stringify({ instances: [pixels] }), "application/json"));
    status.textContent = "";
  } catch (e) {
    status.textContent = `error: ${e.message}`;
  } finally {
    inFlight = false;
    if (pending) { pending = false; classify(); }
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
  drawing = true; last = point(event); pad.setPointerCapture(event.pointerId);
  ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(last[0], last[1], 9, 0, 2 * Math.PI); ctx.fill();
  classify();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p;
  classify();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; classify(); } });
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
