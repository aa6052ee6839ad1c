// The m2fp WebUI: privacy notice, upload, result view and language switch.
// Plain ES module, no inline code anywhere, so it runs under the service's strict CSP.

import { ApiError, fetchClasses, fetchLimits, parsePhoto } from "./api.js";
import { fileKind, kindOfName } from "./file_kind.js";
import { fileStem, overlayName, summaryName } from "./file_names.js";
import { LANGUAGES, preferredLanguage, translator } from "./i18n.js";
import { MaskPanel } from "./mask_panel.js";
import { loadLayers, paint } from "./overlay.js";

// The server's default M2FP_MAX_UPLOAD_BYTES until GET api/v1/limits has said its own; the
// server enforces its setting anyway.
const DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
const MEDIA_TYPES = new Set(["image/jpeg", "image/png"]);
const ACCEPTED_KINDS = new Set(["jpeg", "png"]);
const ACCEPTED_KEY = "m2fp.privacy-accepted";
const LANGUAGE_KEY = "m2fp.language";

const $ = (id) => document.getElementById(id);

const ui = {
  privacy: $("privacy"),
  privacyText: $("privacy-text"),
  showNotice: $("show-notice"),
  accept: $("accept"),
  accepted: $("accepted"),
  withdraw: $("withdraw"),
  dropzone: $("dropzone"),
  file: $("file"),
  choose: $("choose"),
  hint: $("upload-hint"),
  lockedHint: $("upload-locked"),
  busy: $("busy"),
  elapsed: $("elapsed"),
  cancel: $("cancel"),
  status: $("status"),
  error: $("error"),
  errorText: $("error-text"),
  errorRef: $("error-ref"),
  results: $("results"),
  resultsTitle: $("results-title"),
  personsKeys: $("persons-keys"),
  opacity: $("opacity"),
  opacityValue: $("opacity-value"),
  original: $("original"),
  overlay: $("overlay"),
  legend: $("legend"),
  legendEmpty: $("legend-empty"),
  persons: $("persons"),
  personsLabel: $("persons-label"),
  personsHint: $("persons-hint"),
  personsCount: $("persons-count"),
  personsEmpty: $("persons-empty"),
  showAll: $("show-all"),
  unassigned: $("unassigned"),
  downloadPng: $("download-png"),
  downloadJson: $("download-json"),
};

const state = {
  tr: translator("en"),
  accepted: false,
  palette: null,
  singlePerson: false, // the single-person model: parts, no persons
  job: null, // {controller, started, timer} while a photo is being parsed
  status: null, // {key, params(tr)} shown in the live region
  error: null, // {key, params(tr), retryUntil (performance.now() ms), requestId, strikes}
  errorTimer: 0, // counts the retry time down while an error with one is shown
  limits: { maxUploadBytes: DEFAULT_MAX_UPLOAD_BYTES, rate: [] }, // from GET api/v1/limits
  result: null, // {file, data, layers, photoUrl, selected}
  masks: null, // the MaskPanel
};

// sessionStorage may be unavailable (privacy settings); then nothing is remembered.
const session = {
  get(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      if (value === null) window.sessionStorage.removeItem(key);
      else window.sessionStorage.setItem(key, value);
    } catch {
      // not remembered: the notice is shown again on reload
    }
  },
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function swatch(color) {
  const node = element("span", "swatch");
  node.setAttribute("aria-hidden", "true");
  node.style.backgroundColor = `rgb(${color[0]}, ${color[1]}, ${color[2]})`;
  return node;
}

function colorOf(name) {
  return state.palette?.find((entry) => entry.name === name)?.color ?? [128, 128, 128];
}

// ---------------------------------------------------------------- language

function setLanguage(language) {
  state.tr = translator(language);
  document.documentElement.lang = language;
  session.set(LANGUAGE_KEY, language);
  for (const button of document.querySelectorAll("button.lang")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === language));
  }
  renderTexts();
}

function renderTexts() {
  const { t } = state.tr;
  document.title = `m2fp · ${t("title")}`;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-alt]")) {
    node.alt = t(node.dataset.i18nAlt);
  }
  renderHint();
  renderStatus();
  renderElapsed();
  renderError();
  renderResult();
  state.masks?.setTranslator(state.tr);
}

