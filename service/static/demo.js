"use strict";
// The page's script, a file of its own: the page's Content-Security-Policy runs no
// inline script. Model data (names, layers, class labels) reaches the page only as
// text (textContent, option values), never as HTML.
const $ = (id) => document.getElementById(id);
// an element with text and children, built from DOM nodes
function el(tag, { text = null, cls = null, value = null } = {}, ...children) {
  const node = document.createElement(tag);
  if (text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  if (value !== null) node.value = String(value);
  node.append(...children);
  return node;
}
// replace the <option>s of a <select>: [value, text] pairs
function setOptions(id, pairs) {
  $(id).replaceChildren(...pairs.map(([value, text]) => el("option", { text, value })));
}
const pad = $("pad"), ctx = pad.getContext("2d");
let uploaded = null;            // a Blob the user picked, else the canvas is used
let drawn = false;              // the pad holds ink
let models = [];
// Requests overlap (model switch, upload, layer pick): only the newest answer per target
// may touch the page, or a slow stale reply overwrites a fresh one.
const latest = {};
function ticket(target) { latest[target] = (latest[target] || 0) + 1; return latest[target]; }
function current(target, t) { return latest[target] === t; }

function headers() {
  const key = $("apikey").value.trim();
  return key ? { "X-API-Key": key } : {};
}
function showError(msg) { $("error").textContent = msg || ""; }
async function call(url, opts = {}) {
  const r = await fetch(url, { ...opts, headers: { ...headers(), ...(opts.headers || {}) } });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(`${r.status}: ${msg}`);
  }
  return r;
}
function clearPad() {
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
  uploaded = null; drawn = false;
}
// show a picture in the pad, fitted and centred (an upload, or the sample digit), unless
// a newer picture (or a stroke the user began meanwhile) took the pad: ticket ``t``
async function showInPad(blob, t) {
  const bitmap = await createImageBitmap(blob);
  if (!current("picture", t)) return;
  const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
  const w = bitmap.width * scale, h = bitmap.height * scale;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.imageSmoothingEnabled = false;  // the pixels of a small picture stay visible
  ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
}
// a picture the user picked (or the sample): shown in the pad, sent as it is
async function usePicture(blob) {
  const t = ticket("picture");
  uploaded = blob; drawn = false;
  await showInPad(blob, t);
  if (!current("picture", t)) return;  // a newer picture came meanwhile: it answers
  await predict();
  await runFilter();
}
function imageBlob() {
  return uploaded ? Promise.resolve(uploaded) : new Promise((res) => pad.toBlob(res, "image/png"));
}
function modelQuery() {
  const v = $("version").value;
  return v ? `version=${encodeURIComponent(v)}` : "";
}
async function postImage(path, query = "") {
  const blob = await imageBlob();
  const q = [modelQuery(), query].filter(Boolean).join("&");
  return call(`${path}${q ? "?" + q : ""}`, { method: "POST", body: blob,
    headers: { "Content-Type": blob.type || "image/png" } });
}
const objectUrls = {};
async function toImg(id, response) {
  const url = URL.createObjectURL(await response.blob());
  if (objectUrls[id]) URL.revokeObjectURL(objectUrls[id]);
  objectUrls[id] = url; $(id).src = url;
}

async function loadModels() {
  try {
    models = (await (await call("/api/models")).json()).models;
    setOptions("model", models.map((m) => [m.name, m.name]));
    // start with a digit model when there is one: the pad asks for a digit
    const digits = models.find((m) => m.dataset === "mnist");
    if (digits) $("model").value = digits.name;
    await modelChanged();
  } catch (e) { showError(e.message); }
}
async function modelChanged() {
  const m = models.find((x) => x.name === $("model").value);
  if (!m) return;
  const avail = m.versions.filter((v) => v.state === "AVAILABLE").map((v) => v.version);
  setOptions("version", [["", "latest"], ...avail.map((v) => [v, v])]);
  try {
    const s = await (await call(`/api/models/${encodeURIComponent(m.name)}/summary`)).json();
    showExpects(s);
    const maps = s.layers.filter((l) => l.output_shape.length === 4 || l.output_shape.length === 2);
    setOptions("layer", maps.map((l) => [l.name, l.name]));
    const first = s.layers.find((l) => l.type === "Conv2D");
    if (first) $("layer").value = first.name;
    await toImg("filters", await call(`/api/models/${encodeURIComponent(m.name)}/filters?format=png`));
  } catch (e) { showError(e.message); }
}

