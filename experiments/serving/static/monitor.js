// The monitoring page: /v1/monitor every 2 s, drawn as SVG (no library, works offline).
"use strict";
const SVG = "http://www.w3.org/2000/svg";

function line(svg, points, low, high, label) {
  svg.innerHTML = "";
  const width = +svg.getAttribute("width"), height = +svg.getAttribute("height"), pad = 30;
  const add = (name, attrs, text) => {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
  };
  add("text", { x: 4, y: 14, "font-size": 11 }, `${label}: ${high.toFixed(2)} top, ${low.toFixed(2)} bottom`);
  add("line", { x1: pad, y1: height - pad, x2: width - 5, y2: height - pad, stroke: "#999" });
  const valid = points.filter((p) => p[1] !== null);
  if (valid.length < 1) { add("text", { x: pad, y: height / 2, "font-size": 12 }, "no data yet"); return; }
  const t0 = valid[0][0], t1 = Math.max(valid[valid.length - 1][0], t0 + 1);
  const x = (t) => pad + (width - pad - 5) * (t - t0) / (t1 - t0);
  const y = (v) => height - pad - (height - pad - 20) * (v - low) / Math.max(high - low, 1e-9);
  add("polyline", { points: valid.map((p) => `${x(p[0])},${y(p[1])}`).join(" "), fill: "none", stroke: "#36c", "stroke-width": 2 });
  add("text", { x: pad, y: height - 8, "font-size": 11 }, `${Math.round(t1 - t0)} s`);
}

async function refresh() {
  const response = await fetch("/v1/monitor");
  const report = await response.json();
  if (!response.ok) { document.getElementById("summary").textContent = `error: ${report.error}`; return; }
  const labelled = report.labelled > 0;
  const since = `${report.predictions} predictions since start ` +
    `(${new Date(1000 * report.started).toLocaleString()}; ${report.previews} previews of drawings in progress not counted)`;
  document.getElementById("summary").textContent = labelled
    ? `accuracy ${report.accuracy.toFixed(4)} over ${report.labelled} labelled predictions (window ${report.window}); ` +
      `macro F1 ${report.macro_f1 === null ? "-" : report.macro_f1.toFixed(4)}; ${since}`
    : `no labels have arrived yet: accuracy and the per-class figures appear with the first ` +
      `labelled prediction (POST /v1/feedback, or a true label given on the drawing page); ${since}`;
  const d = report.drift;
  const driftText = document.getElementById("drift");
  driftText.className = d.drifted ? "drifted" : "";
  driftText.textContent = d.psi === null ? "drift: no images yet" :
    `drift: ${d.drifted ? "DRIFTED" : "none"}: PSI ${d.psi.toFixed(3)} (threshold ${d.threshold}, ` +
    `${d.images} images since start); pixel mean ${d.pixel_mean.toFixed(3)}, training ${d.training_pixel_mean.toFixed(3)}`;
  const history = report.history;
  line(document.getElementById("accuracy"), history.map((h) => [h.time, h.accuracy]), 0, 1, "accuracy");
  const top = Math.max(1, ...history.map((h) => h.predictions_per_second));
  line(document.getElementById("rate"), history.map((h) => [h.time, h.predictions_per_second]), 0, top, "predictions/s");
  const f1 = document.getElementById("f1");
  f1.innerHTML = "";
  const table = document.getElementById("confusion");
  table.innerHTML = "";
  if (!labelled) {  // no per-class figures before a label: zeros would look like a broken model
    f1.textContent = table.textContent = "no labels yet";
    return;
  }
  for (const row of report.per_class) {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.innerHTML = `<span class="name"></span><span class="track"><div class="fill"></div></span><span class="p"></span>`;
    bar.querySelector(".name").textContent = row.label;
    bar.querySelector(".fill").style.width = `${(100 * row.f1).toFixed(1)}%`;
    bar.querySelector(".p").textContent = `${row.f1.toFixed(3)} (${row.support})`;
    f1.appendChild(bar);
  }
  const header = table.insertRow();
  header.insertCell().textContent = "";
  report.per_class.forEach((row) => { header.insertCell().textContent = row.label; });
  report.confusion_matrix.forEach((counts, t) => {
    const tr = table.insertRow();
    tr.insertCell().textContent = report.per_class[t].label;
    counts.forEach((c) => { tr.insertCell().textContent = c; });
  });
}
refresh();
setInterval(refresh, 2000);