// Sentences joined as the language writes them (a space in English, none in Chinese).
function sentences(...parts) {
  return parts.filter(Boolean).join(state.tr.t("sentence.gap"));
}

function renderHint() {
  const { t } = state.tr;
  const rate = state.limits.rate.map(({ amount, seconds }) =>
    t("upload.rate", { n: amount, period: state.tr.period(seconds) }),
  );
  ui.hint.textContent = sentences(
    t("upload.hint", { size: state.tr.bytes(state.limits.maxUploadBytes) }),
    ...rate,
  );
}

// ---------------------------------------------------------------- privacy notice

function setAccepted(accepted) {
  state.accepted = accepted;
  session.set(ACCEPTED_KEY, accepted ? "1" : null);
  ui.accept.hidden = accepted;
  ui.accepted.hidden = !accepted;
  // once accepted the notice shrinks to one line, so the upload and the result come first
  ui.privacy.classList.toggle("collapsed", accepted);
  ui.privacyText.hidden = accepted;
  ui.showNotice.setAttribute("aria-expanded", "false");
  if (!accepted) {
    state.job?.controller.abort();
    clearResult();
  }
  renderUploadControls();
}

function renderUploadControls() {
  const enabled = state.accepted && state.job === null;
  ui.file.disabled = !enabled;
  ui.choose.disabled = !enabled;
  ui.dropzone.classList.toggle("locked", !state.accepted);
  ui.dropzone.setAttribute("aria-disabled", String(!enabled));
  ui.lockedHint.hidden = state.accepted;
  ui.busy.hidden = state.job === null;
}

// ---------------------------------------------------------------- status and errors

function setStatus(key, params = () => ({})) {
  state.status = key ? { key, params } : null;
  renderStatus();
}

function renderStatus() {
  ui.status.textContent = state.status
    ? state.tr.t(state.status.key, state.status.params(state.tr))
    : "";
}

function renderElapsed() {
  const job = state.job;
  ui.elapsed.textContent = job
    ? state.tr.t("time.seconds", { n: Math.floor((performance.now() - job.started) / 1000) })
    : "";
}

function showError(
  key,
  { params = () => ({}), retryAfter = null, requestId = null, strikes = null } = {},
) {
  window.clearInterval(state.errorTimer);
  const retryUntil = retryAfter === null ? null : performance.now() + retryAfter * 1000;
  state.error = { key, params, retryUntil, requestId, strikes };
  if (retryUntil !== null) state.errorTimer = window.setInterval(renderError, 1000);
  renderError();
}

function showApiError(error) {
  const key = `error.${error.code}`;
  if (state.tr.has(key)) {
    showError(key, error);
  } else {
    showError("error.unknown", { ...error, params: () => ({ code: error.code }) });
  }
}

function clearError() {
  window.clearInterval(state.errorTimer);
  state.error = null;
  renderError();
}

function renderError() {
  const { error } = state;
  ui.error.hidden = error === null;
  if (error === null) return;
  const { t } = state.tr;
  const parts = [t(error.key, error.params(state.tr))];
  if (error.strikes !== null) {
    const time = state.tr.duration(error.strikes.banSeconds);
    parts.push(
      error.strikes.left > 0
        ? t("error.strikes_left", { n: error.strikes.left, time })
        : t("error.strikes_paused", { time }),
    );
  }
  if (error.retryUntil !== null) {
    const left = (error.retryUntil - performance.now()) / 1000;
    if (left > 0) {
      parts.push(t("error.retry", { time: state.tr.duration(left) }));
    } else {
      window.clearInterval(state.errorTimer);
      parts.push(t("error.retry_now"));
    }
  }
  // textContent of an unchanged text is left alone so that the alert is not announced again
  const text = sentences(...parts);
  if (ui.errorText.textContent !== text) ui.errorText.textContent = text;
  ui.errorRef.textContent = error.requestId ? t("error.reference", { id: error.requestId }) : "";
}

// ---------------------------------------------------------------- upload