// Which kind of picture the model expects, from its summary (shape, dataset, classes).
const EXPECTS = {
  mnist: "a handwritten digit, drawn here or photographed dark on light",
  fashion_mnist: "a piece of clothing, alone on a plain background",
};
function showExpects(s) {
  const [h, w, c] = s.input_shape;
  const kind = EXPECTS[s.dataset] || `a picture of ${kindOf(s)}`;
  $("expects").textContent = `This model expects ${kind}: it sees it as ` +
    `${h}x${w} ${c === 3 ? "colour" : "grayscale"} (other sizes are resized).`;
  $("seen").alt = `the ${h}x${w} input the model saw`;
}
// a folder model's classes, as words ("circle, square or triangle")
function kindOf(m) {
  const names = (m && m.class_names) || [];
  if (names.length === 0) return "anything this model was trained on";
  if (names.length > 6) return `one of its ${names.length} classes (${names.slice(0, 5).join(", ")}...)`;
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}

async function predict() {
  showError("");
  if (!uploaded && !drawn) { $("prediction").textContent = "draw or upload a picture"; return; }
  const t = ticket("predict");
  const name = $("model").value;
  const picture = latest.picture || 0;  // which picture this answer is about
  const extra = [`top_k=5`, `include_input=true`, `invert=${$("invert").value}`];
  if ($("center").value) extra.push(`center=${$("center").value}`);
  try {
    const answer = await postImage(`/api/models/${encodeURIComponent(name)}/predict`, extra.join("&"));
    const body = await answer.json();
    if (!current("predict", t)) return;
    const p = body.predictions[0];
    askFeedback(name, picture, body.prediction_id, p.top_k[0].label);
    $("prediction").textContent = `${p.top_k[0].label}  (${(100 * p.top_k[0].probability).toFixed(1)} %)  · v${body.version}`;
    showTrust(name, p);
    $("seen").src = "data:image/png;base64," + p.input_png;
    $("bars").replaceChildren(...p.top_k.map((t) => {
      const fill = el("span", { cls: "fill" });
      fill.style.width = `${(100 * t.probability).toFixed(1)}%`;  // CSSOM: allowed by the policy
      return el("div", { cls: "bar" }, el("span", { cls: "name", text: t.label }),
        el("span", { cls: "track" }, fill),
        el("span", { cls: "pct", text: `${(100 * t.probability).toFixed(1)} %` }));
    }));
    await Promise.all([showMaps(), showGradcam()]);
  } catch (e) { showError(e.message); }
}
// "Right?" after a prediction: the answer goes to the feedback route (when the server
// captures uploads; otherwise the question is not asked). A newer answer about the same
// picture and model (a version switch, the predict button, a model reload) keeps what the
// user already picked and only points the question at the newest prediction.
let asked = null;  // {name, picture, id, label} of the prediction the question is about
async function askFeedback(name, picture, id, label) {
  const box = $("feedback");
  const same = asked && asked.name === name && asked.picture === picture;
  asked = { name, picture, id, label };
  if (!same) {
    $("feedback-note").textContent = "";
    const m = models.find((x) => x.name === name);
    setOptions("truth", (m ? m.class_names : []).map((c) => [c, c]));
    $("truth").value = label;
  }
  try {
    await call(`/api/models/${encodeURIComponent(name)}/feedback`);  // 409: capture is off
    box.hidden = false;
  } catch (e) { box.hidden = true; }
}
async function sendFeedback(label) {
  if (!asked) return;
  try {
    await call(`/api/models/${encodeURIComponent(asked.name)}/feedback`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prediction_id: asked.id, label }) });
    $("feedback-note").textContent = `thanks: recorded as ${label}`;
  } catch (e) { $("feedback-note").textContent = e.message; }
}
$("right").addEventListener("click", () => sendFeedback(asked && asked.label));
$("wrong").addEventListener("click", () => sendFeedback($("truth").value));

