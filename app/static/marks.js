// Same mark on several photos: pick or drop photos → POST /v1/marks → show the estimated mark →
// POST /v1/remove with mark=<id> for each → download them one by one or all at once.
// Independent of app.js except for the API key field it shares.

import { storedZip } from "./zip.js";

const $ = (id) => document.getElementById(id);
const el = {
  drop: $("mark-drop"),
  files: $("mark-files"),
  count: $("mark-count"),
  learn: $("learn"),
  status: $("mark-status"),
  error: $("mark-error"),
  preview: $("mark-preview"),
  image: $("mark-image"),
  meta: $("mark-meta"),
  removeAll: $("remove-all"),
  downloadAll: $("download-all"),
  results: $("mark-results"),
  apiKey: $("api-key"),
};

const MIN_PHOTOS = 3;
let photos = [];
let markId = null;
let objectUrls = [];
let cleaned = []; // { name, blob } of each photo that came back, for "download all"
const ZIP_NAME = "markless-clean.zip";

function authHeaders() {
  const key = el.apiKey ? el.apiKey.value.trim() : "";
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = !message;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch {
    // not JSON: fall through to the status line
  }
  return `the server answered ${response.status} ${response.statusText}`;
}

function forgetResults() {
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
  cleaned = [];
  el.results.replaceChildren();
  el.downloadAll.hidden = true;
}

function setPhotos(list) {
  photos = Array.from(list).filter((f) => f.type.startsWith("image/") || f.type === "");
  markId = null;
  forgetResults();
  el.preview.hidden = true;
  el.removeAll.hidden = true;
  showError("");
  el.count.textContent = photos.length ? `${photos.length} photo${photos.length === 1 ? "" : "s"}` : "or drop them here";
  el.learn.disabled = photos.length < MIN_PHOTOS;
  el.status.textContent = photos.length && photos.length < MIN_PHOTOS ? `Pick at least ${MIN_PHOTOS} photos.` : "";
}

async function learn() {
  const form = new FormData();
  photos.forEach((file) => form.append("images", file, file.name || "photo"));
  el.learn.disabled = true;
  showError("");
  el.status.textContent = "Learning the shared mark…";
  try {
    const response = await fetch("v1/marks", { method: "POST", body: form, headers: authHeaders() });
    if (!response.ok) throw new Error(await errorMessage(response));
    const profile = await response.json();
    markId = profile.id;
    const image = await fetch(profile.image_url.replace(/^\//, ""), { headers: authHeaders() });
    if (!image.ok) throw new Error(await errorMessage(image));
    const url = URL.createObjectURL(await image.blob());
    objectUrls.push(url);
    el.image.src = url;
    const [h, w] = profile.size;
    const missing = profile.missing.map((i) => photos[i].name).join(", ");
    el.meta.textContent =
      `${profile.layout === "tiled" ? "Tiled" : "One"} mark, ${w}×${h} px` +
      (profile.layout === "fixed" ? `, anchored ${profile.anchor}` : "") +
      (missing ? `. Not on: ${missing} (left untouched).` : ".");
    el.preview.hidden = false;
    el.removeAll.hidden = false;
    el.status.textContent = "This is the mark found on your photos.";
  } catch (error) {
    showError(`Could not learn the mark: ${error.message}`);
    el.status.textContent = "";
  } finally {
    el.learn.disabled = photos.length < MIN_PHOTOS;
  }
}

function cleanName(name) {
  const stem = (name || "photo").replace(/\.[^.]*$/, "");
  return `${stem}-clean.png`;
}

async function removeAll() {
  forgetResults();
  el.removeAll.disabled = true;
  showError("");
  let done = 0;
  for (const file of photos) {
    el.status.textContent = `Removing the mark… ${done} of ${photos.length}`;
    const form = new FormData();
    form.append("image", file, file.name || "photo");
    form.append("mark", markId);
    form.append("format", "png");
    const item = document.createElement("li");
    try {
      const response = await fetch("v1/remove", { method: "POST", body: form, headers: authHeaders() });
      if (!response.ok) throw new Error(await errorMessage(response));
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      objectUrls.push(url);
      cleaned.push({ name: cleanName(file.name), blob });
      const img = document.createElement("img");
      img.src = url;
      img.alt = `${file.name} without the mark`;
      const link = document.createElement("a");
      link.href = url;
      link.download = cleanName(file.name);
      link.className = "button";
      link.dataset.testid = "mark-download";
      const untouched = Number(response.headers.get("X-Mask-Coverage") || "0") === 0;
      link.textContent = untouched ? "Download (no mark found, unchanged)" : "Download";
      item.append(img, link);
      const reason = response.headers.get("X-Mark-Reason");
      if (untouched && reason) {
        const why = document.createElement("small"); // why this photo was left as it was
        why.textContent = reason;
        item.append(why);
      }
    } catch (error) {
      item.textContent = `${file.name}: ${error.message}`;
    }
    el.results.append(item);
    done += 1;
  }
  el.status.textContent = `Done: ${done} photo${done === 1 ? "" : "s"}.`;
  el.downloadAll.hidden = cleaned.length === 0;
  el.removeAll.disabled = false;
}

// All results in one ZIP built here (stored, see zip.js): one download instead of one per photo,
// which browsers block or ask about after the first few.
async function downloadAll() {
  showError("");
  try {
    const files = await Promise.all(
      cleaned.map(async ({ name, blob }) => ({ name, data: new Uint8Array(await blob.arrayBuffer()) })),
    );
    const url = URL.createObjectURL(storedZip(files));
    objectUrls.push(url);
    const link = document.createElement("a");
    link.href = url;
    link.download = ZIP_NAME;
    link.click();
  } catch (error) {
    showError(`Could not make the ZIP file: ${error.message}`);
  }
}

el.files.addEventListener("change", () => setPhotos(el.files.files));
el.learn.addEventListener("click", learn);
el.removeAll.addEventListener("click", removeAll);
el.downloadAll.addEventListener("click", downloadAll);
el.drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  el.drop.classList.add("over");
});
el.drop.addEventListener("dragleave", () => el.drop.classList.remove("over"));
el.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  event.stopPropagation(); // the single-photo drop zone of app.js must not take these
  el.drop.classList.remove("over");
  if (event.dataTransfer) setPhotos(event.dataTransfer.files);
});
