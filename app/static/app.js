// markless web page: upload a photo, see what the segmenter found, fix the mask, download the result.
// Plain ES module, no build step and no network beyond this server's /v1 API.

const $ = (id) => document.getElementById(id);

const el = {
  file: $("file"),
  dropzone: $("dropzone"),
  limits: $("limits"),
  inpainter: $("inpainter"),
  threshold: $("threshold"),
  thresholdOut: $("threshold-out"),
  dilate: $("dilate"),
  dilateOut: $("dilate-out"),
  format: $("format"),
  advanced: $("advanced"),
  seed: $("seed"),
  steps: $("steps"),
  apiKey: $("api-key"),
  status: $("status"),
  statusText: $("status-text"),
  elapsed: $("elapsed"),
  error: $("error"),
  errorText: $("error-text"),
  errorTitle: $("error-title"),
  fileLabel: $("file-label"),
  errorClose: $("error-close"),
  workspace: $("workspace"),
  coverage: $("coverage"),
  brush: $("brush"),
  eraser: $("eraser"),
  size: $("size"),
  sizeOut: $("size-out"),
  undo: $("undo"),
  redo: $("redo"),
  clear: $("clear"),
  showMask: $("show-mask"),
  editStage: $("edit-stage"),
  original: $("original"),
  mask: $("mask"),
  cursor: $("cursor"),
  detect: $("detect"),
  removeAgain: $("remove-again"),
  compare: $("compare"),
  result: $("result"),
  before: $("before"),
  compareRange: $("compare-range"),
  resultEmpty: $("result-empty"),
  resultMeta: $("result-meta"),
  timings: $("timings"),
  download: $("download"),
  serverInfo: $("server-info"),
};

const MASK_RGB = [255, 45, 111]; // the overlay colour; the canvas keeps "is mask" in its alpha channel
const API_KEY_STORE = "markless.apiKey";
const OUTPUT_EXT = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

const state = {
  file: null, // the File being worked on
  stem: "image", // its name without extension, for the download name
  previewUrl: null, // object URL shown as the original (the file itself, or a server-made PNG)
  resultUrl: null,
  width: 0, // image size in pixels, EXIF-rotated, as the server sees it
  height: 0,
  maxBodyBytes: null,
  canSegment: true, // false when the server runs without a segmenter (the user paints the mask)
  tool: null, // null | "brush" | "erase"
  ops: [], // mask edit history: {type: "base", canvas, fixed} | {type: "stroke", erase, width, points} | {type: "clear"}
  redo: [],
  stroke: null, // the stroke being drawn: {op, pointerId}
  busy: false,
  run: 0, // bumps on every new job so late answers of an abandoned one are ignored
  abort: null,
};

const ctx = el.mask.getContext("2d", { willReadFrequently: true });

// ---------------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(message, { status = 0, code = "", retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const apiUrl = (path) => new URL(path, document.baseURI).toString();

function authHeaders() {
  const key = el.apiKey.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** POST a multipart form with XHR (unlike fetch, it reports upload progress, which matters for big photos on phones). */
function postForm(path, form, { signal, onUpload } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiUrl(path));
    xhr.responseType = "blob";
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    if (onUpload) {
      xhr.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded / e.total);
      xhr.upload.onload = () => onUpload(1);
    }
    xhr.onload = async () => {
      const header = (name) => xhr.getResponseHeader(name);
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ blob: xhr.response, header, status: xhr.status });
      } else {
        reject(await responseError(xhr.status, xhr.statusText, header, xhr.response));
      }
    };
    xhr.onerror = () => reject(new ApiError("Could not reach the server. Check your connection and try again."));
    xhr.ontimeout = () => reject(new ApiError("The server took too long to answer."));
    xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
    if (signal) {
      if (signal.aborted) return xhr.abort();
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(form);
  });
}