// What is wrong with `file` as far as this page can tell without sending it: its name, its
// size, and what its first bytes say it is. Every upload the server rejects counts towards a
// pause of this address, so whatever can be caught here is.
async function fileProblem(file) {
  if (file.size === 0) return { key: "error.empty" };
  const limit = state.limits.maxUploadBytes;
  if (file.size > limit) {
    return {
      key: "error.too_big",
      params: (tr) => ({ size: tr.bytes(file.size), limit: tr.bytes(limit) }),
    };
  }
  let kind;
  try {
    kind = await fileKind(file);
  } catch {
    return { key: "error.unreadable" };
  }
  if (kind === "unknown") return { key: "error.not_a_photo" };
  if (!ACCEPTED_KINDS.has(kind)) {
    return { key: "error.wrong_kind", params: (tr) => ({ kind: tr.t(`kind.${kind}`) }) };
  }
  const named = kindOfName(file.name);
  if (named === null || (file.type && !MEDIA_TYPES.has(file.type))) {
    return { key: "error.not_image" };
  }
  if (named !== kind) {
    return { key: "error.name_mismatch", params: (tr) => ({ kind: tr.t(`kind.${kind}`) }) };
  }
  return null;
}

async function upload(files) {
  if (!state.accepted) {
    showError("error.locked");
    return;
  }
  if (state.job !== null || !files || files.length === 0) return;
  if (files.length > 1) {
    showError("error.one_file");
    return;
  }
  const file = files[0];
  const problem = await fileProblem(file);
  if (problem) {
    showError(problem.key, problem);
    return;
  }
  clearError();
  const job = { controller: new AbortController(), started: performance.now(), timer: 0 };
  state.job = job;
  // the elapsed time ticks outside the live region so screen readers are not flooded
  job.timer = window.setInterval(renderElapsed, 1000);
  setStatus("status.working");
  renderElapsed();
  renderUploadControls();
  try {
    if (state.palette === null) await loadModelClasses();
    const data = await parsePhoto(file, job.controller.signal);
    const layers = await loadLayers(file, data, state.palette);
    job.controller.signal.throwIfAborted(); // cancelled or notice withdrawn while decoding
    const seconds = (performance.now() - job.started) / 1000;
    showResult(file, data, layers);
    setStatus(state.singlePerson ? "status.done_single" : "status.done", (tr) => ({
      seconds: tr.seconds(seconds),
      persons: data.persons.length,
    }));
  } catch (error) {
    if (error.name === "AbortError") {
      setStatus("status.cancelled");
    } else if (error instanceof ApiError) {
      setStatus(null);
      showApiError(error);
    } else {
      // the answer was fine but this browser could not decode the photo or the maps
      setStatus(null);
      showError("error.display");
    }
  } finally {
    window.clearInterval(job.timer);
    state.job = null;
    ui.file.value = "";
    renderUploadControls();
  }
}

// ---------------------------------------------------------------- result view

function clearResult() {
  if (state.result) URL.revokeObjectURL(state.result.photoUrl);
  state.result = null;
  state.masks?.clear();
  ui.original.removeAttribute("src");
  ui.results.hidden = true;
}

function showResult(file, data, layers) {
  clearResult();
  state.result = { file, data, layers, photoUrl: URL.createObjectURL(file), selected: 0 };
  ui.original.src = state.result.photoUrl;
  ui.results.hidden = false;
  renderResult();
  // the result is below the upload: bring it into view and put focus (and the screen reader)
  // on its heading instead of leaving it on <body>
  ui.resultsTitle.focus({ preventScroll: true });
  ui.results.scrollIntoView({ block: "start" });
  state.masks.show(state.result, state.singlePerson).catch(() => showError("error.rules"));
}

function repaint() {
  const result = state.result;
  if (!result) return;
  const person = result.data.persons[result.selected - 1];
  paint(ui.overlay, result.layers, {
    alpha: Number(ui.opacity.value) / 100,
    person: result.selected,
    box: person?.bbox ?? null,
  });
  const { t } = state.tr;
  ui.overlay.setAttribute(
    "aria-label",
    result.selected ? t("results.overlay_alt_person", { n: result.selected }) : t("results.overlay_alt"),
  );
}

