// The voice page: lists voices by language, plays a preview through the same
// /v1/audio/speech a client uses (streamed into the <audio> element with Media Source
// Extensions where the browser has them), and polls api/status for the backends, the
// last requests and the first-audio histogram. Plain DOM, no libraries; every URL is
// relative so the page works under a Home Assistant ingress path.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { voices: [], chosen: null, key: sessionStorage.getItem("verba-key") || "" };
const POLL_MS = 1500;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);  // text stays text: never HTML
  return node;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers.Authorization = "Bearer " + state.key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) $("key-form").hidden = false;
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || response.statusText;
  } catch (_) {
    return response.statusText;
  }
}

// --- voices ---------------------------------------------------------------------

async function loadVoices() {
  const response = await api("v1/audio/voices");
  if (!response.ok) return;
  const body = await response.json();
  state.voices = body.data;
  renderVoices();
}

function renderVoices() {
  const groups = new Map();
  for (const voice of state.voices) {
    const language = voice.language || "other";
    if (!groups.has(language)) groups.set(language, []);
    groups.get(language).push(voice);
  }
  const box = $("voices");
  box.replaceChildren();
  for (const language of [...groups.keys()].sort()) {
    const details = el("details", { dataset: { language } });
    details.open = true;
    details.append(el("summary", {}, language + " ", el("span", { className: "muted" },
      "(" + groups.get(language).length + ")")));
    for (const voice of groups.get(language)) {
      const button = el("button", {
        type: "button",
        className: "voice" + (voice.installed ? "" : " missing"),
        title: (voice.description || voice.name) + " · " + voice.backend +
          (voice.installed ? "" : " · not installed"),
        dataset: { name: voice.name, search: [voice.name, voice.languages.join(" "),
          voice.backend, voice.description].join(" ").toLowerCase() },
      }, voice.name + " ", el("span", { className: "backend" }, voice.backend));
      button.addEventListener("click", () => choose(voice.name));
      details.append(button);
    }
    box.append(details);
  }
  applyFilter();
  markChosen();
}

function applyFilter() {
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const details of $("voices").querySelectorAll("details")) {
    let inGroup = 0;
    for (const button of details.querySelectorAll(".voice")) {
      const haystack = button.dataset.search + " " + details.dataset.language.toLowerCase();
      const match = words.every((word) => haystack.includes(word));
      button.hidden = !match;
      if (match) inGroup += 1;
    }
    details.hidden = inGroup === 0;
    shown += inGroup;
  }
  $("voice-count").textContent = shown + " of " + state.voices.length;
}

function choose(name) {
  state.chosen = name;
  $("chosen").textContent = name;
  markChosen();
}

function markChosen() {
  for (const button of $("voices").querySelectorAll(".voice")) {
    button.classList.toggle("selected", button.dataset.name === state.chosen);
  }
}

// --- playing --------------------------------------------------------------------

async function play() {
  const player = $("player");
  const format = $("format").value;
  const status = $("play-status");
  const started = performance.now();
  $("play").disabled = true;
  player.dataset.bytes = "0";
  status.textContent = "Asking…";
  try {
    const response = await api("v1/audio/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "tts-1", voice: state.chosen || "alloy", input: $("text").value,
        response_format: format, speed: Number($("speed").value) || 1,
      }),
    });
    if (!response.ok) {
      status.textContent = "Error " + response.status + ": " + await errorText(response);
      return;
    }
    const onFirst = () => {
      const ms = Math.round(performance.now() - started);
      player.dataset.firstByteMs = String(ms);
      status.textContent = "First audio after " + ms + " ms (request " +
        response.headers.get("X-Request-Id") + ")";
    };
    const type = response.headers.get("Content-Type") || "audio/mpeg";
    if (window.MediaSource && MediaSource.isTypeSupported(type)) {
      await streamInto(player, response, type, onFirst);
    } else {
      await playWhole(player, response, onFirst);
    }
  } catch (error) {
    status.textContent = "Failed: " + error;
  } finally {
    $("play").disabled = false;
    refreshStatus();
  }
}