// What a model's training pictures are, for the out-of-distribution warning.
const LOOKS_LIKE = { mnist: "a digit", fashion_mnist: "a piece of clothing" };
// What else it flags, as measured on pictures from elsewhere (docs/trust.md)
const WHY_FLAGGED = {
  mnist: "a digit printed in a font, blown up from a few pixels, or on textured paper",
  fashion_mnist: "a garment small on a big sheet, blurred or turned",
};
function showTrust(name, p) {
  const box = $("ood");
  box.hidden = p.in_distribution !== false;  // null: the version has no OOD score
  if (box.hidden) return;
  const m = models.find((x) => x.name === name);
  const kind = (m && LOOKS_LIKE[m.dataset]) || `a picture of ${kindOf(m)}`;
  const why = (m && WHY_FLAGGED[m.dataset]) || "a picture unlike the ones it was trained on";
  box.textContent = `This does not look like ${kind} (OOD score ${p.ood_score.toFixed(0)}): ` +
    `the answer above is the model's best guess. It says so for another kind of picture, ` +
    `and sometimes for ${why}.`;
}
async function showMaps() {
  if (!$("layer").value) return;
  const q = `layers=${encodeURIComponent($("layer").value)}&format=png&colormap=${$("cmap").value}&invert=${$("invert").value}`;
  const t = ticket("maps");
  try {
    const r = await postImage(`/api/models/${encodeURIComponent($("model").value)}/activations`, q);
    if (current("maps", t)) await toImg("maps", r);
  } catch (e) { if (current("maps", t)) showError(e.message); }
}
async function showGradcam() {
  const t = ticket("gradcam");
  try {
    const r = await postImage(`/api/models/${encodeURIComponent($("model").value)}/gradcam`, `format=png&invert=${$("invert").value}`);
    if (current("gradcam", t)) await toImg("gradcam", r);
  } catch (e) { if (current("gradcam", t)) $("gradcam").removeAttribute("src"); }
}
async function runFilter() {
  showError("");
  const k = $("kernel").value;
  const op = { op: "filter", border: $("border").value, weight: Number($("weight").value), output: $("output").value };
  if (k === "custom") {
    try { op.matrix = JSON.parse($("matrix").value); } catch (e) { return showError("custom kernel: not valid JSON"); }
  } else { op.kernel = k; }
  const ops = [{ op: "grayscale" }, op];
  if ($("pool").value) ops.push({ op: "pool", kind: $("pool").value, size: 2 });
  if (!uploaded && !drawn) return;  // nothing to filter yet
  try {
    const blob = await imageBlob();
    $("original").src = URL.createObjectURL(blob);
    const r = await call(`/api/pipeline?ops=${encodeURIComponent(JSON.stringify(ops))}`,
      { method: "POST", body: blob, headers: { "Content-Type": blob.type || "image/png" } });
    $("filtered-caption").textContent = `result ${r.headers.get("X-Output-Size")} (from ${r.headers.get("X-Input-Size")})`;
    await toImg("filtered", r);
  } catch (e) { showError(e.message); }
}
async function loadKernels() {
  try {
    const k = (await (await call("/api/kernels")).json()).kernels;
    setOptions("kernel", [...Object.keys(k).map((n) => [n, n]), ["custom", "custom"]]);
    $("kernel").value = "sobel_right";
  } catch (e) { showError(e.message); }
}

// drawing: thick dark strokes on white paper, like a pen (the service inverts)
let drawing = false;
function point(e) { const r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; }
pad.addEventListener("pointerdown", (e) => { if (uploaded) clearPad(); ticket("picture"); drawing = true; drawn = true; const [x, y] = point(e); ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.1, y); ctx.stroke(); });
pad.addEventListener("pointermove", (e) => { if (!drawing) return; const [x, y] = point(e); ctx.lineTo(x, y); ctx.stroke(); });
pad.addEventListener("pointerup", () => { drawing = false; predict().then(runFilter); });
pad.addEventListener("pointerleave", () => { drawing = false; });
ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#000";

$("clear").onclick = () => clearPad();
$("predict").onclick = predict;
$("file").onchange = () => { if ($("file").files[0]) usePicture($("file").files[0]); };
$("model").onchange = () => modelChanged().then(predict);
$("version").onchange = predict;
$("layer").onchange = showMaps;
$("cmap").onchange = showMaps;
$("runfilter").onclick = runFilter;
// the first screen shows a real prediction: a test-set digit, until the user draws or uploads
async function start() {
  clearPad();
  await Promise.all([loadModels(), loadKernels()]);
  const m = models.find((x) => x.name === $("model").value);
  if (m && m.dataset === "mnist" && !uploaded && !drawn) {
    try {
      const sample = await (await fetch("/static/sample-digit.png")).blob();
      if (!uploaded && !drawn) await usePicture(sample);  // unless the user was quicker
    } catch (e) { showError(e.message); }
  }
}
start();