let repaintQueued = false;
function queueRepaint() {
  if (repaintQueued) return;
  repaintQueued = true;
  window.requestAnimationFrame(() => {
    repaintQueued = false;
    repaint();
  });
}

function renderOpacity() {
  ui.opacityValue.textContent = `${ui.opacity.value}%`;
}

function renderLegend(data) {
  const { className } = state.tr;
  ui.legend.replaceChildren(
    ...data.classes_present.map((name) => {
      const item = element("li");
      item.dataset.class = name;
      item.append(swatch(colorOf(name)), element("span", "", className(name)));
      return item;
    }),
  );
  ui.legendEmpty.hidden = data.classes_present.length > 0;
}

function partsText(parts) {
  const { t, className, score } = state.tr;
  if (parts.length === 0) return t("results.no_parts");
  return parts.map((part) => `${className(part.label)} ${score(part.score)}`).join(", ");
}

// The single-person model finds no persons: its parts are listed instead.
function renderTask() {
  const single = state.singlePerson;
  ui.personsLabel.dataset.i18n = single ? "results.parts" : "results.persons";
  ui.personsLabel.textContent = state.tr.t(ui.personsLabel.dataset.i18n);
  ui.personsHint.hidden = single;
  ui.showAll.hidden = single;
}

function renderParts(result) {
  const { t } = state.tr;
  const parts = result.data.unassigned_parts ?? [];
  ui.persons.replaceChildren();
  ui.personsCount.textContent = `(${parts.length})`;
  ui.personsEmpty.hidden = true;
  ui.unassigned.hidden = false;
  ui.unassigned.textContent = parts.length ? partsText(parts) : t("results.legend_empty");
}

function renderPersons(result) {
  if (state.singlePerson) {
    renderParts(result);
    return;
  }
  const { t, className, score } = state.tr;
  const { persons, unassigned_parts: unassigned = [] } = result.data;
  const highlight = result.layers.persons !== null;
  const current = result.selected || 1; // the one Tab stop of the list
  ui.persons.replaceChildren(
    ...persons.map((person, index) => {
      const number = index + 1;
      const button = element("button", "person");
      button.type = "button";
      button.dataset.person = String(number);
      button.disabled = !highlight;
      button.tabIndex = number === current ? 0 : -1;
      button.setAttribute("aria-pressed", String(result.selected === number));
      const title = element("span", "person-title", t("results.person", { n: number }));
      const scoreText = element("span", "person-score", t("results.score", { score: score(person.score) }));
      const parts = element("span", "person-parts");
      if (person.parts.length === 0) parts.append(t("results.no_parts"));
      for (const part of person.parts) {
        const chip = element("span", "part");
        chip.append(swatch(colorOf(part.label)), `${className(part.label)} ${score(part.score)}`);
        parts.append(chip);
      }
      button.append(title, scoreText, parts);
      const item = element("li");
      item.append(button);
      return item;
    }),
  );
  ui.personsCount.textContent = `(${persons.length})`;
  ui.personsEmpty.hidden = persons.length > 0;
  ui.personsKeys.hidden = !highlight || persons.length < 2;
  ui.personsKeys.textContent = t("results.persons_keys", { n: persons.length });
  ui.showAll.disabled = result.selected === 0;
  ui.unassigned.hidden = unassigned.length === 0;
  ui.unassigned.textContent = unassigned.length
    ? t("results.unassigned", { parts: partsText(unassigned) })
    : "";
}

function renderResult() {
  const result = state.result;
  if (!result) return;
  renderOpacity();
  renderLegend(result.data);
  renderPersons(result);
  repaint();
}

function select(number) {
  const result = state.result;
  if (!result) return;
  result.selected = result.selected === number ? 0 : number;
  for (const button of ui.persons.querySelectorAll("button.person")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.person) === result.selected));
  }
  if (result.selected) focusPerson(result.selected, { focus: false });
  ui.showAll.disabled = result.selected === 0;
  repaint();
}

// The persons list is one Tab stop; the arrow keys, Home and End move within it.
const PERSON_KEYS = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };

function focusPerson(number, { focus = true } = {}) {
  const buttons = [...ui.persons.querySelectorAll("button.person")];
  for (const button of buttons) {
    button.tabIndex = Number(button.dataset.person) === number ? 0 : -1;
  }
  if (focus) buttons[number - 1]?.focus();
}

function movePersonFocus(event) {
  const button = event.target.closest("button.person");
  if (!button) return;
  const count = ui.persons.querySelectorAll("button.person").length;
  const number = Number(button.dataset.person);
  let next = null;
  if (event.key in PERSON_KEYS) next = Math.min(count, Math.max(1, number + PERSON_KEYS[event.key]));
  else if (event.key === "Home") next = 1;
  else if (event.key === "End") next = count;
  if (next === null) return;
  event.preventDefault();
  focusPerson(next);
}

// ---------------------------------------------------------------- downloads

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function downloadStem() {
  return fileStem(state.result.file.name);
}

function downloadOverlay() {
  if (!state.result) return;
  ui.overlay.toBlob((blob) => {
    if (!blob) return;
    const { selected } = state.result;
    const alpha = Number(ui.opacity.value) / 100;
    save(blob, overlayName(downloadStem(), { alpha, person: selected ? selected - 1 : null }));
  }, "image/png");
}

function downloadJson() {
  if (!state.result) return;
  const text = JSON.stringify(state.result.data, null, 2);
  save(new Blob([text], { type: "application/json" }), summaryName(downloadStem()));
}

// ---------------------------------------------------------------- wiring

function wire() {
  for (const button of document.querySelectorAll("button.lang")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  ui.accept.addEventListener("click", () => {
    setAccepted(true);
    ui.choose.focus();
  });
  ui.showNotice.addEventListener("click", () => {
    const open = ui.privacyText.hidden;
    ui.privacyText.hidden = !open;
    ui.showNotice.setAttribute("aria-expanded", String(open));
  });
  ui.withdraw.addEventListener("click", () => {
    setAccepted(false);
    setStatus(null);
    clearError();
    ui.accept.focus();
  });
  ui.choose.addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => upload(ui.file.files));
  ui.cancel.addEventListener("click", () => state.job?.controller.abort());

  // Without this, a photo dropped next to the drop zone would be opened by the browser.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }
  ui.dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    const ready = state.accepted && state.job === null;
    event.dataTransfer.dropEffect = ready ? "copy" : "none";
    ui.dropzone.classList.toggle("dragging", ready);
  });
  ui.dropzone.addEventListener("dragleave", (event) => {
    if (!ui.dropzone.contains(event.relatedTarget)) ui.dropzone.classList.remove("dragging");
  });
  ui.dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.dropzone.classList.remove("dragging");
    upload(event.dataTransfer.files);
  });

  ui.opacity.addEventListener("input", () => {
    renderOpacity();
    queueRepaint();
  });
  ui.persons.addEventListener("click", (event) => {
    const button = event.target.closest("button.person");
    if (button) select(Number(button.dataset.person));
  });
  ui.persons.addEventListener("keydown", movePersonFocus);
  ui.showAll.addEventListener("click", () => select(0));
  ui.original.addEventListener("error", () => {
    if (ui.original.getAttribute("src")) showError("error.display");
  });
  ui.downloadPng.addEventListener("click", downloadOverlay);
  ui.downloadJson.addEventListener("click", downloadJson);
}

async function loadModelClasses() {
  const { classes, singlePerson } = await fetchClasses();
  state.palette = classes;
  state.singlePerson = singlePerson;
  renderTask();
}

async function loadPalette() {
  try {
    await loadModelClasses();
  } catch {
    showError("error.classes");
  }
}

// The limits are only stated from this answer; without it the page says what it knows.
async function loadLimits() {
  try {
    state.limits = await fetchLimits();
  } catch {
    return;
  }
  renderHint();
}

function start() {
  state.masks = new MaskPanel({ save, stem: downloadStem });
  wire();
  const saved = session.get(LANGUAGE_KEY);
  setLanguage(LANGUAGES.includes(saved) ? saved : preferredLanguage(navigator.languages ?? []));
  setAccepted(session.get(ACCEPTED_KEY) === "1");
  loadPalette();
  loadLimits();
}

start();