/** Turn an error response into a readable ApiError, using the API's JSON body when there is one. */
async function responseError(status, statusText, header, body) {
  let code = "";
  let message = "";
  try {
    const text = body instanceof Blob ? await body.text() : String(body ?? "");
    const data = JSON.parse(text);
    const err = data?.error ?? data;
    code = typeof err?.code === "string" ? err.code : "";
    if (typeof err?.message === "string") message = err.message;
    else if (typeof data?.detail === "string") message = data.detail;
    else if (Array.isArray(data?.detail)) message = data.detail.map((d) => d?.msg).filter(Boolean).join("; ");
  } catch {
    // not JSON (a proxy's HTML page, say): fall back to the status line
  }
  const retryAfter = Number.parseInt(header("Retry-After") ?? "", 10);
  if (!message) {
    message =
      status === 413
        ? "The file is too large for this server."
        : status === 503
          ? "The server is busy."
          : `The server answered ${status} ${statusText || ""}`.trim() + ".";
  }
  if (status === 503 && Number.isFinite(retryAfter)) message += ` Try again in ${retryAfter} s.`;
  if (status === 401 || status === 403) {
    message = el.apiKey.value.trim()
      ? "The API key was refused: check it under Advanced."
      : "This server needs an API key: enter it under Advanced.";
  }
  return new ApiError(message, { status, code, retryAfter: Number.isFinite(retryAfter) ? retryAfter : null });
}

// ---------------------------------------------------------------------------------------------
// Server info: inpainters, defaults and limits (tolerant of missing keys)