// Each piece of the response goes to the <audio> element as it arrives.
async function streamInto(player, response, type, onFirst) {
  const source = new MediaSource();
  player.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
  const buffer = source.addSourceBuffer(type);
  const appended = () => new Promise((resolve) =>
    buffer.addEventListener("updateend", resolve, { once: true }));
  const reader = response.body.getReader();
  let first = true;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer.appendBuffer(value);
    await appended();
    player.dataset.bytes = String(Number(player.dataset.bytes) + value.length);
    if (first) {
      first = false;
      onFirst();
      player.play().catch(() => {});  // a browser may refuse: the controls still work
    }
  }
  if (source.readyState === "open") source.endOfStream();
}

async function playWhole(player, response, onFirst) {
  const blob = await response.blob();
  player.dataset.bytes = String(blob.size);
  onFirst();
  player.src = URL.createObjectURL(blob);
  player.play().catch(() => {});
}

// --- status ---------------------------------------------------------------------

async function refreshStatus() {
  let body;
  try {
    const response = await api("api/status");
    if (!response.ok) return;
    body = await response.json();
  } catch (_) {
    $("health").textContent = "unreachable";
    $("health").className = "pill down";
    return;
  }
  $("version").textContent = "v" + body.version;
  renderBackends(body.backends);
  renderRequests(body.recent);
  renderHistogram(body.histogram);
}

function renderBackends(backends) {
  const list = $("backends");
  list.replaceChildren();
  let up = 0;
  for (const b of backends) {
    if (b.state === "up") up += 1;
    let why = b.reason || "";
    if (b.state === "cooling") why = "retried in " + Math.ceil(b.retry_in) + " s: " + why;
    if (b.state === "up") why = b.voices + (b.voices === 1 ? " voice" : " voices");
    list.append(el("li", { dataset: { backend: b.name, state: b.state } },
      el("span", { className: "name" }, b.name),
      el("span", { className: "pill " + b.state }, b.state),
      el("span", { className: "why" }, why)));
  }
  const health = up ? (up === backends.length ? "ok" : "degraded") : "unavailable";
  $("health").textContent = health === "ok" ? "all backends up" :
    health === "degraded" ? up + " of " + backends.length + " backends up" : "no backend up";
  $("health").className = "pill " + health;
}

function renderRequests(recent) {
  const body = $("requests");
  body.replaceChildren();
  for (const r of recent.slice(0, 15)) {
    const time = new Date(r.time * 1000).toLocaleTimeString();
    body.append(el("tr", { dataset: { id: r.id } },
      el("td", {}, time), el("td", {}, r.id), el("td", {}, r.front === "http" ? "http" : r.front + " " + r.mode),
      el("td", {}, r.outcome),
      el("td", { className: "num" }, r.first_audio_ms === null ? "–" : r.first_audio_ms + " ms"),
      el("td", { className: "num" }, r.audio_s.toFixed(2) + " s"),
      el("td", {}, r.backends.join(" → ") || "–"),
      el("td", { className: "num" }, String(r.failovers))));
  }
}

function renderHistogram(histogram) {
  const svg = $("histogram");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const counts = histogram.counts;
  const labels = histogram.buckets_ms.map((ms) => "≤" + (ms >= 1000 ? ms / 1000 + "s" : ms))
    .concat(["more"]);
  const top = Math.max(1, ...counts);
  const width = 360 / counts.length;
  counts.forEach((count, i) => {
    const height = Math.round((count / top) * 100);
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(i * width + 2));
    bar.setAttribute("y", String(110 - height));
    bar.setAttribute("width", String(width - 4));
    bar.setAttribute("height", String(height));
    const tip = document.createElementNS(ns, "title");
    tip.textContent = count + " requests " + labels[i];
    bar.append(tip);
    svg.append(bar);
    for (const [y, text] of [[124, labels[i]], [106 - height, count ? String(count) : ""]]) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(i * width + width / 2));
      label.setAttribute("y", String(y));
      label.setAttribute("text-anchor", "middle");
      label.textContent = text;
      svg.append(label);
    }
  });
}

// --- start ------------------------------------------------------------------------

function start() {
  $("filter").addEventListener("input", applyFilter);
  $("play").addEventListener("click", play);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key").value;
    sessionStorage.setItem("verba-key", state.key);
    $("key-form").hidden = true;
    loadVoices();
    refreshStatus();
  });
  loadVoices();
  refreshStatus();
  setInterval(refreshStatus, POLL_MS);
}

start();
