// i2i web app: lists the models, sends the files to POST /jobs, polls GET /jobs/{id}, shows the
// result beside the input with a slider, and an error map against an optional target. No
// request leaves this server.
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];
let files = [];

function describe(m) {
  return `${m.kind}, ${m.model}, x${m.scale}, ${m.parameters.toLocaleString()} parameters, ` +
    `direction${m.directions.length > 1 ? "s" : ""} ${m.directions.join(", ")} (${m.file})`;
}

function showModel() {
  const m = models.find((x) => x.id === $("model").value);
  $("model-info").textContent = m ? describe(m) : "";
  $("direction").replaceChildren(...(m ? m.directions : []).map((d) => new Option(d, d)));
}

async function loadModels() {
  const r = await fetch("/models");
  models = await r.json();
  $("model").replaceChildren(...models.map((m) => new Option(m.id, m.id)));
  showModel();
}

function choose(list) {
  files = Array.from(list);
  $("chosen").textContent = files.map((f) => `${f.name} (${f.size.toLocaleString()} bytes)`).join(", ");
  $("go").disabled = files.length === 0;
}

function form() {
  const fd = new FormData();
  files.forEach((f) => fd.append("files", f, f.name));
  for (const key of ["model", "direction", "tile", "runtime", "seamless", "temporal", "ext"]) {
    if ($(key).value) fd.append(key, $(key).value);
  }
  if ($("mask").files[0]) fd.append("mask", $("mask").files[0]);
  return fd;
}

function upload(fd) {  // XHR for the upload's own progress
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", "/jobs");
    x.upload.onprogress = (e) => { $("status").textContent = `uploading: ${Math.round(100 * e.loaded / e.total)} %`; };
    x.onload = () => (x.status === 200 ? resolve(JSON.parse(x.responseText))
      : reject(new Error(JSON.parse(x.responseText).detail || x.statusText)));
    x.onerror = () => reject(new Error("the server did not answer"));
    x.send(fd);
  });
}

async function poll(id) {
  for (;;) {
    const s = await (await fetch(`/jobs/${id}`)).json();
    $("progress").max = Math.max(s.total, 1);
    $("progress").value = s.done;
    $("status").textContent = `${s.state}: ${s.done} of ${s.total} converted`;
    if (!["queued", "running"].includes(s.state)) return s;
    await new Promise((r) => setTimeout(r, 300));
  }
}

function loaded(img, src) {
  return new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = src; });
}

async function errorMap(output) {
  const target = $("target").files[0];
  if (!target) { $("errors").hidden = true; $("error-info").textContent = ""; return; }
  const t = new Image();
  await loaded(t, URL.createObjectURL(target));
  if (t.naturalWidth !== output.naturalWidth || t.naturalHeight !== output.naturalHeight) {
    $("error-info").textContent = `the target is ${t.naturalWidth}x${t.naturalHeight}, the output ` +
      `${output.naturalWidth}x${output.naturalHeight}: no error map`;
    return;
  }
  const c = $("errors"), w = t.naturalWidth, h = t.naturalHeight;
  c.width = w; c.height = h; c.hidden = false;
  const g = c.getContext("2d");
  g.drawImage(t, 0, 0); const a = g.getImageData(0, 0, w, h);
  g.drawImage(output, 0, 0); const b = g.getImageData(0, 0, w, h);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    const e = (Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2])) / 3;
    sum += e;
    const v = Math.min(255, e * 4);
    b.data[i] = v; b.data[i + 1] = v * 0.3; b.data[i + 2] = 0; b.data[i + 3] = 255;
  }
  g.putImageData(b, 0, 0);
  $("error-info").textContent = `error map against the target (x4): mean ${(sum / (w * h)).toFixed(2)} levels`;
}

async function convert() {
  $("go").disabled = true; $("result").hidden = true; $("progress").hidden = false; $("progress").value = 0;
  try {
    const job = await upload(form());
    const s = await poll(job.id);
    if (s.state !== "done") throw new Error(s.error || s.state);
    $("download").href = `/jobs/${job.id}/result`;
    $("download").textContent = s.outputs.length > 1 ? `Download all ${s.outputs.length} results (zip)` : `Download ${s.outputs[0]}`;
    const first = files[0];
    const image = /\.(png|jpe?g|webp|bmp)$/i.test(s.outputs[0]);
    if (image) {
      await loaded($("before"), URL.createObjectURL(first));
      await loaded($("after"), `/jobs/${job.id}/files/${encodeURIComponent(s.outputs[0])}`);
      await errorMap($("after"));
    }
    $("compare").hidden = !image;
    $("result").hidden = false;
    $("status").textContent = `done: ${s.outputs.length} converted` + (s.failed.length ? `, ${s.failed.length} failed: ${s.failed.join("; ")}` : "");
  } catch (e) {
    $("status").textContent = `failed: ${e.message}`;
  } finally {
    $("go").disabled = files.length === 0;
  }
}

$("model").addEventListener("change", showModel);
$("files").addEventListener("change", (e) => choose(e.target.files));
$("slider").addEventListener("input", (e) => { $("after-clip").style.clipPath = `inset(0 0 0 ${e.target.value}%)`; });
$("go").addEventListener("click", convert);
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files); });
loadModels().catch((e) => { $("status").textContent = `cannot list the models: ${e.message}`; });