const pick = (obj, ...paths) => {
  for (const path of paths) {
    let v = obj;
    for (const key of path.split(".")) v = v == null ? undefined : v[key];
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
};

function formatBytes(n) {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} B`;
}

function inpainterNames(raw) {
  if (Array.isArray(raw)) return raw.map((x) => (typeof x === "string" ? x : x?.name)).filter(Boolean);
  if (raw && typeof raw === "object") return Object.keys(raw);
  return [];
}

async function loadInfo() {
  let info;
  try {
    const res = await fetch(apiUrl("v1/info"), { headers: authHeaders() });
    if (res.status === 401 || res.status === 403) {
      el.advanced.open = true;
      el.serverInfo.textContent = "This server needs an API key (see Advanced).";
      return;
    }
    if (!res.ok) return;
    info = await res.json();
  } catch {
    return; // the page works with its built-in defaults
  }
  state.canSegment = pick(info, "segmenter.loaded") !== false;
  if (pick(info, "auth_required") === true && !el.apiKey.value) el.advanced.open = true;
  const names = inpainterNames(pick(info, "inpainters.loaded", "inpainters.available", "inpainters", "available_inpainters"));
  const def = pick(info, "inpainters.default", "default_inpainter", "defaults.inpainter", "inpainter");
  if (names.length) {
    const current = el.inpainter.value;
    el.inpainter.replaceChildren(...names.map((name) => new Option(name, name)));
    if (!def || !names.includes(def)) el.inpainter.prepend(new Option("Default", ""));
    el.inpainter.value = names.includes(current) ? current : def && names.includes(def) ? def : "";
    if (def) $("inpainter-hint").textContent = `Server default: ${def}.`;
  }
  const threshold = Number(pick(info, "defaults.threshold", "threshold"));
  if (threshold > 0 && threshold < 1) setRange(el.threshold, threshold);
  const maxDilate = Number(pick(info, "defaults.max_dilate", "max_dilate"));
  const dilate = Number(pick(info, "defaults.dilate", "dilate"));
  if (Number.isFinite(dilate) && dilate >= 0) {
    // A slider up to 48 px is fine-grained enough for phones; go further only if the default needs it.
    const top = Math.max(48, Math.ceil(dilate * 2));
    el.dilate.max = String(maxDilate > 0 ? Math.min(top, maxDilate) : top);
    setRange(el.dilate, dilate);
  }
  const formats = pick(info, "output_formats", "formats", "limits.output_formats");
  if (Array.isArray(formats) && formats.length) {
    const label = { png: "PNG", jpeg: "JPEG", webp: "WebP" };
    el.format.replaceChildren(...formats.map((f) => new Option(label[f] ?? f.toUpperCase(), f)));
  }
  const defFormat = pick(info, "defaults.format", "default_format");
  if (defFormat && [...el.format.options].some((o) => o.value === defFormat)) el.format.value = defFormat;

  const maxBytes = Number(pick(info, "limits.max_body_bytes", "max_body_bytes"));
  const maxPixels = Number(pick(info, "limits.max_pixels", "max_pixels"));
  const limits = [];
  if (maxBytes > 0) {
    state.maxBodyBytes = maxBytes;
    limits.push(`up to ${formatBytes(maxBytes)}`);
  }
  if (maxPixels > 0) limits.push(`${+(maxPixels / 1e6).toFixed(1)} megapixels`);
  const inputs = pick(info, "input_formats");
  const kinds = Array.isArray(inputs) && inputs.length ? inputs.map((f) => String(f).toUpperCase()).join(", ") : "";
  if (kinds || limits.length) el.limits.textContent = [kinds, ...limits].filter(Boolean).join(", ") + ".";
  if (!state.canSegment) {
    el.detect.hidden = true;
    el.limits.textContent += " No detection model is loaded: paint the mask yourself.";
  }

  const bits = [];
  const device = pick(info, "device");
  if (device) bits.push(`Running on ${device}`);
  const version = pick(info, "version");
  if (version) bits.push(`markless ${version}`);
  el.serverInfo.textContent = bits.join(" · ");
  updateOutputs();
}

// ---------------------------------------------------------------------------------------------
// Status, errors and busy state

let elapsedTimer = null;

function setStatus(text, { busy = false } = {}) {
  el.statusText.textContent = text;
  el.status.classList.toggle("busy", busy);
}

/** A passing remark in the status line, never over the progress of a running job. */
function note(text) {
  if (!state.busy) setStatus(text);
}

/** A seconds counter next to the status while a job runs (not announced: it would chatter). */
function runElapsedTimer(on) {
  clearInterval(elapsedTimer);
  el.elapsed.textContent = "";
  if (!on) return;
  const start = performance.now();
  elapsedTimer = setInterval(() => {
    el.elapsed.textContent = `${Math.round((performance.now() - start) / 1000)} s`;
  }, 1000);
}

function showError(message, title = "Something went wrong.") {
  el.errorTitle.textContent = title;
  el.errorText.textContent = message ? message[0].toUpperCase() + message.slice(1) : "";
  el.error.hidden = false;
  // On a phone the message may be below the fold.
  el.error.scrollIntoView({ block: "nearest", behavior: reducedMotion() ? "auto" : "smooth" });
}

const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

function hideError() {
  el.error.hidden = true;
  el.errorText.textContent = "";
}

function setBusy(busy) {
  if (busy !== state.busy) runElapsedTimer(busy);
  state.busy = busy;
  el.workspace.setAttribute("aria-busy", String(busy));
  updateButtons();
}

function updateButtons() {
  const ready = state.width > 0 && !state.busy;
  el.detect.disabled = !ready;
  el.removeAgain.disabled = !ready;
  el.clear.disabled = !ready;
  // Painting, undo and redo stay available while the server works: they only touch the local mask.
  el.undo.disabled = !canUndo();
  el.redo.disabled = state.redo.length === 0;
}

// ---------------------------------------------------------------------------------------------
// Options

function setRange(input, value) {
  input.value = String(value);
  updateOutputs();
}

function updateOutputs() {
  el.thresholdOut.value = Number(el.threshold.value).toFixed(2);
  el.dilateOut.value = `${el.dilate.value} px`;
  el.sizeOut.value = `${el.size.value} px`;
}

function optionFields(form, { withMaskOptions }) {
  if (el.inpainter.value) form.append("inpainter", el.inpainter.value);
  if (withMaskOptions) {
    form.append("threshold", el.threshold.value);
    form.append("dilate", el.dilate.value);
  }
  const seed = el.seed.value.trim();
  if (seed !== "") form.append("seed", seed);
  const steps = el.steps.value.trim();
  if (steps !== "") form.append("steps", steps);
  form.append("format", el.format.value);
}

// ---------------------------------------------------------------------------------------------
// Image intake

function stemOf(name) {
  const stem = (name || "").replace(/\.[^./\\]+$/, "").trim();
  return stem || "image";
}

/** Load an <img> from a URL; resolves with whether the browser could decode it. */
function loadImg(img, url) {
  return new Promise((resolve) => {
    img.onload = () => resolve(true);
    img.onerror = () => resolve(false);
    img.src = url;
  });
}

function setStageSize(width, height) {
  state.width = width;
  state.height = height;
  for (const stage of [el.editStage, el.compare]) {
    stage.style.setProperty("--ar", `${width} / ${height}`);
    // Keep tall photos within the viewport height; the canvas follows the box exactly.
    stage.style.setProperty("--fit-w", `calc(75vh * ${width / height})`);
  }
}

/** Reveal the work area; on a narrow screen bring it into view, since it starts below the options. */
function showWorkspace() {
  if (!el.workspace.hidden) return;
  el.workspace.hidden = false;
  if (window.matchMedia("(max-width: 959px)").matches) {
    el.status.scrollIntoView({ block: "start", behavior: reducedMotion() ? "auto" : "smooth" });
  }
}

function revoke(url) {
  if (url) URL.revokeObjectURL(url);
}

function resetResult() {
  revoke(state.resultUrl);
  state.resultUrl = null;
  el.result.removeAttribute("src");
  el.compare.hidden = true;
  el.resultEmpty.hidden = false;
  el.resultEmpty.textContent = "The cleaned photo appears here.";
  el.timings.hidden = true;
  el.timings.replaceChildren();
  el.resultMeta.textContent = "";
  el.download.hidden = true;
  el.download.removeAttribute("href");
  el.removeAgain.textContent = "Remove";
}

async function startWithFile(file) {
  if (!file) return;
  hideError();
  if (state.abort) state.abort.abort();
  const run = ++state.run;
  setBusy(false);
  if (state.maxBodyBytes && file.size > state.maxBodyBytes) {
    showError(
      `It is ${formatBytes(file.size)}; this server accepts up to ${formatBytes(state.maxBodyBytes)}.`,
      `${file.name ? `“${file.name}”` : "The image"} is too large.`,
    );
    setStatus("Choose another photo.");
    return;
  }
  state.file = file;
  state.stem = stemOf(file.name);
  revoke(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  resetResult();
  resetMask(0, 0);
  state.width = 0;
  el.workspace.hidden = true;
  setStatus(`Opening ${file.name || "the image"}…`, { busy: true });

  // Show the original at once when the browser can decode it (browsers apply EXIF orientation to <img>).
  const shown = await loadImg(el.original, state.previewUrl);
  if (run !== state.run) return;
  el.dropzone.classList.add("has-photo");
  el.fileLabel.textContent = "Choose another photo";
  if (shown) {
    el.before.src = state.previewUrl;
    setStageSize(el.original.naturalWidth, el.original.naturalHeight);
    resetMask(state.width, state.height);
    showWorkspace();
  }
  await detectAndRemove({ run, needPreview: !shown });
}

/** The automatic flow: segment (to show and edit the mask), then remove with the server's own mask. */
async function detectAndRemove({ run = ++state.run, needPreview = false } = {}) {
  hideError();
  const file = state.file;
  if (!file) return;
  if (!state.canSegment) {
    // No detection model on this server: the user paints the mask and presses "Remove".
    setBusy(false);
    if (needPreview) {
      showError("Your browser cannot show this image, so there is nothing to paint on. Try a PNG or JPEG.");
      setStatus("Choose another photo.");
    } else {
      setStatus("Pick the brush, paint over what should be removed, then press “Remove”.");
    }
    return;
  }
  const abort = new AbortController();
  state.abort = abort;
  setBusy(true);
  try {
    const form = new FormData();
    form.append("image", file, file.name || "image");
    form.append("threshold", el.threshold.value);
    form.append("dilate", el.dilate.value);
    setStatus("Uploading…", { busy: true });
    const seg = await postForm("v1/segment", form, {
      signal: abort.signal,
      onUpload: (f) => {
        if (run !== state.run) return;
        setStatus(f < 1 ? `Uploading… ${Math.round(f * 100)}%` : "Finding the watermark…", { busy: true });
      },
    });
    if (run !== state.run) return;
    const maskBitmap = await createImageBitmap(seg.blob);
    if (needPreview) await previewFromServer(file, maskBitmap, abort.signal, run);
    if (run !== state.run) return;
    setBaseMask(maskBitmap);
    maskBitmap.close();
    showWorkspace();

    setStatus("Removing the watermark…", { busy: true });
    const rform = new FormData();
    rform.append("image", file, file.name || "image");
    optionFields(rform, { withMaskOptions: true });
    await removeWith(rform, run, abort.signal);
  } catch (err) {
    if (run === state.run) fail(err);
  } finally {
    if (run === state.run) setBusy(false);
  }
}

/** For formats the browser cannot show (TIFF, say), ask the server for the original as PNG: an empty mask changes nothing. */
async function previewFromServer(file, maskBitmap, signal, run) {
  setStatus("Preparing a preview…", { busy: true });
  const form = new FormData();
  form.append("image", file, file.name || "image");
  form.append("mask", await blankMaskBlob(maskBitmap.width, maskBitmap.height), "mask.png");
  form.append("dilate", "0");
  form.append("format", "png");
  const res = await postForm("v1/remove", form, { signal });
  if (run !== state.run) return;
  revoke(state.previewUrl);
  state.previewUrl = URL.createObjectURL(res.blob);
  await loadImg(el.original, state.previewUrl);
  el.before.src = state.previewUrl;
}

async function removeAgain() {
  if (!state.file || state.busy) return;
  hideError();
  const run = ++state.run;
  const abort = new AbortController();
  state.abort = abort;
  setBusy(true);
  try {
    const maskBlob = await exportMask();
    if (!maskBlob.covered) {
      showError("Pick the brush and paint over what should be removed first.", "The mask is empty.");
      setStatus("Nothing to remove.");
      return;
    }
    setStatus("Removing with your mask…", { busy: true });
    const form = new FormData();
    form.append("image", state.file, state.file.name || "image");
    form.append("mask", maskBlob.blob, `${state.stem}-mask.png`);
    optionFields(form, { withMaskOptions: false });
    form.append("dilate", "0"); // the mask is used exactly as drawn
    await removeWith(form, run, abort.signal);
  } catch (err) {
    if (run === state.run) fail(err);
  } finally {
    if (run === state.run) setBusy(false);
  }
}

async function removeWith(form, run, signal) {
  const started = performance.now();
  const res = await postForm("v1/remove", form, {
    signal,
    onUpload: (f) => run === state.run && f < 1 && setStatus(`Uploading… ${Math.round(f * 100)}%`, { busy: true }),
  });
  if (run !== state.run) return;
  const roundTrip = performance.now() - started;
  revoke(state.resultUrl);
  state.resultUrl = URL.createObjectURL(res.blob);
  const ok = await loadImg(el.result, state.resultUrl);
  if (run !== state.run) return;
  const type = (res.header("Content-Type") || res.blob.type || "").split(";")[0].trim();
  const ext = OUTPUT_EXT[type] ?? el.format.value;
  el.download.href = state.resultUrl;
  el.download.download = `${state.stem}-clean.${ext}`;
  el.download.textContent = `Download ${state.stem}-clean.${ext}`;
  el.download.hidden = false;
  el.removeAgain.textContent = "Remove again";
  el.compare.hidden = !ok;
  el.resultEmpty.hidden = ok;
  if (!ok) el.resultEmpty.textContent = "Your browser cannot show this format; download it below.";
  showTimings(res.header("Server-Timing"), roundTrip);
  const meta = [];
  const inpainter = res.header("X-Inpainter");
  if (inpainter) meta.push(inpainter);
  const seed = res.header("X-Seed");
  if (seed) meta.push(`seed ${seed}`);
  const coverage = Number.parseFloat(res.header("X-Mask-Coverage") ?? "");
  if (Number.isFinite(coverage)) meta.push(`${formatPercent(coverage)} restored`);
  el.resultMeta.textContent = meta.join(" · ");
  const total = roundTrip >= 1000 ? `${(roundTrip / 1000).toFixed(1)} s` : `${Math.round(roundTrip)} ms`;
  const unchanged = res.header("X-Watermark-Found") === "false" || (Number.isFinite(coverage) && coverage === 0);
  setStatus(
    unchanged
      ? "No watermark found — the photo is unchanged. Paint over it to remove it by hand, then press “Remove again”."
      : `Done in ${total}. Compare, fix the mask if needed, then download.`,
  );
}

function fail(err) {
  if (err?.name === "AbortError") return;
  if (!(err instanceof ApiError)) console.error("markless:", err); // a bug here, not bad input
  const badInput = err?.status === 413 || err?.status === 415 || err?.code === "unsupported_image";
  const name = state.file?.name ? `“${state.file.name}”` : "This image";
  showError(
    err instanceof ApiError ? err.message : `Unexpected problem: ${err?.message ?? err}`,
    badInput ? `${name} cannot be used.` : "Something went wrong.",
  );
  if (err?.status === 401 || err?.status === 403) {
    el.advanced.open = true;
  }
  setStatus(state.width ? "You can fix the mask or options and try again." : "Choose another photo.");
}

// ---------------------------------------------------------------------------------------------
// Timings (Server-Timing: "segment;dur=12.3, inpaint;dur=45;desc=\"...\"")

function parseServerTiming(header) {
  if (!header) return [];
  const entries = [];
  for (const part of header.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const [name, ...params] = part.split(";").map((s) => s.trim());
    if (!name) continue;
    const entry = { name, dur: null, desc: "" };
    for (const p of params) {
      const [k, v = ""] = p.split("=").map((s) => s.trim());
      if (k === "dur") entry.dur = Number.parseFloat(v);
      else if (k === "desc") entry.desc = v.replace(/^"|"$/g, "");
    }
    entries.push(entry);
  }
  return entries;
}

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function formatPercent(fraction) {
  const pct = fraction > 1 ? fraction : fraction * 100; // tolerate a percentage
  return `${pct < 1 && pct > 0 ? pct.toFixed(2) : pct.toFixed(1)}%`;
}

function showTimings(header, roundTrip) {
  const rows = parseServerTiming(header).filter((e) => Number.isFinite(e.dur));
  rows.push({ name: "round trip", dur: roundTrip, desc: "measured here, upload and download included" });
  el.timings.replaceChildren(
    ...rows.map((e) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = e.desc && e.name !== "round trip" ? e.desc : e.name;
      if (e.desc) dt.title = e.desc;
      dd.textContent = formatMs(e.dur);
      div.append(dt, dd);
      return div;
    }),
  );
  el.timings.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Mask: a canvas at image resolution; alpha = "remove", drawn in one colour and shown translucent.

function resetMask(width, height) {
  el.mask.width = width;
  el.mask.height = height;
  state.ops = [];
  state.redo = [];
  state.stroke = null;
  updateCoverage();
  updateButtons();
}

/** Replace the mask with the server's (8-bit grey PNG, 255 = watermark) as an undoable step. */
function setBaseMask(bitmap) {
  const { width, height } = bitmap;
  if (width !== el.mask.width || height !== el.mask.height) {
    // The server is the authority on the (EXIF-rotated) size; earlier strokes do not fit any more.
    setStageSize(width, height);
    resetMask(width, height);
  }
  const layer = document.createElement("canvas");
  layer.width = width;
  layer.height = height;
  const lctx = layer.getContext("2d", { willReadFrequently: true });
  lctx.drawImage(bitmap, 0, 0);
  const data = lctx.getImageData(0, 0, width, height);
  const bytes = data.data;
  const px = new Uint32Array(bytes.buffer);
  const on = packRgba(MASK_RGB[0], MASK_RGB[1], MASK_RGB[2], 255);
  for (let i = 0; i < px.length; i++) px[i] = bytes[i * 4] >= 128 ? on : 0; // grey level of the server's mask
  lctx.putImageData(data, 0, 0);
  const op = { type: "base", canvas: layer, fixed: !state.ops.some((o) => o.type === "base") };
  if (op.fixed) {
    // The first detection goes under anything painted while it was running.
    state.ops.unshift(op);
  } else {
    state.ops.push(op);
    state.redo = [];
  }
  redraw();
}

function packRgba(r, g, b, a) {
  const bytes = new Uint8ClampedArray([r, g, b, a]);
  return new Uint32Array(bytes.buffer)[0];
}

function canUndo() {
  const last = state.ops.at(-1);
  return Boolean(last) && !last.fixed;
}

function applyOp(c, op) {
  if (op.type === "base") {
    c.clearRect(0, 0, el.mask.width, el.mask.height);
    c.drawImage(op.canvas, 0, 0);
  } else if (op.type === "clear") {
    c.clearRect(0, 0, el.mask.width, el.mask.height);
  } else if (op.type === "stroke") {
    strokePath(c, op, op.points);
  }
}

function strokePath(c, op, points) {
  c.save();
  c.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
  c.strokeStyle = c.fillStyle = `rgb(${MASK_RGB.join(" ")})`;
  c.lineWidth = op.width;
  c.lineCap = "round";
  c.lineJoin = "round";
  if (points.length <= 2) {
    c.beginPath();
    c.arc(points[0], points[1], op.width / 2, 0, Math.PI * 2);
    c.fill();
  } else {
    c.beginPath();
    c.moveTo(points[0], points[1]);
    for (let i = 2; i < points.length; i += 2) c.lineTo(points[i], points[i + 1]);
    c.stroke();
  }
  c.restore();
}

function redraw() {
  ctx.clearRect(0, 0, el.mask.width, el.mask.height);
  let start = 0;
  for (let i = state.ops.length - 1; i >= 0; i--) {
    if (state.ops[i].type === "base") {
      start = i;
      break;
    }
  }
  for (let i = start; i < state.ops.length; i++) applyOp(ctx, state.ops[i]);
  updateCoverage();
  updateButtons();
}

function pushOp(op) {
  state.ops.push(op);
  state.redo = [];
}

function undo() {
  if (!canUndo() || state.stroke) return;
  state.redo.push(state.ops.pop());
  redraw();
  note("Undone.");
}

function redo() {
  if (!state.redo.length || state.stroke) return;
  state.ops.push(state.redo.pop());
  redraw();
  note("Redone.");
}

function clearMask() {
  if (!state.width) return;
  pushOp({ type: "clear" });
  redraw();
  note("Mask cleared. Paint what should be removed.");
}

function maskCoverage() {
  const { width, height } = el.mask;
  if (!width || !height) return 0;
  const px = ctx.getImageData(0, 0, width, height).data;
  let on = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] >= 128) on++;
  return on / (width * height);
}

let coverageFrame = 0;
function updateCoverage() {
  cancelAnimationFrame(coverageFrame);
  coverageFrame = requestAnimationFrame(() => {
    const fraction = el.mask.width ? maskCoverage() : 0;
    el.coverage.textContent = !el.mask.width
      ? ""
      : fraction > 0
        ? `Mask covers ${formatPercent(fraction)} of the image`
        : "The mask is empty";
  });
}

/** The mask as the API wants it: a full-size opaque PNG, white = remove, black = keep. */
async function exportMask() {
  const { width, height } = el.mask;
  const src = ctx.getImageData(0, 0, width, height).data;
  const out = new ImageData(width, height);
  const dst = new Uint32Array(out.data.buffer);
  const white = packRgba(255, 255, 255, 255);
  const black = packRgba(0, 0, 0, 255);
  let covered = 0;
  for (let i = 0; i < dst.length; i++) {
    // Antialiased stroke edges count when at least half opaque.
    if (src[i * 4 + 3] >= 128) {
      dst[i] = white;
      covered++;
    } else {
      dst[i] = black;
    }
  }
  return { blob: await imageDataToPng(out), covered };
}

async function blankMaskBlob(width, height) {
  const out = new ImageData(width, height);
  new Uint32Array(out.data.buffer).fill(packRgba(0, 0, 0, 255));
  return imageDataToPng(out);
}

function imageDataToPng(imageData) {
  const c = document.createElement("canvas");
  c.width = imageData.width;
  c.height = imageData.height;
  c.getContext("2d").putImageData(imageData, 0, 0);
  return new Promise((resolve, reject) =>
    c.toBlob((b) => (b ? resolve(b) : reject(new Error("could not encode the mask"))), "image/png"),
  );
}

// ---------------------------------------------------------------------------------------------
// Painting with pointer events (mouse, pen, touch); display coordinates → image pixels.

function setTool(tool) {
  state.tool = state.tool === tool ? null : tool;
  el.brush.setAttribute("aria-pressed", String(state.tool === "brush"));
  el.eraser.setAttribute("aria-pressed", String(state.tool === "erase"));
  el.editStage.classList.toggle("painting", state.tool !== null);
  el.cursor.classList.toggle("erase", state.tool === "erase");
  if (state.tool && !el.showMask.checked) {
    el.showMask.checked = true;
    el.mask.classList.remove("off");
  }
  if (!state.tool) el.cursor.hidden = true;
}

function toImage(e) {
  const rect = el.mask.getBoundingClientRect();
  const sx = el.mask.width / rect.width;
  const sy = el.mask.height / rect.height;
  return [(e.clientX - rect.left) * sx, (e.clientY - rect.top) * sy, sx];
}

function moveCursor(e) {
  if (!state.tool || e.pointerType === "touch") {
    el.cursor.hidden = true;
    return;
  }
  const rect = el.editStage.getBoundingClientRect();
  const d = Number(el.size.value);
  el.cursor.style.width = el.cursor.style.height = `${d}px`;
  el.cursor.style.left = `${e.clientX - rect.left}px`;
  el.cursor.style.top = `${e.clientY - rect.top}px`;
  el.cursor.hidden = false;
}

el.mask.addEventListener("pointerdown", (e) => {
  if (!state.tool || state.stroke || !state.width) return;
  if (e.pointerType === "mouse" && e.button !== 0) return;
  e.preventDefault();
  el.mask.setPointerCapture(e.pointerId);
  const [x, y, scale] = toImage(e);
  const op = { type: "stroke", erase: state.tool === "erase", width: Math.max(1, Number(el.size.value) * scale), points: [x, y] };
  pushOp(op);
  state.stroke = { op, pointerId: e.pointerId };
  strokePath(ctx, op, op.points);
  updateButtons();
});

el.mask.addEventListener("pointermove", (e) => {
  moveCursor(e);
  const s = state.stroke;
  if (!s || e.pointerId !== s.pointerId) return;
  const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) {
    const [x, y] = toImage(ev);
    const pts = s.op.points;
    const seg = [pts.at(-2), pts.at(-1), x, y];
    pts.push(x, y);
    strokePath(ctx, s.op, seg);
  }
});

function endStroke(e, cancelled) {
  const s = state.stroke;
  if (!s || e.pointerId !== s.pointerId) return;
  state.stroke = null;
  if (cancelled) {
    state.ops.pop();
    redraw();
  } else {
    updateCoverage();
    updateButtons();
  }
}

el.mask.addEventListener("pointerup", (e) => endStroke(e, false));
el.mask.addEventListener("pointercancel", (e) => endStroke(e, true));
el.mask.addEventListener("pointerleave", () => {
  if (!state.stroke) el.cursor.hidden = true;
});

// ---------------------------------------------------------------------------------------------
// Before/after comparison

function updateCompare() {
  const v = Number(el.compareRange.value);
  el.compare.style.setProperty("--pos", `${v}%`);
  el.compareRange.setAttribute("aria-valuetext", `${v}% original, ${100 - v}% result`);
}

// ---------------------------------------------------------------------------------------------
// Wiring

el.file.addEventListener("change", () => {
  const file = el.file.files?.[0];
  if (file) startWithFile(file);
  el.file.value = ""; // choosing the same file again still triggers a run
});

function firstImageFile(list) {
  const files = [...(list ?? [])];
  return files.find((f) => f.type.startsWith("image/")) ?? files[0] ?? null;
}

let dragDepth = 0;
const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
document.addEventListener("dragenter", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth++;
  el.dropzone.classList.add("dragging");
});
document.addEventListener("dragover", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", (e) => {
  if (!hasFiles(e)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) el.dropzone.classList.remove("dragging");
});
document.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  el.dropzone.classList.remove("dragging");
  const file = firstImageFile(e.dataTransfer.files);
  if (file) startWithFile(file);
});

document.addEventListener("paste", (e) => {
  const file = firstImageFile(e.clipboardData?.files);
  if (!file) return; // plain text pastes into fields as usual
  e.preventDefault();
  startWithFile(file);
});

const typing = (t) =>
  t instanceof HTMLTextAreaElement ||
  t instanceof HTMLSelectElement ||
  (t instanceof HTMLInputElement && !["range", "checkbox", "button", "file"].includes(t.type)) ||
  t?.isContentEditable;

document.addEventListener("keydown", (e) => {
  if (typing(e.target) || e.altKey) return;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (mod && key === "z" && !el.workspace.hidden) {
    e.preventDefault();
    if (e.shiftKey) redo();
    else undo();
  } else if (mod && key === "y" && !el.workspace.hidden) {
    e.preventDefault();
    redo();
  } else if (!mod && !el.workspace.hidden) {
    if (key === "b") setTool("brush");
    else if (key === "e") setTool("erase");
    else if (key === "escape" && state.tool) setTool(state.tool);
    else if (key === "[" || key === "]") {
      setRange(el.size, Math.max(2, Math.min(120, Number(el.size.value) + (key === "]" ? 4 : -4))));
    }
  }
});

el.brush.addEventListener("click", () => setTool("brush"));
el.eraser.addEventListener("click", () => setTool("erase"));
el.undo.addEventListener("click", undo);
el.redo.addEventListener("click", redo);
el.clear.addEventListener("click", clearMask);
el.showMask.addEventListener("change", () => el.mask.classList.toggle("off", !el.showMask.checked));
el.detect.addEventListener("click", () => detectAndRemove());
el.removeAgain.addEventListener("click", removeAgain);
el.errorClose.addEventListener("click", hideError);
el.compareRange.addEventListener("input", updateCompare);
for (const input of [el.threshold, el.dilate, el.size]) input.addEventListener("input", updateOutputs);
for (const input of [el.threshold, el.dilate]) {
  input.addEventListener("change", () => {
    if (state.width && state.canSegment) note("Press “Detect again” to find the watermark with the new settings.");
  });
}
$("options").addEventListener("submit", (e) => e.preventDefault());

el.apiKey.value = sessionStorage.getItem(API_KEY_STORE) ?? "";
el.apiKey.addEventListener("change", () => {
  const key = el.apiKey.value.trim();
  if (key) sessionStorage.setItem(API_KEY_STORE, key);
  else sessionStorage.removeItem(API_KEY_STORE);
  loadInfo();
});

if (/Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent)) {
  for (const k of document.querySelectorAll(".mod-key")) k.textContent = "⌘";
}
updateOutputs();
updateCompare();
updateButtons();
loadInfo();
